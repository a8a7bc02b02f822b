"""Matched events delivered to a platform's webhook over real HTTP: a server of its own (its
own topics and consumer groups) with NOTIFY_WEBHOOKS naming the test key; the receiver,
written from docs/events.md, verifies every signature, fails the first delivery, and gets the
event again, with the same event id."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from libs.common.http.auth import key_id
from libs.common.settings import Settings
from tests.support.api import index_and_wait
from tests.support.data import T1, jpeg_bytes
from tests.support.kafka import Topics
from tests.support.processes import API_KEY, ServerProcess, facepass_serve
from tests.support.reliability import uid, wait_for
from tests.support.webhooks import Receiver, verify

T1_LEFT = (0, 0, 1280 // 3, 886)  # t1.jpg's left-most person


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver(fail_first=1) as running:
        yield running


@pytest.fixture(scope="module")
def notifying(
    stack: Settings, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    topics = Topics(stack)
    env = {
        **topics.env(),
        "NOTIFY_WEBHOOKS": f"{key_id(API_KEY)}={receiver.url}",
        "NOTIFY_CONSUMER_GROUP": f"notifier-{uid('g')}",
        "NOTIFY_RETRY_BASE_S": "0.2",
    }
    with facepass_serve(stack, tmp_path_factory.mktemp("notify"), **env) as server:
        yield server


def test_a_new_photo_of_a_subscriber_reaches_the_owners_webhook_signed(
    notifying: ServerProcess, receiver: Receiver, tmp_path: Path
) -> None:
    session = uid("hook")
    index_and_wait(notifying, session, {f"{session}-group": T1.read_bytes()})
    made = httpx.post(
        f"{notifying.base_url}/api/v2/subscriptions",
        data={"session_id": session, "consent": "true"},
        files={"file": ("selfie.jpg", jpeg_bytes(T1, crop=T1_LEFT), "image/jpeg")},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    subscription = made.json()["subscription_id"]
    index_and_wait(notifying, session, {f"{session}-new": jpeg_bytes(T1, scale=0.8)})

    def ours() -> list[dict[str, object]]:
        return [r for r in receiver.requests if json.loads(r["body"])["session_id"] == session]

    wait_for(lambda: len(ours()) >= 2, timeout=60, what="the delivery and its retry")
    first, second = ours()[:2]
    for request in (first, second):
        event = json.loads(request["body"])
        assert event["subscription_id"] == subscription and event["photo_id"] == f"{session}-new"
        header = request["headers"]["X-FacePass-Signature"]
        assert verify(API_KEY, header, request["body"], now=request["at"])
        assert request["headers"]["X-FacePass-Event-Id"] == event["event_id"]
    assert first["body"] == second["body"]  # the same event, retried after the 500
    time.sleep(1)
    assert len(ours()) == 2  # taken (204): not sent again
    metrics = httpx.get(f"{notifying.base_url}/api/v2/metrics", timeout=10).text
    assert 'facepass_webhook_deliveries_total{outcome="delivered"} 1.0' in metrics
    assert 'facepass_webhook_deliveries_total{outcome="retried"} 1.0' in metrics
