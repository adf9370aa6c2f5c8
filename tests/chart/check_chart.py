"""The Helm chart, checked with the Helm SDK (helm-python-sdk) and kubernetes-validate.

For every values file in chart/ci/: `helm lint --strict`, render, validate each manifest against
the Kubernetes schemas (strict: unknown fields fail), assert the values that matter, and run the
rendered config.toml through the exporter's own `check-config`. Then: the schema rejects wrong
types and unknown keys, and the templates refuse settings that cannot work, each with a message
naming the value.

Run by tests/integration/chart.rs (`cargo test`), which passes the exporter binary as MCE_BIN:
    CHART_VENV/bin/python tests/chart/check_chart.py
"""

import glob
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import unittest

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "chart"
KUBE_VERSION = "1.35.0"
NAMESPACE = "monitoring"
RELEASE = "mce"
FULLNAME = "mce-multicloud-exporter"
# Custom resources of the Prometheus Operator: no schema ships with kubernetes-validate, so their
# fields are asserted below instead.
OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}

helm.disable_logging()
if "MCE_BIN" not in os.environ:
    sys.exit("MCE_BIN must name the exporter binary (tests/integration/chart.rs sets it)")


def read(path, parse=yaml.safe_load):
    with open(path) as f:
        return parse(f)


def ci_values(name):
    return read(CHART / "ci" / f"{name}-values.yaml")


def render(values):
    """{(kind, name): manifest} of one rendering, and NOTES.txt."""
    out = helm.Chart.load(str(CHART)).render(
        values, name=RELEASE, namespace=NAMESPACE, is_install=True
    )
    docs, notes = {}, ""
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                key = (doc["kind"], doc["metadata"]["name"])
                assert key not in docs, f"{key} rendered twice"
                docs[key] = doc
    return docs, notes


def deployment(docs):
    """The workload: a Deployment, or with file discovery a StatefulSet."""
    (w,) = [d for (kind, name), d in docs.items()
            if kind in ("Deployment", "StatefulSet") and name == FULLNAME]
    return w


def container(docs):
    (c,) = deployment(docs)["spec"]["template"]["spec"]["containers"]
    return c


def env(docs):
    return {e["name"]: e for e in container(docs)["env"]}


def config_toml(docs):
    return docs[("ConfigMap", FULLNAME)]["data"]["config.toml"]


class EveryValuesFile(unittest.TestCase):
    """Lint, render and validate each chart/ci/*-values.yaml; the exporter accepts its config."""

    def test_matrix(self):
        files = sorted(glob.glob(str(CHART / "ci" / "*-values.yaml")))
        self.assertEqual(len(files), 6, files)
        for f in files:
            name = pathlib.Path(f).name
            with self.subTest(values=name):
                values = read(f)
                report = helm.lint(
                    str(CHART), values, strict=True, namespace=NAMESPACE,
                    kube_version=f"v{KUBE_VERSION}",
                )
                problems = [m for m in report.get("messages") or [] if m.get("severity", 0) > 1]
                self.assertEqual(report.get("errors") or [], [], report)
                self.assertEqual(problems, [], report)
                docs, _ = render(values)
                for (kind, doc_name), doc in docs.items():
                    if kind in OPERATOR_KINDS:
                        continue
                    try:
                        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
                    except kubernetes_validate.ValidationError as e:
                        self.fail(f"{name}: {kind}/{doc_name}: {e.message}")
                self.assert_exporter_accepts(name, config_toml(docs))

    def assert_exporter_accepts(self, name, toml_text):
        """`multicloud-exporter check-config` on the rendered file, with the Secrets' mount
        points replaced by a directory holding the same files."""
        binary = os.environ["MCE_BIN"]
        with tempfile.TemporaryDirectory() as tmp:
            for path in set(re.findall(r'"(/etc/multicloud-exporter/accounts/[^"]+)"', toml_text)):
                local = pathlib.Path(tmp + path)
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_text("secret-from-the-mounted-secret\n")
            text = toml_text.replace('"/etc/multicloud-exporter/', f'"{tmp}/etc/multicloud-exporter/')
            cfg = pathlib.Path(tmp, "config.toml")
            cfg.write_text(text)
            clean_env = {k: v for k, v in os.environ.items()
                         if not k.startswith(("CLUSTER_", "POD_", "EXPORT_SHARD_"))}
            clean_env.update(ALIYUN_ACCESS_KEY_ID="id", ALIYUN_ACCESS_KEY_SECRET="secret")
            r = subprocess.run([binary, "check-config", "--config.file", str(cfg)],
                               capture_output=True, text=True, env=clean_env)
            self.assertEqual(r.returncode, 0, f"{name}: check-config refused\n{text}\n{r.stdout}{r.stderr}")


