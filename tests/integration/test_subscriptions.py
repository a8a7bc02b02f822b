""" "Notify me" subscriptions against the real stack, over HTTP and Kafka: a consented
subscription announces each new photo of its person once per pair (one `photos.matched` event,
its id stable), never the photos already there (listed instead), and nothing once it is
deleted, expired or erased, a replay after the erasure included."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from libs.common.db.pool import create_pool
from libs.common.events import matched_event_id
from libs.common.metrics import SUBSCRIPTIONS_LIVE
from libs.common.runtime import Runtime
from libs.common.settings import Settings
from services.ingest.retention import delete_expired_subscriptions
from tests.support.api import KEY, index_and_wait
from tests.support.data import T1, TOM_HANKS, jpeg_bytes
from tests.support.kafka import read_json
from tests.support.processes import ServerProcess
from tests.support.reliability import db, publish_many, uid, upstream_photo, wait_for

#: The left third of t1.jpg: its left-most person (as tests/integration/test_search.py).
T1_LEFT = (0, 0, 1280 // 3, 886)


def _subscribe(
    server: ServerProcess, session: str, selfie: bytes, consent: str = "true"
) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/v2/subscriptions",
        data={"session_id": session, "consent": consent},
        files={"file": ("selfie.jpg", selfie, "image/jpeg")},
        timeout=30,
    )


def _matched(
    stack: Settings, subscription_id: str, until: Any, timeout_s: float = 30
) -> list[dict[str, Any]]:
    """The matched events of this subscription, read until `until(events)` or the time is up
    (a short wait where the point is that nothing more comes)."""
    ours: list[dict[str, Any]] = []

    def done(values: list[dict[str, Any]]) -> bool:
        ours[:] = [v for v in values if v.get("subscription_id") == subscription_id]
        return bool(until(ours))

    topic = stack.kafka.topic_matched
    asyncio.run(read_json(stack.kafka.bootstrap, topic, until=done, timeout_s=timeout_s))
    return ours


def _indexed_event_seen(stack: Settings, photo_id: str) -> None:
    """Wait for the photo's indexed event: its matched events go out with it."""
    asyncio.run(
        read_json(
            stack.kafka.bootstrap,
            stack.kafka.topic_indexed,
            until=lambda values: any(v.get("photo_id") == photo_id for v in values),
        )
    )


def _subscriptions(stack: Settings, session: str) -> int:
    with db(stack) as conn:
        row = conn.execute(
            "SELECT count(*) FROM match_subscriptions WHERE session_id = %s", (session,)
        ).fetchone()
    return int(row[0])


def test_a_subscription_announces_each_new_photo_of_its_person_once(
    server: ServerProcess, stack: Settings
) -> None:
    session = uid("notify")
    index_and_wait(
        server,
        session,
        {f"{session}-group": T1.read_bytes(), f"{session}-tom": jpeg_bytes(TOM_HANKS)},
    )
    selfie = jpeg_bytes(T1, crop=T1_LEFT)

    refused = _subscribe(server, session, selfie, consent="false")
    assert refused.status_code == 422 and refused.json()["type"].endswith("consent-required")
    unknown = _subscribe(server, uid("no-photos-yet"), selfie)
    assert unknown.status_code == 404, unknown.text
    assert _subscriptions(stack, session) == 0  # nothing kept for either

    made = _subscribe(server, session, selfie)
    assert made.status_code == 201, made.text
    body = made.json()
    token, subscription = body["token"], body["subscription_id"]
    assert body["photos_so_far"] == 1  # the group photo, already there
    with db(stack) as conn:
        kept = conn.execute(
            "SELECT token_sha256, expires_at - created_at FROM match_subscriptions "
            "WHERE subscription_id = %s",
            (subscription,),
        ).fetchone()
    assert kept[0] != token.encode() and len(kept[0]) == 32  # only the token's SHA-256
    assert round(kept[1].total_seconds() / 86400) == 14  # SEARCH_SUBSCRIPTION_DAYS

    # New photos: the same people (t1 rescaled) and someone else.
    index_and_wait(
        server,
        session,
        {
            f"{session}-again": jpeg_bytes(T1, scale=0.8),
            f"{session}-tom2": jpeg_bytes(TOM_HANKS, scale=0.9),
        },
    )
    events = _matched(stack, subscription, until=lambda e: len(e) >= 1)
    _indexed_event_seen(stack, f"{session}-tom2")
    events = _matched(stack, subscription, until=lambda e: len(e) >= 2, timeout_s=3)
    assert [e["photo_id"] for e in events] == [f"{session}-again"]  # never the group photo
    event = events[0]
    assert event["event_id"] == matched_event_id(subscription, f"{session}-again")
    assert event["session_id"] == session and event["similarity"] >= 0.36

    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        listed = client.get(f"/api/v2/subscriptions/{token}/photos")
        assert listed.status_code == 200, listed.text
        results = listed.json()["results"]
        assert {r["photo_id"] for r in results} == {f"{session}-group", f"{session}-again"}
        assert all(r["thumbnail_url"] and r["similarity"] >= 0.36 for r in results)

        assert client.delete(f"/api/v2/subscriptions/{token}").status_code == 204
        assert client.get(f"/api/v2/subscriptions/{token}/photos").status_code == 404
        assert client.delete(f"/api/v2/subscriptions/{token}").status_code == 404
    assert _subscriptions(stack, session) == 0

    # Deleted: a new photo of the person announces nothing.
    index_and_wait(server, session, {f"{session}-later": jpeg_bytes(T1, scale=0.7)})
    _indexed_event_seen(stack, f"{session}-later")
    later = _matched(stack, subscription, until=lambda e: len(e) > 1, timeout_s=3)
    assert [e["photo_id"] for e in later] == [f"{session}-again"]


