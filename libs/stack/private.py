"""A private embedded stack and the `facepass` processes run on it, for the bench and the tests.

Both start throwaway stacks on free loopback ports in a state directory of their own, then run
`facepass serve` children pointed at those servers. This module is the one place that picks
the ports, builds such settings, turns settings into a child's environment, and waits for a
child to answer its health check.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from libs.common.settings import (
    KafkaSettings,
    PostgresSettings,
    RedisSettings,
    S3Settings,
    Settings,
    StackSettings,
    load_settings,
)

# Every port picked lies below Linux's ephemeral range (32768-60999): there, any outgoing
# connection may take a port between our check and the server's bind.
_LOW, _HIGH = 10_000, 32_000
#: SeaweedFS binds its S3 port P, its internals on P+1..P+4, and each one's gRPC twin + 10000.
_S3_SPAN, _GRPC_OFFSET = 5, 10_000


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PortPicker:
    """Free loopback ports, never the same one twice."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - port picking, not a secret
        self._taken: set[int] = set()

    def port(self) -> int:
        while True:
            port = self._rng.randrange(_LOW, _HIGH)
            if port not in self._taken and _free(port):
                self._taken.add(port)
                return port

    def s3_port(self) -> int:
        """A port P such that every port SeaweedFS binds for it is free."""
        while True:
            port = self._rng.randrange(_LOW, _HIGH - _GRPC_OFFSET - _S3_SPAN)
            ports = [p + grpc for p in range(port, port + _S3_SPAN) for grpc in (0, _GRPC_OFFSET)]
            if not self._taken.intersection(ports) and all(_free(p) for p in ports):
                self._taken.update(ports)
                return port


def free_port() -> int:
    """One free loopback port (for a `facepass serve` child)."""
    return PortPicker().port()


def private_stack_settings(
    state_dir: Path,
    *,
    bucket: str,
    kafka_partitions: int | None = None,
    postgres_password: str | None = None,
    start_timeout_s: float = 90,
    seed: int | None = None,
) -> Settings:
    """Settings whose four servers are embedded, on free ports, with data in `state_dir`."""
    ports = PortPicker(seed)
    s3_port = ports.s3_port()
    postgres: dict[str, Any] = {"host": "127.0.0.1", "port": ports.port()}
    if postgres_password is not None:
        postgres["password"] = postgres_password
    kafka: dict[str, Any] = {"bootstrap": f"127.0.0.1:{ports.port()}"}
    if kafka_partitions is not None:
        kafka["partitions"] = kafka_partitions
    return load_settings(
        postgres=PostgresSettings(**postgres),
        redis=RedisSettings(host="127.0.0.1", port=ports.port()),
        s3=S3Settings(endpoint=f"http://127.0.0.1:{s3_port}", bucket=bucket),
        kafka=KafkaSettings(**kafka),
        stack=StackSettings(state_dir=state_dir, start_timeout_s=start_timeout_s),
    )


#: Variables a child must not inherit from the parent's environment: settings_env sets them.
_STACK_PREFIXES = ("POSTGRES_", "S3_", "KAFKA_", "REDIS_", "FACEPASS_", "SEARCH_", "EMBEDDER_")


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that points a `facepass` child process at the servers of `settings`
    (its topics and consumer group included), plus `extra`."""
    pg, kafka, s3 = settings.postgres, settings.kafka, settings.s3
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STACK_PREFIXES)}
    env.update(
        POSTGRES_HOST=pg.host,
        POSTGRES_PORT=str(pg.port),
        POSTGRES_USER=pg.user,
        POSTGRES_PASSWORD=pg.password.get_secret_value(),
        POSTGRES_DB=pg.db,
        REDIS_HOST=settings.redis.host,
        REDIS_PORT=str(settings.redis.port),
        S3_ENDPOINT=s3.endpoint,
        S3_BUCKET=s3.bucket,
        S3_ACCESS_KEY=s3.access_key.get_secret_value(),
        S3_SECRET_KEY=s3.secret_key.get_secret_value(),
        KAFKA_BOOTSTRAP=kafka.bootstrap,
        KAFKA_PARTITIONS=str(kafka.partitions),
        KAFKA_TOPIC_UPLOADED=kafka.topic_uploaded,
        KAFKA_TOPIC_INDEXED=kafka.topic_indexed,
        KAFKA_TOPIC_DLQ=kafka.topic_dlq,
        KAFKA_TOPIC_MATCHED=kafka.topic_matched,
        KAFKA_CONSUMER_GROUP=kafka.consumer_group,
        FACEPASS_STATE_DIR=str(settings.stack.state_dir),
    )
    env.update(extra)
    return env


def stacks_and_log(process: subprocess.Popen[bytes], log: Path, tail: int = 12_000) -> str:
    """Every thread's stack of a running facepass process (SIGUSR1: the faulthandler that
    facepass/cli registers), then its log's tail: what a caller that gave up waiting reports."""
    if process.poll() is None:
        process.send_signal(signal.SIGUSR1)
        time.sleep(1)
    return log.read_text(errors="replace")[-tail:]


def wait_healthy(
    base_url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> None:
    """Wait until `process` answers 200 on /api/v2/health; raise with its log's tail if it
    exits or does not answer in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"facepass exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{base_url}/api/v2/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    tail = stacks_and_log(process, log)
    raise RuntimeError(f"facepass did not become healthy within {timeout:.0f} s:\n{tail}")
