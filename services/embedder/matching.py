"""New photos matched against the session's "notify me" subscriptions, in the stream.

After a photo's faces are written, they are compared with the session's live subscriptions of
the same model pack: exactly, in one matrix product (subscriptions x faces; 10,000
subscriptions and a photo's faces take well under a millisecond), each subscription at its own
threshold (the search's when it was made). Each (subscription, photo) whose best face passes is
recorded and becomes one `photos.matched` event, whose id is the pair's (`matched_event_id`):
published at least once, with the photo's indexed event, and again on a replay.

Each embedder keeps a session's subscriptions in memory as of the session's
`subscriptions_seq`, which every new or deleted subscription moves: one primary-key lookup per
photo says whether they are still current (a session that never had one costs only that). A
photo already in the session when a subscription was made is never announced
(libs/common/db/subscriptions.py says how the two sides meet).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import numpy as np

from libs.common.db import subscriptions as subscriptions_db
from libs.common.db.subscriptions import LiveSubscriptions, MatchRow
from libs.common.events import PhotoMatched, matched_event_id
from libs.common.face.results import PhotoFaces

#: Sessions whose subscriptions an embedder keeps in memory, the least recently matched dropped.
_MAX_SESSIONS = 1000


def best_matches(
    live: LiveSubscriptions, photo_id: str, faces: PhotoFaces, now: datetime
) -> list[MatchRow]:
    """Each live subscription whose person the photo shows: its best face at the
    subscription's threshold or above (pure computation)."""
    if not live.ids or not faces.faces:
        return []
    vectors = np.stack([np.asarray(f.embedding, np.float32) for f in faces.faces])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarities = live.embeddings @ vectors.T  # (subscriptions, faces)
    best = similarities.argmax(axis=1)
    top = similarities[np.arange(len(best)), best]
    unexpired = np.asarray([at > now for at in live.expires_at])
    return [
        MatchRow(
            live.ids[i], photo_id, float(top[i]), [float(v) for v in faces.faces[best[i]].bbox]
        )
        for i in np.flatnonzero((top >= live.thresholds) & unexpired).tolist()
    ]


class SubscriptionMatcher:
    """The subscriptions of the sessions this embedder writes into, kept current."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool
        self._held: OrderedDict[tuple[str, str], LiveSubscriptions] = OrderedDict()

    async def matched(
        self, session_id: str, model_id: str, photo_id: str, faces: PhotoFaces
    ) -> list[PhotoMatched]:
        """The events announcing a just-written photo to the subscriptions it matches."""
        pool = self._pool()
        seq = await subscriptions_db.subscriptions_seq(pool, session_id)
        if not seq:  # no session, or one that never had a subscription
            return []
        live = await self._current(pool, (session_id, model_id), seq)
        if live is None:
            return []
        rows = best_matches(live, photo_id, faces, datetime.now(UTC))
        announced = await subscriptions_db.record_photo_matches(pool, session_id, photo_id, rows)
        return [
            PhotoMatched(
                event_id=matched_event_id(row.subscription_id, photo_id),
                subscription_id=row.subscription_id,
                session_id=session_id,
                photo_id=photo_id,
                similarity=round(row.similarity, 4),
                bbox=row.bbox,
                model_id=model_id,
            )
            for row in announced
        ]

    async def _current(
        self, pool: asyncpg.Pool, key: tuple[str, str], seq: int
    ) -> LiveSubscriptions | None:
        held = self._held.get(key)
        if held is None or held.seq != seq:
            held = await subscriptions_db.live_subscriptions(pool, *key)
            if held is None:
                self._held.pop(key, None)
                return None
            self._held[key] = held
        self._held.move_to_end(key)
        while len(self._held) > _MAX_SESSIONS:
            self._held.popitem(last=False)
        return held
