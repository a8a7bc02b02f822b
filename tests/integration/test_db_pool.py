"""The pool's connections on the real PostgreSQL: handed back without a reset query, and a
transaction left open by a failed handler is still rolled back."""

from __future__ import annotations

import asyncpg
import pytest

from libs.common.db.pool import create_pool
from libs.common.settings import Settings


async def test_release_sends_nothing_and_rolls_back_an_open_transaction(stack: Settings) -> None:
    pool = await create_pool(stack.postgres, min_size=1, max_size=1)
    try:
        sent: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda logged: sent.append(logged.query))
            await conn.fetchval("SELECT 1")
        assert sent == ["SELECT 1"]  # no reset query on release

        with pytest.raises(RuntimeError):
            async with pool.acquire() as conn:
                transaction = conn.transaction()
                await transaction.start()
                await conn.execute("CREATE TEMP TABLE left_open (x int)")
                raise RuntimeError("the handler failed before committing")
        async with pool.acquire() as conn:  # the one connection of the pool, again
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
    finally:
        await pool.close()


async def test_the_pool_hands_out_vectors(stack: Settings) -> None:
    pool = await create_pool(stack.postgres, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            assert isinstance(conn, asyncpg.pool.PoolConnectionProxy)
            value = await conn.fetchval("SELECT '[1,2,3]'::vector")
            assert value.to_list() == [1.0, 2.0, 3.0]  # the pgvector codec, as before
    finally:
        await pool.close()
