#!/usr/bin/env python3
"""Writes the Grafana dashboards (dashboards/*.json) from the panel lists below, and with
--rules FILE a Prometheus rule file holding every query, for `promtool check rules` to parse.
Run it after editing; .ci/run checks that the committed JSON is what it writes."""
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
SEL = 'cloud_provider=~"$cloud_provider",account_id=~"$account_id",region=~"$region"'
RES = SEL + ',resource_id=~"$resource_id"'


def variable(name, query):
    return {
        "name": name, "label": name, "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": query, "refId": name}, "definition": query,
        "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2, "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def variables(metric, with_resource):
    out = [{
        "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
        "current": {}, "hide": 0,
    }]
    out.append(variable("cloud_provider", f"label_values({metric}, cloud_provider)"))
    out.append(variable("account_id", f'label_values({metric}{{cloud_provider=~"$cloud_provider"}}, account_id)'))
    out.append(variable("region", f'label_values({metric}{{cloud_provider=~"$cloud_provider",account_id=~"$account_id"}}, region)'))
    if with_resource:
        out.append(variable("resource_id", f'label_values({metric}{{{SEL}}}, resource_id)'))
    return out


def panel(pid, title, exprs, unit, x, y, w=12, h=8, kind="timeseries", legend="{{cloud_provider}} {{code_name}} {{resource_id}}"):
    return {
        "id": pid, "title": title, "type": kind,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(65 + i), "expr": e, "legendFormat": legend if kind == "timeseries" else ""}
            for i, e in enumerate(exprs)
        ],
    }


