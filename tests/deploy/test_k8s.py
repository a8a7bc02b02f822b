"""Kubernetes manifests: core kinds pass kubernetes-validate (strict), the KEDA ScaledObject
passes tests/deploy/keda-scaledobject.schema.json, and the pieces agree with each other and
with the settings (targets, ConfigMap keys, partitions bound the embedder, ingress routes)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.deploy import DEPLOY, load_yaml_docs, setting_names

K8S = DEPLOY / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
SCHEMA = json.loads((Path(__file__).parent / "keda-scaledobject.schema.json").read_text())


def _objects() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in load_yaml_docs(path)]


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in _objects() if o["kind"] == kind}


def _validate_core(obj: dict[str, Any]) -> None:
    kv = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed (pip install it)"
    )
    kv.validate(obj, "1.30.0", strict=True)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_core_manifests_pass_kubernetes_validate(path: Path) -> None:
    for obj in load_yaml_docs(path):
        if obj["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(obj, SCHEMA)
        else:
            _validate_core(obj)


def test_kubernetes_validate_rejects_a_wrong_manifest() -> None:
    deployment = copy.deepcopy(_by_kind("Deployment")["facepass-ingest"])
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate not installed")
    with pytest.raises(kv.ValidationError):
        _validate_core(deployment)


def test_keda_schema_rejects_wrong_scaled_objects() -> None:
    scaled = _by_kind("ScaledObject")["facepass-embedder"]
    jsonschema.validate(scaled, SCHEMA)
    bad_versions = [
        ("spec", "maxReplicas", 12),  # HPA's name, not KEDA's
        ("trigger", "lagTreshold", "50"),  # typo in the Kafka scaler's metadata
        ("trigger", "lagThreshold", 50),  # metadata values are strings
    ]
    for where, key, value in bad_versions:
        bad = copy.deepcopy(scaled)
        target = bad["spec"] if where == "spec" else bad["spec"]["triggers"][0]["metadata"]
        target[key] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)


def test_embedder_scales_on_the_groups_lag_up_to_the_partitions() -> None:
    config = _by_kind("ConfigMap")["facepass-config"]["data"]
    scaled = _by_kind("ScaledObject")["facepass-embedder"]["spec"]
    trigger = scaled["triggers"][0]
    assert trigger["type"] == "kafka"
    assert scaled["scaleTargetRef"]["name"] in _by_kind("Deployment")
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    assert scaled["maxReplicaCount"] <= int(config["KAFKA_PARTITIONS"])
    assert trigger["metadata"]["consumerGroup"] == config["KAFKA_CONSUMER_GROUP"]
    assert trigger["metadata"]["topic"] == config["KAFKA_TOPIC_UPLOADED"]
    assert trigger["metadata"]["bootstrapServers"] == config["KAFKA_BOOTSTRAP"]
    assert trigger["metadata"]["allowIdleConsumers"] == "false"


def test_search_api_has_an_hpa() -> None:
    hpa = _by_kind("HorizontalPodAutoscaler")["facepass-search-api"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "facepass-search-api",
    }
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]


def test_deployments_run_their_target_with_settings_from_configmap_and_secret() -> None:
    known = setting_names()
    config = _by_kind("ConfigMap")["facepass-config"]["data"]
    secret = _by_kind("Secret")["facepass-secrets"]["stringData"]
    assert not (set(config) | set(secret)) - known
    assert not set(config) & set(secret)
    assert {"POSTGRES_PASSWORD", "S3_SECRET_KEY", "API_KEYS"} <= set(secret)
    assert config["FACEPASS_HOST"] == "0.0.0.0" and config["KAFKA_ENABLE_IDEMPOTENCE"] == "True"
    deployments = _by_kind("Deployment")
    assert set(deployments) == {
        "facepass-ingest",
        "facepass-search-api",
        "facepass-embedder",
        "facepass-notifier",
    }
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["serve", "--target", name.removeprefix("facepass-")]
        refs = {next(iter(ref)): next(iter(ref.values()))["name"] for ref in container["envFrom"]}
        assert refs == {"configMapRef": "facepass-config", "secretRef": "facepass-secrets"}
        assert container["readinessProbe"]["httpGet"]["path"] == "/api/v2/health"
        assert container["livenessProbe"]["httpGet"]["path"] == "/api/v2/health/live"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert int(container["ports"][0]["containerPort"]) == int(config["FACEPASS_PORT"])


def test_ingress_routes_ingest_paths_to_ingest_and_the_rest_to_search() -> None:
    (ingress,) = _by_kind("Ingress").values()
    paths = {
        (p["path"], p["pathType"]): p["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert paths == {
        ("/api/v2/index", "Exact"): "facepass-ingest",
        ("/api/v2/photos", "Prefix"): "facepass-ingest",
        ("/api/v2/sessions", "Prefix"): "facepass-ingest",
        ("/", "Prefix"): "facepass-search-api",
    }
    services = _by_kind("Service")
    assert set(paths.values()) <= set(services)
    assert ingress["spec"]["tls"]


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in MANIFESTS} - {"secret.example.yaml"}
