""" "Tell me when new photos of me arrive": consented match subscriptions.

The one place FacePass keeps something derived from a selfie. An attendee who consents sends
1-3 selfies; their fused embedding (never the bytes) is kept with the consent time until the
subscription expires (SEARCH_SUBSCRIPTION_DAYS, capped by the session's retention), its token
deletes it, or the session is erased. The embedder then matches every new photo of the session
against it and publishes a `photos.matched` event per new photo of the person
(services/embedder/matching.py); the photos already in the session are listed here, never
announced. The token is shown once and only its SHA-256 is kept; neither is ever logged.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from libs.common.db import faces as faces_db
from libs.common.db import subscriptions as subscriptions_db
from libs.common.db.faces import PhotoMatch
from libs.common.db.subscriptions import MatchRow, Subscription
from libs.common.http.problems import ApiError
from libs.common.metrics import SUBSCRIPTIONS
from libs.common.runtime import Runtime
from services.search_api.schemas import MAX_LIMIT, SubscriptionCreated, SubscriptionPhotos
from services.search_api.search import signed_result
from services.search_api.selfies import fused, prepare_selfies
from services.search_api.session_query import SessionQuery, Vector, session_matches

UNKNOWN_SESSION = "no photos in this session yet: search it first, then ask to be notified"
#: What a subscription token can look like (secrets.token_urlsafe(32) makes 43 characters):
#: the API and the /m/{token} page refuse any other shape without asking the database.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,100}")
NO_SUCH_SUBSCRIPTION = "no live subscription has this token (deleted, expired, or never made)"


def is_valid_token(token: str) -> bool:
    return TOKEN_PATTERN.fullmatch(token) is not None


@dataclass(frozen=True)
class SubscribeRequest:
    session_id: str
    selfies: tuple[bytes, ...]


async def subscribe(runtime: Runtime, req: SubscribeRequest) -> SubscriptionCreated:
    """Keep the selfies' fused embedding, then record the photos of the person the session
    already has (they were in the attendee's search: listed, never announced)."""
    engine, pool = runtime.face_engine(), runtime.pool()
    prepared = await prepare_selfies(runtime, req.selfies)
    embedding = fused([p.result.face.embedding for p in prepared])
    token = secrets.token_urlsafe(32)
    consented_at = datetime.now(UTC)
    made = await subscriptions_db.create_subscription(
        pool,
        subscription_id=uuid.uuid4().hex,
        token=token,
        session_id=req.session_id,
        model_id=engine.pack.id,
        embedding=embedding,
        threshold=engine.threshold,
        consented_at=consented_at,
        days=runtime.settings.search.subscription_days,
    )
    if made is None:
        raise ApiError(404, "unknown-session", UNKNOWN_SESSION)
    try:
        rows = await _photos_so_far(runtime, made, embedding)
    except BaseException:
        # The attendee never gets this token: keep nothing of them (best effort; it expires).
        with contextlib.suppress(Exception):
            await subscriptions_db.delete_subscription(pool, token)
        raise
    SUBSCRIPTIONS.labels(change="made").inc()
    return SubscriptionCreated(
        subscription_id=made.subscription_id,
        token=token,
        session_id=made.session_id,
        consented_at=consented_at.isoformat(),
        expires_at=made.expires_at.isoformat(),
        photos_so_far=len(rows),
    )


async def _photos_so_far(runtime: Runtime, made: Subscription, embedding: Vector) -> list[MatchRow]:
    """Record the photos of the person the session already has, never to be announced. Run
    after the subscription is committed: a photo written from now on is matched by the
    embedder, one written before is found here (libs/common/db/subscriptions.py)."""
    pool = runtime.pool()
    async with pool.acquire() as conn:
        version = await faces_db.session_version(conn, made.session_id)
    found: list[PhotoMatch] = []
    if version is not None:
        query = SessionQuery(
            made.session_id, made.model_id, version, made.threshold, MAX_LIMIT, None
        )
        found, _ = await session_matches(runtime, query, embedding)
    rows = [MatchRow(made.subscription_id, m.photo_id, m.similarity, m.bbox) for m in found]
    async with pool.acquire() as conn:
        await subscriptions_db.record_matches(conn, made.session_id, rows, announced=False)
    return rows


async def _live(runtime: Runtime, token: str) -> Subscription:
    async with runtime.pool().acquire() as conn:
        found = await subscriptions_db.subscription_by_token(conn, token)
    if found is None:
        raise ApiError(404, "unknown-subscription", NO_SUCH_SUBSCRIPTION)
    return found


async def subscription_photos(runtime: Runtime, token: str) -> SubscriptionPhotos:
    """Every photo matched so far, with signed links, as a search answers them."""
    subscription = await _live(runtime, token)
    async with runtime.pool().acquire() as conn:
        matches = await subscriptions_db.matched_photos(conn, subscription)
    return SubscriptionPhotos(
        subscription_id=subscription.subscription_id,
        session_id=subscription.session_id,
        expires_at=subscription.expires_at.isoformat(),
        results=[await signed_result(runtime, m) for m in matches],
    )


async def unsubscribe(runtime: Runtime, token: str) -> None:
    """Delete the subscription and its matches at once."""
    if not await subscriptions_db.delete_subscription(runtime.pool(), token):
        raise ApiError(404, "unknown-subscription", NO_SUCH_SUBSCRIPTION)
    SUBSCRIPTIONS.labels(change="deleted").inc()
