"""Prometheus: the config and rules pass promtool, the rule unit tests pass, every checklist
alert exists, and every metric a rule reads is one something really exports."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy import (
    DEPLOY,
    EXPORTER_METRICS,
    PROMETHEUS_METRICS,
    REPO,
    exported_metric_names,
    metric_names,
    need_tool,
)

PROM = DEPLOY / "prometheus"
RULES = sorted((PROM / "rules").glob("*.yml"))
#: The checklist's alerts, plus the pipeline's own (issue 6).
REQUIRED_ALERTS = {
    "FacePassServiceDown", "FacePassHealthCheckFailing", "FacePassHighErrorRate",
    "FacePassHighLatencyP95", "FacePassDatabaseDown", "FacePassDatabaseConnectionsHigh",
    "FacePassDiskSpaceLow", "FacePassMemoryHigh", "FacePassConsumerLagGrowing",
    "FacePassDLQNotEmpty", "FacePassDLQReceiving",
}  # fmt: skip


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = need_tool("promtool")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)


def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_promtool_check_config() -> None:
    result = _promtool("check", "config", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests() -> None:
    result = _promtool("test", "rules", str(PROM / "tests" / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A rule whose threshold moved (5 % -> 50 %) fails the unit tests."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    rules = (PROM / "rules" / "facepass.yml").read_text()
    assert "> 0.05\n" in rules
    (tmp_path / "rules" / "facepass.yml").write_text(rules.replace("> 0.05\n", "> 0.5\n"))
    (tmp_path / "tests" / "alerts.test.yml").write_text(
        (PROM / "tests" / "alerts.test.yml").read_text()
    )
    result = _promtool("test", "rules", str(tmp_path / "tests" / "alerts.test.yml"))
    assert result.returncode != 0
    assert "FacePassHighErrorRate" in result.stdout + result.stderr


def test_every_checklist_alert_exists_with_a_runbook() -> None:
    rules = _rules()
    names = {rule["alert"] for rule in rules}
    assert names >= REQUIRED_ALERTS
    tested = (PROM / "tests" / "alerts.test.yml").read_text()
    for rule in rules:
        assert f"alertname: {rule['alert']}" in tested, f"{rule['alert']} has no unit test"
        assert rule["labels"]["severity"] in {"critical", "warning"}
        doc, _, anchor = rule["annotations"]["runbook"].partition("#")
        headings = re.findall(r"^#+ (.+)$", (REPO / doc).read_text(), flags=re.MULTILINE)
        anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
        assert anchor in anchors, f"{rule['alert']}: no heading #{anchor} in {doc}"


def test_rules_read_only_metrics_that_are_exported() -> None:
    known = exported_metric_names() | PROMETHEUS_METRICS
    known |= set().union(*EXPORTER_METRICS.values())
    for rule in _rules():
        missing = metric_names(rule["expr"]) - known
        assert not missing, f"{rule['alert']} reads metrics nobody exports: {missing}"


def test_every_service_and_exporter_is_scraped() -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for service in ("ingest", "search-api", "embedder", "notifier"):
        job = jobs[f"facepass-{service}"]
        assert job["metrics_path"] == "/api/v2/metrics"
        assert job["dns_sd_configs"][0]["names"] == [service]
    assert set(EXPORTER_METRICS) <= set(jobs)
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for job in ("node", "postgres", "kafka"):
        host = jobs[job]["static_configs"][0]["targets"][0].split(":")[0]
        assert host in compose, f"scrape target {host} is not a compose service"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (job) (rate(a_total{x="y", z=~"5.."}[5m])) / on (job) b', {"a_total", "b"}),
        ("histogram_quantile(0.95, sum by (le) (rate(c_bucket[$__rate_interval])))", {"c_bucket"}),
        ('absent(up{job="j"}) or vector(0) and on () d > 1', {"up", "d"}),
        ("delta(sum(e)[15m:1m]) > 0 unless f offset 5m", {"e", "f"}),
    ],
)
def test_metric_name_extraction(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
