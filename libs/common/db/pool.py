"""asyncpg connection pools with the pgvector codec registered on every connection."""

from __future__ import annotations

from typing import Any

import asyncpg
from pgvector.asyncpg import register_vector

from libs.common.settings import PostgresSettings


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    await register_vector(conn)


async def create_pool(pg: PostgresSettings, **overrides: Any) -> asyncpg.Pool[Any]:
    """A pool for the POSTGRES_* database. Raises OSError/asyncpg errors if it is unreachable."""
    options: dict[str, Any] = {
        "host": pg.host,
        "port": pg.port,
        "user": pg.user,
        "password": pg.password.get_secret_value(),
        "database": pg.db,
        "min_size": pg.pool_min_size,
        "max_size": pg.pool_max_size,
        "init": _init_connection,
        "command_timeout": 30,
        "timeout": 10,
    }
    options.update(overrides)
    pool = await asyncpg.create_pool(**options)
    assert pool is not None
    return pool
