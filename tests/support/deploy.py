"""Shared by the deploy-file tests: the repository, YAML loading, the tools they need, the
settings' variable names and the metric names FacePass really exports."""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.common.settings import Settings, _env_name

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

#: Metrics from the exporters the compose file runs (and prometheus.yml scrapes, by job).
EXPORTER_METRICS: dict[str, set[str]] = {
    "node": {
        "node_filesystem_avail_bytes", "node_filesystem_size_bytes",
        "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes",
    },
    "postgres": {"pg_up", "pg_stat_activity_count", "pg_settings_max_connections"},
    "kafka": {
        "kafka_consumergroup_lag", "kafka_consumergroup_current_offset",
        "kafka_topic_partition_current_offset",
    },
    "facepass-health": {"probe_success"},
}  # fmt: skip
#: Series Prometheus itself makes for every target.
PROMETHEUS_METRICS = {"up"}


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (tests/install-tools.sh installs it: make test)")
    return path


def load_yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def setting_names() -> set[str]:
    """Every environment variable FacePass's settings read."""
    names = set()
    for field in Settings.model_fields.values():
        group = field.annotation
        assert isinstance(group, type)
        names |= {_env_name(group, name) for name in group.model_fields}  # type: ignore[arg-type]
    return names


_PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in _PROMQL_KEYWORDS:
            continue
        names.add(match.group())
    return names


@functools.cache
def exported_metric_names() -> frozenset[str]:
    """Series names that GET /api/v2/metrics of the `all` target really serves, after one
    request went through the app (the HTTP metrics are created on the first request)."""
    from litestar.testing import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    from facepass.server import create_app
    from libs.common.settings import load_settings

    client = TestClient(create_app(load_settings(), "all"))  # no lifespan: no servers needed
    assert client.get("/api/v2/health/live").status_code == 200
    response = client.get("/api/v2/metrics")
    assert response.status_code == 200
    names: set[str] = set()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    for family in text_string_to_metric_families(response.text):
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
    return frozenset(names)
