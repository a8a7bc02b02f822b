"""Webhook delivery without servers: the signature a receiver written from the docs accepts,
retries with doubling back-off on 5xx and no answer, a 4xx refused at once, and the give-up
after NOTIFY_MAX_ATTEMPTS. (tests/integration/test_webhooks.py delivers over real HTTP.)"""

from __future__ import annotations

import time

import httpx
import pytest

from libs.common.metrics import WEBHOOK_DELIVERIES
from libs.common.settings import NotifySettings
from services.notifier.delivery import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    Webhook,
    deliver,
    signature,
)
from tests.support.webhooks import verify

HOOK = Webhook("https://platform.example/hooks/facepass", "the-api-key", "abc123abc123")
BODY = b'{"event_id": "e1", "photo_id": "p1"}'


def test_the_signature_is_what_the_docs_say() -> None:
    now = int(time.time())
    header = signature("the-api-key", now, BODY)
    assert verify("the-api-key", header, BODY, now=now)
    assert not verify("another-key", header, BODY, now=now)
    assert not verify("the-api-key", header, BODY + b" ", now=now)
    assert not verify("the-api-key", header, BODY, now=now + 3600)  # a replay, an hour on


def _count(outcome: str) -> float:
    return WEBHOOK_DELIVERIES.labels(outcome=outcome)._value.get()


async def _run(
    answers: list[int | None], attempts: int = 4
) -> tuple[bool, list[httpx.Request], list[float]]:
    """deliver() against a transport answering `answers` in turn (None: no answer)."""
    seen: list[httpx.Request] = []
    waits: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = answers[min(len(seen), len(answers)) - 1]
        if status is None:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(status)

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    settings = NotifySettings(max_attempts=attempts, retry_base_s=0.5)
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        delivered = await deliver(client, HOOK, BODY, "e1", settings, sleep=sleep)
    return delivered, seen, waits


async def test_a_failing_platform_is_retried_with_doubling_back_off_until_it_takes_it() -> None:
    before = _count("delivered"), _count("retried")
    delivered, seen, waits = await _run([503, None, 500, 204])
    assert delivered and len(seen) == 4 and waits == [0.5, 1.0, 2.0]
    assert (_count("delivered") - before[0], _count("retried") - before[1]) == (1, 3)
    for request in seen:  # every attempt signed afresh, same body and event id
        assert request.content == BODY and request.headers[EVENT_ID_HEADER] == "e1"
        assert verify("the-api-key", request.headers[SIGNATURE_HEADER], BODY, now=time.time())


@pytest.mark.parametrize(
    ("answers", "tries"),
    [([400], 1), ([410], 1), ([500], 4), ([None], 4), ([429, 401], 2)],
)
async def test_a_refusal_or_the_last_attempt_counts_as_failed(
    answers: list[int | None], tries: int
) -> None:
    before = _count("failed")
    delivered, seen, _ = await _run(answers)
    assert not delivered and len(seen) == tries
    assert _count("failed") - before == 1
