"""The provisioned Grafana dashboard: valid JSON, the panels the issue asks for, the
provisioned datasource, and only metrics that something exports."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.support.deploy import (
    DEPLOY,
    EXPORTER_METRICS,
    PROMETHEUS_METRICS,
    exported_metric_names,
    metric_names,
)

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def _panels() -> list[dict[str, Any]]:
    panels = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
        for panel in dashboard["panels"]:
            panels += [panel, *panel.get("panels", [])]
    return panels


def test_dashboards_are_valid_and_well_formed() -> None:
    assert DASHBOARDS
    panels = _panels()
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_panels_use_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uids = {ds["uid"] for ds in provisioned["datasources"]}
    for panel in _panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in uids
        assert all(t["datasource"]["uid"] in uids for t in panel["targets"])
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/facepass.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_issue_panels_are_there() -> None:
    exprs = " ".join(t["expr"] for p in _panels() for t in p.get("targets", []))
    titles = " ".join(p["title"].lower() for p in _panels())
    for words in ("request rate", "errors", "p50", "p95", "p99", "indexing throughput",
                  "faces per photo", "lag per partition", "dlq", "cache hit ratio"):  # fmt: skip
        assert words in titles, words
    for metric in ("facepass_requests_total", "facepass_request_duration_seconds_bucket",
                   "facepass_photos_indexed_total", "facepass_faces_per_photo_bucket",
                   "kafka_consumergroup_lag", "facepass_dlq_messages_total",
                   "facepass_search_cache_requests_total"):  # fmt: skip
        assert metric in exprs, metric


def test_panels_query_only_metrics_that_are_exported() -> None:
    known = exported_metric_names() | PROMETHEUS_METRICS
    known |= set().union(*EXPORTER_METRICS.values())
    for panel in _panels():
        for target in panel.get("targets", []):
            missing = metric_names(target["expr"]) - known
            assert not missing, f"panel {panel['title']!r} queries {missing}: nobody exports it"
