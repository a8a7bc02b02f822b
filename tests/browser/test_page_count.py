"""The session page's photo count on the real server and database: the indexed photos of the
session, not its queued or failed ones nor another session's; nothing for a session not seen
yet; shown in Chromium only when there is a count."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from libs.common.settings import Settings
from tests.support.browser import index_photos, uid
from tests.support.data import TOM_HANKS, jpeg_bytes
from tests.support.processes import ServerProcess
from tests.support.reliability import db

if TYPE_CHECKING:
    from playwright.sync_api import Page


def session_photos(html: str) -> str:
    """The text of the page's photo count element."""
    found = re.search(r'<p id="session-photos"[^>]*>([^<]*)</p>', html)
    assert found, "no #session-photos element"
    return found.group(1)


@pytest.fixture(scope="module")
def counted_session(server: ServerProcess, stack: Settings) -> str:
    """A session with 2 indexed photos, and one queued and one failed that must not count."""
    session = uid("count")
    index_photos(
        server,
        session,
        {f"{session}-a": jpeg_bytes(TOM_HANKS), f"{session}-b": jpeg_bytes(TOM_HANKS, scale=0.8)},
    )
    with db(stack) as conn:
        for status in ("queued", "failed"):
            conn.execute(
                "INSERT INTO photos (photo_id, session_id, status, object_key) "
                "VALUES (%s, %s, %s, %s)",
                (f"{session}-{status}", session, status, f"sessions/{session}/{status}"),
            )
    return session


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def test_the_page_counts_the_sessions_indexed_photos(
    client: httpx.Client, counted_session: str
) -> None:
    answer = client.get(f"/s/{counted_session}")
    assert answer.status_code == 200
    assert session_photos(answer.text) == "2 photos in this event"


def test_the_page_says_nothing_of_a_session_not_seen_yet(client: httpx.Client) -> None:
    assert session_photos(client.get(f"/s/{uid('unknown')}").text) == ""
    assert session_photos(client.get("/").text) == ""


def test_the_count_shows_in_the_browser_only_when_there_is_one(
    page: Page, server: ServerProcess, counted_session: str
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server.base_url}/s/{counted_session}")
    expect(page.locator("#session-photos")).to_have_text("2 photos in this event")
    expect(page.locator("#session-photos")).to_be_visible()
    page.goto(f"{server.base_url}/s/{uid('unknown')}")
    expect(page.locator("#session-photos")).to_be_hidden()
