"""Matching a new photo against the session's notify-me subscriptions, without servers: the
best face per subscription at its own threshold, expired ones never, the session's
subscriptions read again only when their number moves, and a stable event id per pair."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from libs.common.db import subscriptions as subscriptions_db
from libs.common.db.subscriptions import LiveSubscriptions, MatchRow
from libs.common.events import matched_event_id
from libs.common.face.results import Face, PhotoFaces
from services.embedder.matching import SubscriptionMatcher, best_matches
from tests.support.vectors import DIM, FacesAround

NOW = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
LATER, EARLIER = NOW + timedelta(days=14), NOW - timedelta(seconds=1)


def _photo(*vectors: np.ndarray) -> PhotoFaces:
    faces = tuple(
        Face((float(i), 0.0, i + 10.0, 10.0), ((0.0, 0.0),) * 5, 0.9, v)
        for i, v in enumerate(vectors)
    )
    return PhotoFaces(faces, (), 100, 100, {})


def _live(seq: int, people: dict[str, tuple[np.ndarray, float, datetime]]) -> LiveSubscriptions:
    return LiveSubscriptions(
        seq,
        list(people),
        np.stack([v for v, _, _ in people.values()]).astype(np.float32),
        np.asarray([t for _, t, _ in people.values()], np.float32),
        [at for _, _, at in people.values()],
    )


@pytest.fixture
def around() -> FacesAround:
    return FacesAround(np.random.default_rng(1).normal(size=DIM).astype(np.float32))


def test_each_subscription_gets_the_photos_best_face_at_its_own_threshold(
    around: FacesAround,
) -> None:
    person = around.query
    photo = _photo(around.face(0.2), around.face(0.5), around.face(0.45))
    live = _live(
        3,
        {
            "lenient": (person, 0.36, LATER),  # 0.5 >= 0.36: matched by face 1
            "strict": (person, 0.6, LATER),  # 0.5 < 0.6: not matched
            "expired": (person, 0.36, EARLIER),  # would match, but expired
            "stranger": (around.axes[0], 0.36, LATER),
        },
    )
    rows = best_matches(live, "p1", photo, NOW)
    assert [r.subscription_id for r in rows] == ["lenient"]
    assert rows[0].photo_id == "p1" and rows[0].bbox == [1.0, 0.0, 11.0, 10.0]
    assert rows[0].similarity == pytest.approx(0.5, abs=1e-5)
    assert best_matches(live, "p2", PhotoFaces((), (), 100, 100, {}), NOW) == []
    nobody = LiveSubscriptions(3, [], np.empty((0, 0), np.float32), np.empty(0, np.float32), [])
    assert best_matches(nobody, "p3", photo, NOW) == []


class FakeSubscriptions:
    """libs/common/db/subscriptions.py's calls the matcher makes, over a dict."""

    def __init__(self, live: LiveSubscriptions) -> None:
        self.live, self.loads, self.recorded = live, 0, list[MatchRow]()

    async def subscriptions_seq(self, pool: Any, session_id: str) -> int | None:
        return self.live.seq if session_id == "s1" else None

    async def live_subscriptions(self, pool: Any, session_id: str, model_id: str) -> Any:
        self.loads += 1
        return self.live

    async def record_photo_matches(
        self, pool: Any, session_id: str, photo_id: str, rows: list[MatchRow]
    ) -> list[MatchRow]:
        self.recorded += rows
        return rows

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("subscriptions_seq", "live_subscriptions", "record_photo_matches"):
            monkeypatch.setattr(subscriptions_db, name, getattr(self, name))


async def test_the_matcher_reads_a_sessions_subscriptions_again_only_when_they_moved(
    around: FacesAround, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = around.query
    fake = FakeSubscriptions(_live(5, {"sub-a": (person, 0.36, LATER + timedelta(days=999))}))
    fake.install(monkeypatch)
    matcher = SubscriptionMatcher(lambda: None)  # type: ignore[arg-type, return-value]
    photo = _photo(around.face(0.7))

    first = await matcher.matched("s1", "pack@1", "p1", photo)
    again = await matcher.matched("s1", "pack@1", "p2", photo)
    assert [e.photo_id for e in (*first, *again)] == ["p1", "p2"] and fake.loads == 1
    assert first[0].event_id == matched_event_id("sub-a", "p1")
    assert first[0].subscription_id == "sub-a" and first[0].session_id == "s1"

    # A subscription made (the number moves): read again, and the new one matches too.
    far = LATER + timedelta(days=999)
    fake.live = _live(6, {"sub-a": (person, 0.36, far), "sub-b": (person, 0.5, far)})
    third = await matcher.matched("s1", "pack@1", "p3", photo)
    assert sorted(e.subscription_id for e in third) == ["sub-a", "sub-b"] and fake.loads == 2
    # No such session (or none ever subscribed): nothing read, nothing recorded.
    assert await matcher.matched("other", "pack@1", "p4", photo) == []
    assert fake.loads == 2 and {r.photo_id for r in fake.recorded} == {"p1", "p2", "p3"}
