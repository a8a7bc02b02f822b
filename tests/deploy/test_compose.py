"""docker-compose.yml is valid, runs every target from one image, passes FacePass settings by
their real names, and the nginx proxy routes like the Kubernetes ingress."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy import REPO, need_tool, setting_names

COMPOSE = REPO / "docker-compose.yml"
#: Settings that only the embedded stack of `facepass up` reads: containers do not need them.
EMBEDDED_ONLY = {"FACEPASS_STATE_DIR", "FACEPASS_START_TIMEOUT_S", "FACEPASS_DEMO"}
TARGETS = {"ingest", "search-api", "embedder", "notifier"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _facepass_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    image = compose["x-facepass-image"]["image"]
    return {n: s for n, s in compose["services"].items() if s.get("image") == image}


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    tool = need_tool("docker-compose")
    env_file = tmp_path / ".env"
    env_file.write_text((REPO / ".env.example").read_text())
    result = subprocess.run(
        [tool, "--env-file", str(env_file), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr  # e.g. a variable with no default


def test_docker_compose_config_rejects_a_broken_file(tmp_path: Path) -> None:
    """The check above can fail: a service with an unknown key is refused."""
    tool = need_tool("docker-compose")
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE.read_text().replace("    restart: unless-stopped\n", "    restrat: x\n", 1)
    broken.write_text(text)
    result = subprocess.run(
        [tool, "-f", str(broken), "config", "-q"], capture_output=True, text=True, timeout=60,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0


def test_every_facepass_variable_is_a_setting(compose: dict[str, Any]) -> None:
    known = setting_names()
    services = _facepass_services(compose)
    assert set(services) == {"init", *TARGETS}
    for name, service in services.items():
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name} sets variables FacePass does not read: {sorted(unknown)}"


def test_every_setting_reaches_the_containers(compose: dict[str, Any]) -> None:
    passed = set(compose["x-facepass-env"])
    assert passed == setting_names() - EMBEDDED_ONLY


def test_interpolated_variables_are_settings_or_deploy_knobs() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    strays = {v for v in used - setting_names() if not v.startswith("DEPLOY_")}
    assert not strays
    documented = (REPO / "docs" / "operations.md").read_text()
    for knob in sorted(v for v in used if v.startswith("DEPLOY_")):
        assert f"`{knob}`" in documented, f"{knob} is not documented in docs/operations.md"


def test_each_target_runs_from_the_one_image(compose: dict[str, Any]) -> None:
    services = _facepass_services(compose)
    for target in TARGETS:
        assert services[target]["command"] == ["serve", "--target", target]
    assert services["init"]["command"] == ["init"]
    for target in TARGETS:
        assert services[target]["depends_on"]["init"] == {
            "condition": "service_completed_successfully"
        }
    env = compose["x-facepass-env"]
    assert env["FACEPASS_HOST"] == "0.0.0.0"
    assert env["KAFKA_ENABLE_IDEMPOTENCE"] == "True"  # Apache Kafka supports it
    assert env["POSTGRES_HOST"] in compose["services"]
    assert env["REDIS_HOST"] in compose["services"]
    assert env["KAFKA_BOOTSTRAP"].split(":")[0] in compose["services"]
    assert env["S3_ENDPOINT"].split("//")[1].split(":")[0] in compose["services"]


def test_embedder_replicas_do_not_exceed_the_partitions(compose: dict[str, Any]) -> None:
    replicas = compose["services"]["embedder"]["deploy"]["replicas"]
    partitions = compose["x-facepass-env"]["KAFKA_PARTITIONS"]
    default = lambda text: int(re.search(r":-(\d+)\}", text).group(1))  # noqa: E731
    assert 1 < default(replicas) <= default(partitions)


def test_images_are_pinned_and_dependencies_are_checked(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
    for name in ("db_vector", "redis", "s3", "kafka", "ingest", "search-api", "embedder"):
        assert "healthcheck" in compose["services"][name] or name in TARGETS
    assert compose["services"]["db_vector"]["image"].startswith("pgvector/pgvector:pg")
    assert compose["services"]["proxy"]["ports"][0].endswith(":8000:8000")
    assert compose["services"]["prometheus"]["ports"][0].endswith(":9090:9090")


def _nginx_routes() -> dict[str, str]:
    text = (REPO / "deploy/nginx/nginx.conf").read_text()
    upstreams = dict(re.findall(r"set \$(\w+) http://([\w-]+):8000;", text))
    routes = re.findall(r"location\s+(=|\^~)?\s*(\S+)\s*\{\s*proxy_pass \$(\w+);", text)
    return {path: upstreams[var] for _, path, var in routes}


def test_proxy_sends_ingest_routes_to_ingest_and_the_rest_to_search() -> None:
    assert _nginx_routes() == {
        "/api/v2/index": "ingest",
        "/api/v2/photos/": "ingest",
        "/api/v2/sessions/": "ingest",
        "/": "search-api",
    }
    text = (REPO / "deploy/nginx/nginx.conf").read_text()
    trusted = yaml.safe_load(COMPOSE.read_text())["x-facepass-env"]["TRUSTED_PROXIES"]
    proxy_ip = yaml.safe_load(COMPOSE.read_text())["services"]["proxy"]["networks"]["facepass"]
    assert proxy_ip["ipv4_address"] + "/32" in trusted
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in text


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.MULTILINE)) >= 2
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert "libgl1" in text and "libglib2.0-0" in text  # opencv-python (insightface)
    assert re.search(r'^ENTRYPOINT \["facepass"\]', text, flags=re.MULTILINE)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".env", ".git", ".facepass"} <= set(ignored)
