"""The session page's photo count without servers: the sentence, where it lands in the page,
and a page that still opens, without a count, when the database fails or is slow. The count
itself, on PostgreSQL: tests/browser/test_page_count.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient

from libs.common.db import photos
from libs.common.runtime import DependencyUnavailableError, Need
from services.search_api.web import pages
from services.search_api.web.pages import WEB_ROUTES, photos_sentence, render_page
from tests.support.fakes import fake_runtime


def session_photos(html: str) -> str:
    """The text of the page's photo count element."""
    found = re.search(r'<p id="session-photos"[^>]*>([^<]*)</p>', html)
    assert found, "no #session-photos element"
    return found.group(1)


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sessions the fake database was asked about; it knows one, evt1, with 3 photos."""
    sessions: list[str] = []

    async def indexed_photo_count(conn: object, session_id: str) -> int:
        sessions.append(session_id)
        return {"evt1": 3}.get(session_id, 0)

    monkeypatch.setattr(photos, "indexed_photo_count", indexed_photo_count)
    return sessions


@pytest.fixture
def client() -> Iterator[TestClient[Litestar]]:
    app = Litestar(route_handlers=list(WEB_ROUTES), state=State({"runtime": fake_runtime()}))
    with TestClient(app) as test_client:
        yield test_client


def test_the_sentence_counts_photos_and_says_nothing_of_none() -> None:
    assert photos_sentence(1) == "1 photo in this event"
    assert photos_sentence(1234) == "1,234 photos in this event"
    assert photos_sentence(0) == photos_sentence(None) == ""
    assert session_photos(render_page("evt1", 3)) == "3 photos in this event"
    assert session_photos(render_page("evt1")) == ""
    assert "{{" not in render_page("evt1", 3) and "{{" not in render_page()


def test_the_session_page_shows_the_count_of_a_known_session(
    client: TestClient[Litestar], asked: list[str]
) -> None:
    assert session_photos(client.get("/s/evt1").text) == "3 photos in this event"
    assert session_photos(client.get("/s/evt-unknown").text) == ""
    # Neither an invalid id nor the bare page asks the database.
    assert session_photos(client.get("/s/a..b").text) == ""
    assert session_photos(client.get("/").text) == ""
    assert asked == ["evt1", "evt-unknown"]


def _page_without_count(client: TestClient[Litestar]) -> None:
    answer = client.get("/s/evt1")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert session_photos(answer.text) == ""


@pytest.mark.parametrize("error", [OSError("refused"), DependencyUnavailableError(Need.DB)])
def test_the_page_opens_without_a_count_when_the_database_fails(
    client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    async def indexed_photo_count(conn: object, session_id: str) -> int:
        raise error

    monkeypatch.setattr(photos, "indexed_photo_count", indexed_photo_count)
    _page_without_count(client)


def test_the_page_does_not_wait_for_a_slow_database(
    client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def indexed_photo_count(conn: object, session_id: str) -> int:
        await asyncio.sleep(30)
        return 3

    monkeypatch.setattr(photos, "indexed_photo_count", indexed_photo_count)
    monkeypatch.setattr(pages, "COUNT_TIMEOUT_S", 0.05)
    _page_without_count(client)
