"""Consented "notify me" subscriptions (migration 0005): the one place FacePass keeps something
derived from a selfie, the fused selfie embedding, never the bytes, until `expires_at`.

A subscription is made in two steps, so no photo of its person is ever missed: the row first
(committed, with the session's `subscriptions_seq` moved, so an embedder that writes a photo
after this sees it), then the photos already in the session are recorded as matches that are
not announced (they were in the attendee's search). A photo an embedder writes meanwhile is
matched by one side or both; `announced` keeps what the first recorded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import numpy as np
import numpy.typing as npt

from libs.common.db.faces import PhotoMatch, photo_objects_of
from libs.common.db.locks import Connection


def token_digest(token: str) -> bytes:
    """What the database keeps of a subscription's token."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    session_id: str
    model_id: str
    threshold: float
    created_at: datetime
    expires_at: datetime


async def create_subscription(
    pool: asyncpg.Pool,
    *,
    subscription_id: str,
    token: str,
    session_id: str,
    model_id: str,
    embedding: npt.NDArray[np.float32],
    threshold: float,
    consented_at: datetime,
    days: int,
) -> Subscription | None:
    """The subscription, kept `days` (or until the session's own expiry, if sooner). None: no
    such session."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """
            INSERT INTO match_subscriptions (subscription_id, token_sha256, session_id,
                model_id, embedding, threshold, consented_at, expires_at)
            SELECT $1, $2, s.session_id, $4, $5, $6, $7,
                   least(now() + make_interval(days => $8), coalesce(s.expires_at, 'infinity'))
            FROM sessions s WHERE s.session_id = $3
            RETURNING subscription_id, session_id, model_id, threshold, created_at, expires_at
            """,
            subscription_id, token_digest(token), session_id, model_id, embedding, threshold,
            consented_at, days,
        )  # fmt: skip
        if row is None:
            return None
        await _moved(conn, session_id)
    return Subscription(**dict(row))


async def _moved(conn: Connection, session_id: str) -> None:
    await conn.execute(
        "UPDATE sessions SET subscriptions_seq = nextval('face_change_seq') WHERE session_id = $1",
        session_id,
    )


async def subscription_by_token(conn: Connection, token: str) -> Subscription | None:
    """The live subscription this token names (None: unknown, deleted or expired)."""
    row = await conn.fetchrow(
        """
        SELECT subscription_id, session_id, model_id, threshold, created_at, expires_at
        FROM match_subscriptions WHERE token_sha256 = $1 AND expires_at > now()
        """,
        token_digest(token),
    )
    return Subscription(**dict(row)) if row is not None else None


async def delete_subscription(pool: asyncpg.Pool, token: str) -> bool:
    """Delete the subscription of this token and its matches at once. False: none."""
    async with pool.acquire() as conn, conn.transaction():
        session_id = await conn.fetchval(
            "DELETE FROM match_subscriptions WHERE token_sha256 = $1 RETURNING session_id",
            token_digest(token),
        )
        if session_id is None:
            return False
        await _moved(conn, session_id)
    return True


async def delete_expired_subscriptions(pool: asyncpg.Pool) -> int:
    """Delete every subscription past its expiry (the retention job); how many."""
    async with pool.acquire() as conn, conn.transaction():
        sessions = await conn.fetch(
            "DELETE FROM match_subscriptions WHERE expires_at <= now() RETURNING session_id"
        )
        for session_id in {r["session_id"] for r in sessions}:
            await _moved(conn, session_id)
    return len(sessions)


async def count_live_subscriptions(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM match_subscriptions WHERE expires_at > now()"
    )
    return count


@dataclass(frozen=True)
class MatchRow:
    """A photo that shows a subscription's person: its best face's similarity and box."""

    subscription_id: str
    photo_id: str
    similarity: float
    bbox: list[float]


async def record_matches(
    conn: Connection, session_id: str, rows: list[MatchRow], *, announced: bool
) -> list[MatchRow]:
    """Record these matches of photos of the session, for subscriptions still live; a pair
    already recorded keeps its `announced` and takes the new similarity. Returns the pairs
    now recorded as announced (to publish: again on a replay, at least once)."""
    if not rows:
        return []
    boxes = list(zip(*(r.bbox for r in rows), strict=True))
    recorded = await conn.fetch(
        """
        INSERT INTO subscription_matches (subscription_id, photo_id, similarity, bbox, announced)
        SELECT m.subscription_id, m.photo_id, m.similarity, ARRAY[m.x1, m.y1, m.x2, m.y2], $9
        FROM unnest($2::text[], $3::text[], $4::real[], $5::real[], $6::real[], $7::real[],
                    $8::real[]) AS m(subscription_id, photo_id, similarity, x1, y1, x2, y2)
        JOIN match_subscriptions s ON s.subscription_id = m.subscription_id
             AND s.session_id = $1 AND s.expires_at > now()
        JOIN photos p ON p.photo_id = m.photo_id AND p.session_id = $1
        ON CONFLICT (subscription_id, photo_id) DO UPDATE
            SET similarity = EXCLUDED.similarity, bbox = EXCLUDED.bbox
        RETURNING subscription_id, photo_id, similarity, bbox, announced
        """,
        session_id,
        [r.subscription_id for r in rows],
        [r.photo_id for r in rows],
        [r.similarity for r in rows],
        *(list(axis) for axis in boxes),
        announced,
    )
    return [
        MatchRow(r["subscription_id"], r["photo_id"], float(r["similarity"]), list(r["bbox"]))
        for r in recorded
        if r["announced"]
    ]


async def record_photo_matches(
    pool: asyncpg.Pool, session_id: str, photo_id: str, rows: list[MatchRow]
) -> list[MatchRow]:
    """A photo just written: these are its matches now (one that no longer matches a
    subscription, indexed again with other faces, is forgotten there). Returns the pairs to
    announce."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM subscription_matches "
                "WHERE photo_id = $1 AND NOT subscription_id = ANY($2::text[])",
                photo_id,
                [r.subscription_id for r in rows],
            )
            return await record_matches(conn, session_id, rows, announced=True)
    except asyncpg.ForeignKeyViolationError:
        return []  # the photo (or a subscription) was erased meanwhile: nothing to announce


