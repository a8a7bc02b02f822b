"""The advisory locks every write to a photo holds (see libs/common/db/photos.py for the lock
order): one per photo, and its session's, shared by a photo's write and exclusive for the
session's erasure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

#: A plain connection or one borrowed from a pool.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


#: The first key of a session's advisory lock (two-key form; PostgreSQL keeps it apart from
#: the one-key space of the photos' locks).
SESSION_LOCK_CLASS = 1
_SESSION_LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared($1, hashtext($2))"
_SESSION_LOCK_EXCLUSIVE = "SELECT pg_advisory_xact_lock($1, hashtext($2))"


@asynccontextmanager
async def photo_transaction(
    pool: asyncpg.Pool, photo_id: str, session_id: str | None = None
) -> AsyncIterator[Connection]:
    """A transaction holding the photo's lock until it ends (commit or rollback), and, when the
    session is known, that session's lock in shared mode (see the lock order above)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", photo_id)
        if session_id is not None:
            await lock_session(conn, session_id, exclusive=False)
        yield conn


async def lock_session(conn: Connection, session_id: str, *, exclusive: bool) -> None:
    """The session's advisory lock until the transaction ends: shared for a photo's write,
    exclusive for the session's erasure. Take it before any row lock."""
    query = _SESSION_LOCK_EXCLUSIVE if exclusive else _SESSION_LOCK_SHARED
    await conn.execute(query, SESSION_LOCK_CLASS, session_id)
