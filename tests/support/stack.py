"""Settings for a throwaway embedded stack on free ports in a temporary state directory."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from libs.common.settings import Settings
from libs.stack.private import private_stack_settings


def stack_settings(state_dir: Path, *, seed: int | None = None) -> Settings:
    """Settings whose four servers are embedded, on free ports, with data in `state_dir`."""
    return private_stack_settings(
        state_dir,
        bucket="facepass-test",
        kafka_partitions=4,
        postgres_password="test-password",
        seed=seed,
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
