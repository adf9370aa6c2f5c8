{{/* Names and labels. */}}
{{- define "mce.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mce.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mce.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mce.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mce.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mce.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "mce.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mce.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mce.headlessName" -}}
{{- default (printf "%s-headless" (include "mce.fullname" . | trunc 54 | trimSuffix "-")) .Values.headless.name }}
{{- end }}

{{- define "mce.membersConfigMap" -}}
{{- default (printf "%s-members" (include "mce.fullname" . | trunc 55 | trimSuffix "-")) .Values.cluster.membersConfigMap }}
{{- end }}

{{/* The configured server.scrape_interval and scrape_timeout, for the monitors' defaults. */}}
{{- define "mce.scrapeInterval" -}}
{{- (.Values.config.server | default dict).scrape_interval | default "60s" }}
{{- end }}
{{- define "mce.scrapeTimeout" -}}
{{- (.Values.config.server | default dict).scrape_timeout | default "50s" }}
{{- end }}

{{/* Where account i's Secret is mounted. */}}
{{- define "mce.accountDir" -}}
{{- printf "/etc/multicloud-exporter/accounts/%d" . }}
{{- end }}

{{/*
The configuration the pods read: .Values.config, with the accounts appended (credentials from
their Secrets as *_file keys) and server.probes_without_auth on when a web config is mounted.
*/}}
{{- define "mce.config" -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- if .Values.webConfig.enabled }}
{{- $server := get $config "server" | default dict }}
{{- if not (hasKey $server "probes_without_auth") }}
{{- $_ := set $server "probes_without_auth" true }}
{{- end }}
{{- $_ := set $config "server" $server }}
{{- end }}
{{- $accounts := list }}
{{- range $i, $account := .Values.accounts }}
{{- $table := omit $account "existingSecret" "existingSecretKeys" }}
{{- if $account.existingSecret }}
{{- $keys := $account.existingSecretKeys | default dict }}
{{- $dir := include "mce.accountDir" $i }}
{{- $_ := set $table "access_key_id_file" (printf "%s/%s" $dir ($keys.accessKeyId | default "access_key_id")) }}
{{- $_ := set $table "access_key_secret_file" (printf "%s/%s" $dir ($keys.accessKeySecret | default "access_key_secret")) }}
{{- if $keys.securityToken }}
{{- $_ := set $table "security_token_file" (printf "%s/%s" $dir $keys.securityToken) }}
{{- end }}
{{- end }}
{{- $accounts = append $accounts $table }}
{{- end }}
{{- if $accounts }}
{{- $_ := set $config "accounts" (concat ($config.accounts | default list) $accounts) }}
{{- end }}
{{- include "mce.toml.table" (dict "path" "" "table" $config) }}
{{- end }}

{{/*
TOML writer. Helm's toToml prints every YAML number as a float (3 -> 3.0), which the exporter
rightly refuses for integer keys, so tables are written here: a table's plain keys first, then
its sub-tables ([a.b]) and arrays of tables ([[a.b]]), as TOML requires.
*/}}
{{- define "mce.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{- define "mce.toml.value" -}}
{{- if kindIs "string" . }}{{ toJson . }}
{{- else if kindIs "bool" . }}{{ ternary "true" "false" . }}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) }}
{{- if eq (float64 (int64 .)) (float64 .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else if kindIs "slice" . }}
{{- $items := list }}
{{- range . }}{{ $items = append $items (include "mce.toml.value" .) }}{{ end }}
{{- printf "[%s]" (join ", " $items) }}
{{- else if kindIs "invalid" . }}{{ fail "config: null values cannot be written to TOML; remove the key" }}
{{- else if kindIs "map" . }}{{ fail "config: a table inside a list of plain values cannot be written to TOML; use a list of tables only" }}
{{- else }}{{ . }}
{{- end }}
{{- end }}

{{- define "mce.isTableArray" -}}
{{- if and (kindIs "slice" .) (gt (len .) 0) }}
{{- $all := true }}
{{- range . }}{{ if not (kindIs "map" .) }}{{ $all = false }}{{ end }}{{ end }}
{{- if $all }}true{{ end }}
{{- end }}
{{- end }}

{{- define "mce.toml.table" -}}
{{- $path := .path }}
{{- $table := .table }}
{{- range $key, $value := $table }}
{{- if not (or (kindIs "map" $value) (include "mce.isTableArray" $value)) }}
{{ include "mce.toml.key" $key }} = {{ include "mce.toml.value" $value }}
{{- end }}
{{- end }}
{{- range $key, $value := $table }}
{{- $sub := ternary (include "mce.toml.key" $key) (printf "%s.%s" $path (include "mce.toml.key" $key)) (eq $path "") }}
{{- if kindIs "map" $value }}

[{{ $sub }}]
{{- include "mce.toml.table" (dict "path" $sub "table" $value) }}
{{- else if include "mce.isTableArray" $value }}
{{- range $value }}

[[{{ $sub }}]]
{{- include "mce.toml.table" (dict "path" $sub "table" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The scrape settings shared by the ServiceMonitor's and the PodMonitor's endpoint. */}}
{{- define "mce.monitorEndpoint" -}}
{{- $m := .monitor }}
{{- $root := .root }}
interval: {{ $m.interval | default (include "mce.scrapeInterval" $root) }}
scrapeTimeout: {{ $m.scrapeTimeout | default (include "mce.scrapeTimeout" $root) }}
scheme: {{ $m.scheme | default (lower $root.Values.webConfig.scheme) }}
{{- with $m.tlsConfig }}
tlsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $m.basicAuth }}
basicAuth:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $m.honorLabels }}
honorLabels: true
{{- end }}
{{- with $m.relabelings }}
relabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $m.metricRelabelings }}
metricRelabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
