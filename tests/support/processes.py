"""Run `facepass` processes (serve, up) against a test stack, as users and operators do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from libs.common.settings import Settings
from libs.stack.process import die_with_parent
from tests.support.stack import free_port

FACEPASS = str(Path(sys.executable).parent / "facepass")
API_KEY = "test-api-key-0123456789"


def stack_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment that points a facepass process at the servers of `settings`."""
    prefixes = ("POSTGRES_", "S3_", "KAFKA_", "REDIS_", "FACEPASS_", "SEARCH_", "EMBEDDER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        POSTGRES_HOST=settings.postgres.host,
        POSTGRES_PORT=str(settings.postgres.port),
        POSTGRES_USER=settings.postgres.user,
        POSTGRES_PASSWORD=settings.postgres.password.get_secret_value(),
        POSTGRES_DB=settings.postgres.db,
        REDIS_HOST=settings.redis.host,
        REDIS_PORT=str(settings.redis.port),
        S3_ENDPOINT=settings.s3.endpoint,
        S3_BUCKET=settings.s3.bucket,
        S3_ACCESS_KEY=settings.s3.access_key.get_secret_value(),
        S3_SECRET_KEY=settings.s3.secret_key.get_secret_value(),
        KAFKA_BOOTSTRAP=settings.kafka.bootstrap,
        KAFKA_PARTITIONS=str(settings.kafka.partitions),
        FACEPASS_STATE_DIR=str(settings.stack.state_dir),
        API_KEYS=API_KEY,
        EMBEDDER_BATCH_WAIT_MS="50",
        # Every test client is 127.0.0.1: the suite would trip the limits. Tests of the limits
        # set them and give each client an address of its own (X-Forwarded-For).
        SEARCH_RATE_LIMIT_PER_MINUTE="0",
        RATE_LIMIT_API_KEY_PER_MINUTE="0",
    )
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, **kwargs)  # type: ignore[arg-type]


def wait_healthy(
    base_url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"facepass exited with {process.returncode}:\n{log.read_text()[-4000:]}"
            )
        try:
            if httpx.get(f"{base_url}/api/v2/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"facepass did not become healthy:\n{log.read_text()[-4000:]}")


@contextmanager
def facepass_serve(
    settings: Settings, log_dir: Path, target: str = "all", **env: str
) -> Iterator[ServerProcess]:
    """`facepass serve --target TARGET` on a free port, stopped with SIGTERM afterwards."""
    port = free_port(__import__("random").Random())
    log_path = log_dir / f"serve-{target}-{port}.log"
    process = subprocess.Popen(
        [FACEPASS, "serve", "--target", target],
        env=stack_env(settings, FACEPASS_PORT=str(port), **env),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        # If the test process dies, its servers go with it.
        preexec_fn=die_with_parent(signal.SIGTERM),
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process, log_path)
        yield ServerProcess(process, base_url, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