def dashboard(uid, title, metric, with_resource, panels):
    laid = []
    for i, (title_, exprs, unit, *rest) in enumerate(panels):
        kind = rest[0] if rest else "timeseries"
        legend = rest[1] if len(rest) > 1 else "{{cloud_provider}} {{code_name}} {{resource_id}}"
        laid.append(panel(i + 1, title_, exprs, unit, (i % 2) * 12, (i // 2) * 8, kind=kind, legend=legend))
    return {
        "uid": uid, "title": title, "tags": ["multicloud-exporter"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables(metric, with_resource)},
        "panels": laid,
    }


FLEET = dashboard("mce-fleet", "multicloud-exporter / Fleet", "multicloud_scrape_success", False, [
    ("Jobs failing", [f"sum by (cloud_provider, account_id, region, product) (1 - multicloud_scrape_success{{{SEL}}}) > 0"], "none", "table"),
    ("Resources discovered", [f"sum by (cloud_provider, account_id, region) (multicloud_discovered_resources{{{SEL}}})"], "none", "timeseries", "{{cloud_provider}} {{account_id}} {{region}}"),
    ("Cloud API calls per second", ["sum by (cloud_provider, api) (rate(multicloud_request_total[5m]))"], "reqps", "timeseries", "{{cloud_provider}} {{api}}"),
    ("Failed calls per second by class", ['sum by (cloud_provider, status) (rate(multicloud_request_total{status!="ok"}[5m]))'], "reqps", "timeseries", "{{cloud_provider}} {{status}}"),
    ("Throttled calls per second", ["sum by (cloud_provider, api) (rate(multicloud_rate_limit_total[5m]))"], "reqps", "timeseries", "{{cloud_provider}} {{api}}"),
    ("Slowest job against the scrape timeout", ["max by (instance) (multicloud_scrape_duration_seconds)", "max by (instance) (multicloud_scrape_timeout_seconds)"], "s", "timeseries", "{{instance}}"),
    ("Cloud API latency (p90)", ["histogram_quantile(0.9, sum by (cloud_provider, api, le) (rate(multicloud_request_duration_seconds_bucket[5m])))"], "s", "timeseries", "{{cloud_provider}} {{api}}"),
    ("Jobs per replica", ["multicloud_shard_owned_keys", "multicloud_shard_members"], "none", "timeseries", "{{instance}}"),
])

LB = dashboard("mce-lb", "multicloud-exporter / Load balancers", "multicloud_resource_info", True, [
    ("Active connections", [f'{m}_active_connections{{{RES}}}' for m in ("clb", "alb", "nlb", "gwlb")], "none"),
    ("New connections per second", [f'{m}_new_connections_per_second{{{RES}}}' for m in ("clb", "alb", "nlb", "gwlb")], "cps"),
    ("Inbound traffic", [f'{m}_in_bytes_per_second{{{RES}}}' for m in ("clb", "alb", "nlb", "gwlb")], "Bps"),
    ("Outbound traffic", [f'{m}_out_bytes_per_second{{{RES}}}' for m in ("clb", "alb", "nlb", "gwlb")], "Bps"),
    ("Requests per second", [f'{m}_requests_per_second{{{RES}}}' for m in ("clb", "alb")], "reqps"),
    ("HTTP responses per second by class", [f'sum by (cloud_provider, resource_id, code_name, code_class) ({m}_http_responses_per_second{{{RES}}})' for m in ("clb", "alb")], "reqps", "timeseries", "{{cloud_provider}} {{code_name}} {{code_class}}"),
    ("Unhealthy backends", [f'{m}_unhealthy_backends{{{RES}}}' for m in ("clb", "alb")], "none"),
    ("Request duration", [f'{m}_request_duration_seconds{{{RES}}}' for m in ("clb", "alb")], "s"),
])

BWP = dashboard("mce-bwp", "multicloud-exporter / Bandwidth packages", "bwp_out_bytes_per_second", True, [
    ("Outbound traffic", [f"bwp_out_bytes_per_second{{{RES}}}"], "Bps"),
    ("Inbound traffic", [f"bwp_in_bytes_per_second{{{RES}}}"], "Bps"),
    ("Outbound utilisation", [f"bwp_out_bandwidth_utilization_ratio{{{RES}}}"], "percentunit"),
    ("Inbound utilisation", [f"bwp_in_bandwidth_utilization_ratio{{{RES}}}"], "percentunit"),
    ("Packets dropped by the rate limit", [f"bwp_out_ratelimit_dropped_packets_per_second{{{RES}}}", f"bwp_in_ratelimit_dropped_packets_per_second{{{RES}}}"], "pps"),
    ("Packets per second", [f"bwp_out_packets_per_second{{{RES}}}", f"bwp_in_packets_per_second{{{RES}}}"], "pps"),
])

S3 = dashboard("mce-s3", "multicloud-exporter / Object storage", "s3_storage_bytes", True, [
    ("Stored bytes", [f"sum by (cloud_provider, resource_id, code_name) (s3_storage_bytes{{{RES}}})"], "bytes"),
    ("Objects", [f"s3_objects{{{RES}}}"], "none"),
    ("Requests per second", [f"s3_requests_per_second{{{RES}}}"], "reqps"),
    ("Responses per second by class", [f"sum by (cloud_provider, resource_id, code_name, code_class) (s3_http_responses_per_second{{{RES}}})"], "reqps", "timeseries", "{{cloud_provider}} {{code_name}} {{code_class}}"),
    ("Traffic", [f"s3_out_bytes_per_second{{{RES}}}", f"s3_in_bytes_per_second{{{RES}}}"], "Bps"),
    ("First-byte latency", [f"s3_first_byte_latency_seconds{{{RES}}}"], "s"),
])

DASHBOARDS = {"fleet.json": FLEET, "load-balancers.json": LB, "bandwidth-packages.json": BWP, "object-storage.json": S3}


def main():
    for name, board in DASHBOARDS.items():
        (HERE / name).write_text(json.dumps(board, indent=2, sort_keys=True) + "\n")
    if len(sys.argv) == 3 and sys.argv[1] == "--rules":
        rules = []
        for name, board in DASHBOARDS.items():
            for p in board["panels"]:
                for t in p["targets"]:
                    expr = t["expr"].replace("$cloud_provider", ".*").replace("$account_id", ".*")
                    expr = expr.replace("$region", ".*").replace("$resource_id", ".*")
                    rules.append({"record": f"dashboard:{Path(name).stem.replace('-', '_')}:{p['id']}_{t['refId']}", "expr": expr})
        groups = {"groups": [{"name": "dashboard-queries", "rules": rules}]}
        Path(sys.argv[2]).write_text(json.dumps(groups, indent=2) + "\n")


if __name__ == "__main__":
    main()
