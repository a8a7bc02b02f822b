"""Which rendition keys a photo's row names, on the real PostgreSQL: every write says which
objects no row names any more, and the backfill names copies only on the photo they were
made from."""

from __future__ import annotations

import uuid

import asyncpg

from libs.common.db import photos
from libs.common.db import renditions as renditions_db
from libs.common.db.photos import WriteResult
from libs.common.db.renditions import PhotoRenditions
from libs.common.events import ObjectRef, PhotoUploaded
from libs.common.face.results import PhotoFaces
from tests.support.fakes import unit_face


def _copies(tag: str) -> PhotoRenditions:
    return PhotoRenditions(f"r/{tag}-thumbnail.jpg", f"r/{tag}-preview.jpg", 4000, 3000)


async def _uploaded(pool: asyncpg.Pool, session: str, photo: str, digest: str) -> PhotoUploaded:
    async with photos.photo_transaction(pool, photo, session) as conn:
        accepted_at = await photos.record_queued(
            conn, photo_id=photo, session_id=session, object_key=f"k/{digest}",
            content_sha256=digest,
        )  # fmt: skip
    return PhotoUploaded(
        photo_id=photo, session_id=session, object=ObjectRef(bucket="facepass", key=f"k/{digest}"),
        content_sha256=digest, uploaded_at=accepted_at,
    )  # fmt: skip


FACES = PhotoFaces((unit_face(1),), (), 100, 100, {})


async def test_each_write_names_what_is_left_to_delete(pool: asyncpg.Pool) -> None:
    session, photo = f"rows-{uuid.uuid4().hex[:8]}", f"p-{uuid.uuid4().hex[:8]}"
    first = await _uploaded(pool, session, photo, "a" * 64)
    written = await photos.record_indexed(pool, first, FACES, "m", _copies("a"))
    assert written == photos.Written(WriteResult.WRITTEN, ())
    assert await photos.record_indexed(pool, first, FACES, "m", _copies("a")) == written  # replay
    second = await _uploaded(pool, session, photo, "b" * 64)
    replaced = await photos.record_indexed(pool, second, FACES, "m", _copies("b"))
    assert replaced.stale_keys == _copies("a").keys()  # the replaced bytes' copies go
    # The first upload's event replayed now: superseded, and its copies made again go too.
    late = await photos.record_indexed(pool, first, FACES, "m", _copies("a"))
    assert late == photos.Written(WriteResult.SUPERSEDED, _copies("a").keys())
    await photos.erase_photo(pool, photo)
    erased = await photos.record_indexed(pool, second, FACES, "m", _copies("b"))
    assert erased == photos.Written(WriteResult.ERASED, _copies("b").keys())


async def test_a_failed_photo_names_no_copy(pool: asyncpg.Pool) -> None:
    session, photo = f"rows-{uuid.uuid4().hex[:8]}", f"p-{uuid.uuid4().hex[:8]}"
    event = await _uploaded(pool, session, photo, "c" * 64)
    await photos.record_indexed(pool, event, FACES, "m", _copies("c"))
    newer = await _uploaded(pool, session, photo, "d" * 64)
    failed = await photos.record_failed(pool, newer, "processing_error: x", _copies("d"))
    assert failed.stale_keys == (*_copies("c").keys(), *_copies("d").keys())
    async with pool.acquire() as conn:
        assert await renditions_db.current_renditions(conn, photo) == ()


async def test_the_backfill_names_copies_only_on_the_photo_they_were_made_from(
    pool: asyncpg.Pool,
) -> None:
    session = f"rows-{uuid.uuid4().hex[:8]}"
    kept, changed = f"{session}-kept", f"{session}-changed"
    for photo in (kept, changed):
        await photos.record_indexed(
            pool, await _uploaded(pool, session, photo, "e" * 64), FACES, "m"
        )
    async with pool.acquire() as conn:
        missing = await renditions_db.missing_renditions(
            conn, session_id=session, after="", limit=10
        )
        assert [m.photo_id for m in missing] == [changed, kept]
        assert (
            await renditions_db.missing_renditions(
                conn, session_id=session, after=changed, limit=10
            )
            == missing[1:]
        )
    await _uploaded(pool, session, changed, "f" * 64)  # new bytes while the copies were made
    assert not await renditions_db.set_renditions(pool, missing[0], _copies("old"))
    assert await renditions_db.set_renditions(pool, missing[1], _copies("kept"))
    assert not await renditions_db.set_renditions(pool, missing[1], _copies("again"))
    async with pool.acquire() as conn:
        assert await renditions_db.current_renditions(conn, kept) == _copies("kept").keys()
        assert await renditions_db.current_renditions(conn, changed) == ()