class Defaults(unittest.TestCase):
    docs, notes = render(ci_values("default"))

    def test_pod_identity_comes_from_the_downward_api(self):
        e = env(self.docs)
        self.assertEqual(e["POD_IP"]["valueFrom"], {"fieldRef": {"fieldPath": "status.podIP"}})
        self.assertEqual(e["POD_NAME"]["valueFrom"], {"fieldRef": {"fieldPath": "metadata.name"}})
        self.assertEqual(e["CLUSTER_DISCOVERY"]["value"], "headless")
        self.assertEqual(e["CLUSTER_SVC"]["value"],
                         f"{FULLNAME}-headless.{NAMESPACE}.svc.cluster.local")

    def test_headless_service_lists_pods_before_they_are_ready(self):
        svc = self.docs[("Service", f"{FULLNAME}-headless")]["spec"]
        self.assertEqual(svc["clusterIP"], "None")
        self.assertIs(svc["publishNotReadyAddresses"], True)
        self.assertEqual(svc["selector"], deployment(self.docs)["spec"]["selector"]["matchLabels"])

    def test_config_is_mounted_as_a_directory(self):
        c = container(self.docs)
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        self.assertEqual(mounts["config"]["mountPath"], "/etc/multicloud-exporter/config")
        for m in c["volumeMounts"]:
            self.assertNotIn("subPath", m)
        self.assertIn("--config.file=/etc/multicloud-exporter/config/config.toml", c["args"])
        volumes = {v["name"]: v for v in deployment(self.docs)["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["config"]["configMap"]["name"], FULLNAME)

    def test_credentials_come_from_the_secret_as_files(self):
        volumes = {v["name"]: v for v in deployment(self.docs)["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["account-0"]["secret"]["secretName"], "aliyun-prod")
        mounts = {m["name"]: m["mountPath"] for m in container(self.docs)["volumeMounts"]}
        self.assertEqual(mounts["account-0"], "/etc/multicloud-exporter/accounts/0")
        text = config_toml(self.docs)
        self.assertIn('access_key_id_file = "/etc/multicloud-exporter/accounts/0/access_key_id"', text)
        self.assertIn('access_key_secret_file = "/etc/multicloud-exporter/accounts/0/access_key_secret"', text)
        self.assertNotRegex(text, r"(?m)^access_key_(id|secret) =")

    def test_probes(self):
        c = container(self.docs)
        self.assertEqual(c["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "http", "scheme": "HTTP"})
        self.assertEqual(c["readinessProbe"]["httpGet"], {"path": "/-/ready", "port": "http", "scheme": "HTTP"})

    def test_soft_anti_affinity_over_nodes(self):
        spec = deployment(self.docs)["spec"]["template"]["spec"]
        (term,) = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(term["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname")
        self.assertEqual(term["podAffinityTerm"]["labelSelector"]["matchLabels"],
                         deployment(self.docs)["spec"]["selector"]["matchLabels"])

    def test_hardened_security_context(self):
        spec = deployment(self.docs)["spec"]["template"]["spec"]
        self.assertIs(spec["securityContext"]["runAsNonRoot"], True)
        self.assertEqual(spec["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"})
        self.assertIs(spec["automountServiceAccountToken"], False)
        sc = container(self.docs)["securityContext"]
        self.assertIs(sc["readOnlyRootFilesystem"], True)
        self.assertIs(sc["allowPrivilegeEscalation"], False)
        self.assertEqual(sc["capabilities"], {"drop": ["ALL"]})

    def test_rolling_update_without_a_gap(self):
        d = deployment(self.docs)["spec"]
        self.assertEqual(d["replicas"], 1)
        self.assertEqual(d["strategy"], {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})

    def test_the_service_monitor_selects_one_service_only(self):
        docs, _ = render({**ci_values("default"), "serviceMonitor": {"enabled": True}})
        selector = docs[("ServiceMonitor", FULLNAME)]["spec"]["selector"]["matchLabels"]
        services = [name for (kind, name), d in docs.items() if kind == "Service"
                    and selector.items() <= d["metadata"]["labels"].items()]
        self.assertEqual(len([k for k in docs if k[0] == "Service"]), 2)
        self.assertEqual(services, [FULLNAME])

    def test_long_names_stay_unique_and_short(self):
        docs, _ = render({**ci_values("monitoring"), "fullnameOverride": "x" * 70,
                          "cluster": {"discovery": "file"}})
        names = [name for (kind, name) in docs]
        self.assertTrue(all(len(n) <= 63 for n in names), names)
        self.assertEqual(len([k for k in docs if k[0] == "ConfigMap"]), 2 + 4)

    def test_recreate_strategy_is_valid(self):
        docs, _ = render({**ci_values("default"), "strategy": {"type": "Recreate"}})
        self.assertEqual(deployment(docs)["spec"]["strategy"], {"type": "Recreate"})
        kubernetes_validate.validate(deployment(docs), KUBE_VERSION, strict=True)

    def test_image_digest_pins_the_image(self):
        digest = "sha256:" + "a" * 64
        docs, _ = render({**ci_values("default"), "image": {"repository": "r/mce", "digest": digest}})
        self.assertEqual(container(docs)["image"], f"r/mce@{digest}")

    def test_scrape_annotations_are_on_the_pods_not_the_service(self):
        ann = deployment(self.docs)["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(ann["prometheus.io/scrape"], "true")
        self.assertEqual(ann["prometheus.io/port"], "9101")
        self.assertNotIn("annotations", self.docs[("Service", FULLNAME)]["metadata"])

    def test_numbers_stay_integers_in_the_toml(self):
        docs, _ = render({**ci_values("default"),
                          "config": {"server": {"region_concurrency": 4, "max_response_bytes": 33554432}}})
        text = config_toml(docs)
        self.assertIn("region_concurrency = 4\n", text)
        self.assertIn("max_response_bytes = 33554432\n", text)

    def test_notes_say_how_to_check_and_to_scrape_every_pod(self):
        self.assertIn("/metrics", self.notes)
        self.assertIn("MUST scrape every pod", self.notes)


class Matrix(unittest.TestCase):
    def test_hpa(self):
        docs, _ = render(ci_values("hpa"))
        hpa = docs[("HorizontalPodAutoscaler", FULLNAME)]["spec"]
        self.assertEqual((hpa["minReplicas"], hpa["maxReplicas"]), (2, 8))
        self.assertEqual(hpa["metrics"], [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}])
        self.assertEqual(hpa["scaleTargetRef"]["name"], FULLNAME)
        self.assertNotIn("replicas", deployment(docs)["spec"])
        self.assertEqual(docs[("PodDisruptionBudget", FULLNAME)]["spec"]["maxUnavailable"], 1)
        text = config_toml(docs)
        self.assertIn('access_key_id_file = "/etc/multicloud-exporter/accounts/0/AWS_ACCESS_KEY_ID"', text)
        self.assertIn('security_token_file = "/etc/multicloud-exporter/accounts/0/AWS_SESSION_TOKEN"', text)

    def test_headless(self):
        docs, _ = render(ci_values("headless"))
        e = env(docs)
        self.assertEqual(e["CLUSTER_DNS_SERVER"]["value"], "10.96.0.10:53")
        self.assertEqual(deployment(docs)["spec"]["replicas"], 3)
        text = config_toml(docs)
        self.assertIn('shard_by = "region"', text)
        self.assertIn("[accounts.endpoints]\nces = ", text)

    def test_file_discovery(self):
        docs, _ = render(ci_values("file"))
        sts = docs[("StatefulSet", FULLNAME)]["spec"]
        self.assertEqual(sts["serviceName"], f"{FULLNAME}-headless")
        self.assertEqual(sts["podManagementPolicy"], "Parallel")
        self.assertNotIn(("Deployment", FULLNAME), docs)
        e = env(docs)
        self.assertEqual(e["CLUSTER_DISCOVERY"]["value"], "file")
        self.assertEqual(e["CLUSTER_FILE"]["value"], "/etc/multicloud-exporter/members/members")
        self.assertNotIn("CLUSTER_SVC", e)
        # The members are the StatefulSet's pod names, which POD_NAME carries.
        members = docs[("ConfigMap", f"{FULLNAME}-members")]["data"]["members"]
        self.assertEqual(members.split(), [f"{FULLNAME}-0", f"{FULLNAME}-1"])
        mounts = {m["name"]: m for m in container(docs)["volumeMounts"]}
        self.assertEqual(mounts["members"]["mountPath"], "/etc/multicloud-exporter/members")
        self.assertIn(("Service", f"{FULLNAME}-headless"), docs)
        docs, _ = render({**ci_values("file"), "cluster": {"discovery": "file", "members": ["a", "b"]}})
        self.assertEqual(docs[("ConfigMap", f"{FULLNAME}-members")]["data"]["members"].split(), ["a", "b"])
        self.assertEqual(container(docs)["envFrom"], [{"secretRef": {"name": "aliyun-prod-env"}}])

    def test_monitoring(self):
        docs, _ = render(ci_values("monitoring"))
        (sm,) = docs[("ServiceMonitor", FULLNAME)]["spec"]["endpoints"]
        self.assertEqual((sm["port"], sm["path"], sm["interval"], sm["scrapeTimeout"]),
                         ("http", "/metrics", "60s", "50s"))
        self.assertEqual(docs[("ServiceMonitor", FULLNAME)]["metadata"]["labels"]["release"],
                         "kube-prometheus-stack")
        self.assertNotIn(("PodMonitor", FULLNAME), docs)
        pod_docs, _ = render({**ci_values("monitoring"), "serviceMonitor": {"enabled": False},
                              "podMonitor": {"enabled": True, "interval": "30s", "scrapeTimeout": "25s",
                                             "sampleLimit": 50000}})
        pod_monitor = pod_docs[("PodMonitor", FULLNAME)]["spec"]
        (pm,) = pod_monitor["podMetricsEndpoints"]
        self.assertEqual((pm["port"], pm["interval"], pm["scrapeTimeout"]), ("http", "30s", "25s"))
        self.assertEqual(pod_monitor["sampleLimit"], 50000)
        self.assertEqual(pod_monitor["selector"]["matchLabels"],
                         deployment(pod_docs)["spec"]["selector"]["matchLabels"])
        rules = docs[("PrometheusRule", FULLNAME)]["spec"]["groups"]
        self.assertEqual(rules, read(ROOT / "packaging" / "alerts.yml")["groups"])
        dashboards = {k[1]: d for k, d in docs.items() if k[0] == "ConfigMap" and "-dashboard-" in k[1]}
        files = sorted(glob.glob(str(ROOT / "dashboards" / "*.json")))
        self.assertEqual(len(dashboards), len(files))
        for f in files:
            stem = pathlib.Path(f).stem
            cm = dashboards[f"{FULLNAME}-dashboard-{stem}"]
            self.assertEqual(cm["metadata"]["labels"]["grafana_dashboard"], "1")
            self.assertEqual(cm["metadata"]["annotations"], {"grafana_folder": "Clouds"})
            (body,) = cm["data"].values()
            self.assertEqual(json.loads(body), read(f, json.load))
        self.assertEqual(docs[("PodDisruptionBudget", FULLNAME)]["spec"]["minAvailable"], 1)
        np = docs[("NetworkPolicy", FULLNAME)]["spec"]
        self.assertEqual(np["policyTypes"], ["Ingress", "Egress"])
        self.assertEqual(np["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"],
                         {"kubernetes.io/metadata.name": "monitoring"})
        self.assertEqual(np["egress"][1]["ports"], [{"port": 443, "protocol": "TCP"}])
        self.assertEqual(deployment(docs)["metadata"]["annotations"]["reloader.stakater.com/auto"], "true")

    def test_web_config(self):
        docs, _ = render(ci_values("webconfig"))
        c = container(docs)
        self.assertIn("--web.config.file=/etc/multicloud-exporter/web/web-config.yml", c["args"])
        self.assertEqual(c["livenessProbe"]["httpGet"]["scheme"], "HTTPS")
        self.assertEqual(c["readinessProbe"]["httpGet"]["scheme"], "HTTPS")
        volumes = {v["name"]: v for v in deployment(docs)["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["web-config"]["secret"]["secretName"], "exporter-web")
        self.assertIn("probes_without_auth = true", config_toml(docs))
        (sm,) = docs[("ServiceMonitor", FULLNAME)]["spec"]["endpoints"]
        self.assertEqual(sm["scheme"], "https")
        self.assertEqual(sm["tlsConfig"]["serverName"], "multicloud-exporter")
        spec = deployment(docs)["spec"]["template"]["spec"]
        (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(term["topologyKey"], "kubernetes.io/hostname")


class Refusals(unittest.TestCase):
    """Wrong values fail at install time with a message naming the value."""

    def refused(self, values, expected):
        with self.assertRaises(helm.HelmError) as e:
            render(values)
        self.assertIn(expected, str(e.exception))

    def test_schema_rejects_wrong_types_and_unknown_keys(self):
        base = ci_values("default")
        self.refused({**base, "replicaCount": "two"}, "/replicaCount")
        self.refused({**base, "replicas": 2}, "replicas")
        self.refused({**base, "cluster": {"discovery": "dns"}}, "/cluster/discovery")
        self.refused({**base, "config": {"server": {"scrape_interval": 60}}},
                     "/config/server/scrape_interval")
        self.refused({"accounts": [{**base["accounts"][0], "cloud": "gcp"}]}, "/accounts/0/cloud")
        self.refused({**base, "probes": {"liveness": {"periodSeconds": "10s"}}},
                     "/probes/liveness/periodSeconds")
        self.refused({**base, "config": {"server": {"scrape_interval": "1.5m"}}},
                     "/config/server/scrape_interval")
        self.refused({**base, "config": {"accounts": [{**base["accounts"][0]}]}},
                     "/config/accounts/0")
        self.refused({"accounts": [{**base["accounts"][0], "role": "x"}]}, "/accounts/0")

    def test_templates_refuse_what_cannot_work(self):
        base = ci_values("default")
        self.refused({}, "accounts: no cloud account is configured")
        self.refused({**base, "replicaCount": 2, "cluster": {"discovery": "none"}},
                     "every replica collect the whole estate")
        self.refused({**base, "webConfig": {"enabled": True}}, "webConfig.enabled needs")
        self.refused({**base, "headless": {"enabled": False}},
                     "cluster.discovery: headless needs headless.enabled")
        self.refused({**base, "hpa": {"enabled": True}, "cluster": {"discovery": "file"}},
                     "cluster.discovery: file lists a fixed set of pods")
        self.refused({**base, "hpa": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}},
                     "hpa.minReplicas must not exceed hpa.maxReplicas")
        self.refused({**base, "serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}},
                     "enable one")
        self.refused({**base, "cluster": {"discovery": "file",
                                          "file": "/etc/multicloud-exporter/config/members"}},
                     "cluster.file: its directory is where the chart mounts")
        self.refused({**base, "config": {"server": {"extra": [1, {"a": 1}]}}},
                     "a table inside a list of plain values")

    def test_credentials_in_values_are_refused(self):
        account = {**ci_values("default")["accounts"][0]}
        del account["existingSecret"]
        self.refused({"accounts": [{**account, "access_key_secret": "${SECRET}x"}]},
                     "/accounts/0/access_key_secret")
        self.refused({"accounts": [{**account, "access_key_id": "LTAI5tPLAIN"}]},
                     "/accounts/0/access_key_id")
        self.refused({**ci_values("default"), "config": {"accounts": [{**account, "security_token": "tok"}]}},
                     "/config/accounts/0/security_token")
        docs, _ = render({"accounts": [{**account, "access_key_id": "${ALIYUN_ACCESS_KEY_ID}",
                                        "access_key_secret": "${ALIYUN_ACCESS_KEY_SECRET}"}]})
        self.assertIn('access_key_id = "${ALIYUN_ACCESS_KEY_ID}"', config_toml(docs))


if __name__ == "__main__":
    unittest.main(verbosity=2)
