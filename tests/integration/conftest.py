"""A running `facepass serve --target all` against the session's embedded stack, and a
connection pool to its database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from libs.common.db.pool import create_pool
from libs.common.settings import Settings
from tests.support.processes import ServerProcess, facepass_serve


@pytest.fixture(scope="session")
def server(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with facepass_serve(stack, tmp_path_factory.mktemp("server-logs")) as process:
        yield process


@pytest.fixture
async def pool(stack: Settings) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool on the stack's database, closed after the test."""
    pool = await create_pool(stack.postgres)
    try:
        yield pool
    finally:
        await pool.close()
