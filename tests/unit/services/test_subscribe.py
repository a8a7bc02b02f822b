"""Subscribing without servers: a subscription whose token never reaches the attendee (the
request fails after the row is made) is deleted again, so nothing of them is kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from libs.common.db import subscriptions as subscriptions_db
from libs.common.db.subscriptions import Subscription
from services.search_api import subscriptions
from services.search_api.subscriptions import SubscribeRequest, subscribe
from tests.support.fake_db import FakePhotoDb
from tests.support.fakes import fake_runtime, plain_jpeg


async def test_a_subscription_whose_answer_fails_is_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = FakePhotoDb()
    db.install(monkeypatch)
    kept: dict[str, Subscription] = {}
    now = datetime.now(UTC)

    async def create(pool: Any, *, token: str, session_id: str, **row: Any) -> Subscription:
        kept[token] = Subscription(
            "sub-1", session_id, row["model_id"], 0.5, now, now + timedelta(days=14)
        )
        return kept[token]

    async def delete(pool: Any, token: str) -> bool:
        return kept.pop(token, None) is not None

    async def broken(*args: Any) -> Any:
        raise OSError("database went away")

    monkeypatch.setattr(subscriptions_db, "create_subscription", create)
    monkeypatch.setattr(subscriptions_db, "delete_subscription", delete)
    monkeypatch.setattr(subscriptions, "_photos_so_far", broken)
    with pytest.raises(OSError):
        await subscribe(fake_runtime(), SubscribeRequest("s1", (plain_jpeg(),)))
    assert kept == {}
