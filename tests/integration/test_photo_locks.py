"""Erasing a session while photos are written into it, on the real PostgreSQL.

Before the session lock (libs/common/db/photos.py, "Lock order"), the erasure locked the
session's photo rows and then its session row, while each write locked the session row and
then its photo row: PostgreSQL found the cycle and aborted one side (DeadlockDetectedError; the
erasure answered 500 in schemathesis's longer run). Every round here races one erasure against
a batch of writes of already-queued photos (so that both sides have rows to lock), and an
erasure of single photos against the same; none may fail, and the erasure must win.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from libs.common.db import photos
from libs.common.events import ObjectRef, PhotoUploaded
from libs.common.face.results import PhotoFaces
from tests.support.fakes import unit_face

ROUNDS = 12
PHOTOS = 8
MODEL = "lock-test-model"
DIGEST = "0" * 64


async def _queue(pool: asyncpg.Pool, session: str, photo_id: str) -> PhotoUploaded:
    async with photos.photo_transaction(pool, photo_id, session) as conn:
        accepted_at = await photos.record_queued(
            conn, photo_id=photo_id, session_id=session, object_key=photo_id, content_sha256=DIGEST
        )
    return PhotoUploaded(
        photo_id=photo_id,
        session_id=session,
        object=ObjectRef(bucket="facepass", key=photo_id),
        content_sha256=DIGEST,
        uploaded_at=accepted_at,
    )


def _faces(seed: int) -> PhotoFaces:
    return PhotoFaces((unit_face(seed), unit_face(seed + 1)), (), 100, 100, {})


async def _left(pool: asyncpg.Pool, session: str) -> tuple[int, int]:
    async with pool.acquire() as conn:
        rows = await conn.fetchval("SELECT count(*) FROM photos WHERE session_id = $1", session)
        faces = await conn.fetchval(
            "SELECT count(*) FROM face_embeddings WHERE session_id = $1", session
        )
    return rows, faces


async def test_a_session_erasure_racing_its_writes_never_deadlocks(pool: asyncpg.Pool) -> None:
    for round_ in range(ROUNDS):
        session = f"locks-{uuid.uuid4().hex[:8]}"
        events = [await _queue(pool, session, f"{session}-p{i}") for i in range(PHOTOS)]
        writes = [photos.record_indexed(pool, e, _faces(i), MODEL) for i, e in enumerate(events)]
        half = len(writes) // 2
        outcomes = await asyncio.gather(
            *writes[:half],
            photos.erase_session(pool, session),
            *writes[half:],
            photos.erase_photo(pool, events[0].photo_id),
            return_exceptions=True,
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert errors == [], (round_, errors)
        # Written before the erasure or skipped after it: nothing of the session is left.
        assert await _left(pool, session) == (0, 0), round_