async def matched_photos(conn: Connection, subscription: Subscription) -> list[PhotoMatch]:
    """Every photo matched so far that is still indexed in the session, best first."""
    rows = await conn.fetch(
        """
        SELECT m.photo_id, m.similarity, m.bbox, p.object_key, p.object_bucket,
               p.thumbnail_key, p.preview_key, p.width, p.height
        FROM subscription_matches m JOIN photos p USING (photo_id)
        WHERE m.subscription_id = $1 AND p.session_id = $2 AND p.status = 'indexed'
        ORDER BY m.similarity DESC, m.photo_id
        """,
        subscription.subscription_id,
        subscription.session_id,
    )
    return [
        PhotoMatch(
            r["photo_id"],
            float(r["similarity"]),
            [float(v) for v in r["bbox"]],
            photo_objects_of(r),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class LiveSubscriptions:
    """A session's subscriptions of one model pack as of its `subscriptions_seq`."""

    seq: int
    ids: list[str]
    embeddings: npt.NDArray[np.float32]  # (n, dim), unit rows
    thresholds: npt.NDArray[np.float32]
    expires_at: list[datetime]


async def subscriptions_seq(pool: asyncpg.Pool | Connection, session_id: str) -> int | None:
    """Where the session's subscriptions stand: 0 when it never had one (None: no session)."""
    seq: int | None = await pool.fetchval(
        "SELECT subscriptions_seq FROM sessions WHERE session_id = $1", session_id
    )
    return seq


async def live_subscriptions(
    pool: asyncpg.Pool, session_id: str, model_id: str
) -> LiveSubscriptions | None:
    """The session's unexpired subscriptions of this pack and the number they are as of, in
    one snapshot. None: no such session."""
    async with (
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        seq = await subscriptions_seq(conn, session_id)
        if seq is None:
            return None
        rows = await conn.fetch(
            """
            SELECT subscription_id, embedding, threshold, expires_at FROM match_subscriptions
            WHERE session_id = $1 AND model_id = $2 AND expires_at > now()
            """,
            session_id,
            model_id,
        )
    embeddings = np.empty((0, 0), np.float32)
    if rows:
        embeddings = np.stack([r["embedding"].to_numpy() for r in rows]).astype(np.float32)
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return LiveSubscriptions(
        seq,
        [r["subscription_id"] for r in rows],
        embeddings,
        np.asarray([r["threshold"] for r in rows], np.float32),
        [r["expires_at"] for r in rows],
    )


async def session_owner(pool: asyncpg.Pool, session_id: str) -> str | None:
    """The id of the API key that owns the session (migration 0006); None: none known."""
    owner: str | None = await pool.fetchval(
        "SELECT owner_key_id FROM sessions WHERE session_id = $1", session_id
    )
    return owner