def test_an_expired_subscription_announces_nothing_and_is_deleted(
    server: ServerProcess, stack: Settings
) -> None:
    session = uid("notify-exp")
    index_and_wait(server, session, {f"{session}-group": T1.read_bytes()})
    made = _subscribe(server, session, jpeg_bytes(T1, crop=T1_LEFT))
    assert made.status_code == 201, made.text
    subscription = made.json()["subscription_id"]
    with db(stack) as conn:
        conn.execute(
            "UPDATE match_subscriptions SET expires_at = now() - interval '1 second' "
            "WHERE subscription_id = %s",
            (subscription,),
        )
        conn.commit()
    index_and_wait(server, session, {f"{session}-new": jpeg_bytes(T1, scale=0.8)})
    _indexed_event_seen(stack, f"{session}-new")
    assert _matched(stack, subscription, until=len, timeout_s=3) == []
    token = made.json()["token"]
    assert httpx.get(f"{server.base_url}/api/v2/subscriptions/{token}/photos").status_code == 404
    # What the retention job runs (every APP_RETENTION_CHECK_S) deletes it, and counts the rest.
    deleted, live = asyncio.run(_delete_expired(stack))
    assert deleted >= 1 and _subscriptions(stack, session) == 0
    assert SUBSCRIPTIONS_LIVE._value.get() == live


async def _delete_expired(stack: Settings) -> tuple[int, int]:
    pool = await create_pool(stack.postgres)
    try:
        deleted = await delete_expired_subscriptions(Runtime(stack, frozenset(), db=pool))
        live = await pool.fetchval(
            "SELECT count(*) FROM match_subscriptions WHERE expires_at > now()"
        )
        return deleted, live
    finally:
        await pool.close()


def test_session_erasure_removes_subscriptions_and_a_replay_announces_nothing(
    server: ServerProcess, stack: Settings
) -> None:
    """An upstream photo (bytes in the upstream's own key, which erasure leaves alone) of the
    person is indexed after the subscription, the session is erased, the photo's event is
    replayed: the subscription is gone and nothing more is announced."""
    session = uid("notify-erase")
    index_and_wait(server, session, {f"{session}-group": T1.read_bytes()})
    made = _subscribe(server, session, jpeg_bytes(T1, crop=T1_LEFT))
    assert made.status_code == 201, made.text
    subscription = made.json()["subscription_id"]
    photo = f"{session}-up"
    record = upstream_photo(stack, session, photo, jpeg_bytes(T1, scale=0.85))
    asyncio.run(publish_many(stack.kafka.bootstrap, stack.kafka.topic_uploaded, record))
    assert [e["photo_id"] for e in _matched(stack, subscription, until=len)] == [photo]

    response = httpx.delete(f"{server.base_url}/api/v2/sessions/{session}", headers=KEY)
    assert response.status_code == 200
    assert _subscriptions(stack, session) == 0
    with db(stack) as conn:
        left = conn.execute(
            "SELECT count(*) FROM subscription_matches WHERE subscription_id = %s",
            (subscription,),
        ).fetchone()
    assert left[0] == 0

    asyncio.run(publish_many(stack.kafka.bootstrap, stack.kafka.topic_uploaded, record))
    wait_for(
        lambda: any('"skipped"' in line and photo in line for line in server.log().splitlines()),
        timeout=120,
        what="the replay skipped",
    )
    assert len(_matched(stack, subscription, until=lambda e: len(e) > 1, timeout_s=3)) == 1
    assert _subscriptions(stack, session) == 0
