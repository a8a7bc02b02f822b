"""Retention: a periodic job of the ingest service erases expired sessions and deletes expired
notify-me subscriptions.

A session expires at its `expires_at`, or SESSION_RETENTION_DAYS after it was created. Erasure is
the same as DELETE /api/v2/sessions/{id} (rows, vectors, S3 objects, tombstone), so it is safe
when several ingest replicas run the job at once.
"""

from __future__ import annotations

import asyncio

from libs.common.db import photos
from libs.common.db import subscriptions as subscriptions_db
from libs.common.log import get_logger
from libs.common.metrics import SUBSCRIPTIONS, SUBSCRIPTIONS_LIVE
from libs.common.runtime import Runtime
from services.ingest.erasure import erase_session

log = get_logger(__name__)


async def erase_expired(runtime: Runtime) -> list[str]:
    """Erase every session that has expired now; returns their ids."""
    erased: list[str] = []
    days = runtime.settings.app.session_retention_days
    while True:
        async with runtime.pool().acquire() as conn:
            batch = await photos.expired_sessions(conn, days)
        if not batch:
            return erased
        for session_id in batch:
            await erase_session(runtime, session_id)
            log.info("session expired and erased", session_id=session_id)
            erased.append(session_id)


async def delete_expired_subscriptions(runtime: Runtime) -> int:
    """Delete the notify-me subscriptions past their expiry (their kept embeddings with them),
    and count those left (facepass_subscriptions_live)."""
    deleted = await subscriptions_db.delete_expired_subscriptions(runtime.pool())
    if deleted:
        SUBSCRIPTIONS.labels(change="expired").inc(deleted)
        log.info("subscriptions expired and deleted", subscriptions=deleted)
    SUBSCRIPTIONS_LIVE.set(await subscriptions_db.count_live_subscriptions(runtime.pool()))
    return deleted


async def enforce_retention(runtime: Runtime) -> None:
    while True:
        try:
            await erase_expired(runtime)
            await delete_expired_subscriptions(runtime)
        except Exception as exc:  # a dependency may be down: try again next round
            log.warning("retention job failed, will retry", error=type(exc).__name__)
        await asyncio.sleep(runtime.settings.app.retention_check_s)
