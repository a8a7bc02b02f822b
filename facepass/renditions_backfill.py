"""`facepass renditions backfill [--session S]`: thumbnails and previews for photos indexed
before renditions existed, without running the face engine again.

Page by page (keyset on photo id) over the indexed photos whose row names no thumbnail: fetch
the original, decode it reduced as the embedder does, make both copies (on every core), put them
in S3, then name them on the row only if it is still what they were made from
(`db.renditions.set_renditions`). A photo replaced or erased meanwhile gets nothing, and the
copies made for it are deleted again. Idempotent: a rerun (or one after an interruption) does
only what is still missing. The embedder may keep running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import asyncpg

from libs.common.cpu import cpu_cores
from libs.common.db import renditions as renditions_db
from libs.common.db.pool import create_pool
from libs.common.db.renditions import MissingRenditions, PhotoRenditions
from libs.common.imaging import ImageError, decode_reduced
from libs.common.renditions import Rendition, make_renditions
from libs.common.settings import Settings
from libs.common.storage import ObjectNotFoundError, ObjectStore, put_renditions, upload_digest

PAGE = 64


@dataclass
class BackfillSummary:
    made: int = 0
    changed: int = 0  # replaced or erased while its copies were made: nothing named
    unreadable: int = 0  # the original is gone or no longer decodes

    def line(self) -> str:
        return (
            f"renditions made for {self.made} photos; {self.changed} changed meanwhile "
            f"(skipped); {self.unreadable} with an unreadable original"
        )


def _render(data: bytes, settings: Settings) -> tuple[tuple[Rendition, ...], tuple[int, int]]:
    """CPU-bound: the copies and the photo's upright size, from its bytes."""
    face = settings.face
    image = decode_reduced(data, **face.decode_limits, long_side=face.photo_decode_side)
    return make_renditions(image.pixels, settings.renditions), image.size


async def _backfill_one(
    settings: Settings,
    pool: asyncpg.Pool,
    store: ObjectStore,
    executor: ThreadPoolExecutor,
    photo: MissingRenditions,
    summary: BackfillSummary,
) -> None:
    try:
        data = await store.get(photo.object_key, bucket=photo.object_bucket)
        made, size = await asyncio.get_running_loop().run_in_executor(
            executor, _render, data, settings
        )
    except (ObjectNotFoundError, ImageError):
        summary.unreadable += 1
        return
    digest = upload_digest(data, photo.content_sha256)
    keys = await put_renditions(store, photo.session_id, photo.photo_id, digest, made)
    named = PhotoRenditions(keys["thumbnail"], keys["preview"], *size)
    if await renditions_db.set_renditions(pool, photo, named):
        summary.made += 1
    else:
        await store.delete(list(named.keys()))
        summary.changed += 1


async def backfill(
    settings: Settings, *, session_id: str | None, progress: Callable[[int], object]
) -> BackfillSummary:
    summary = BackfillSummary()
    store = await ObjectStore(settings.s3).open()
    pool = await create_pool(settings.postgres)
    workers = cpu_cores()
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="facepass-renditions") as executor:
            slots = asyncio.Semaphore(workers * 2)  # photos in flight: downloads overlap work

            async def one(photo: MissingRenditions) -> None:
                async with slots:
                    await _backfill_one(settings, pool, store, executor, photo, summary)

            after = ""
            while True:
                async with pool.acquire() as conn:
                    page = await renditions_db.missing_renditions(
                        conn, session_id=session_id, after=after, limit=PAGE
                    )
                if not page:
                    return summary
                await asyncio.gather(*(one(p) for p in page))
                progress(len(page))
                after = page[-1].photo_id
    finally:
        await pool.close()
        await store.close()
