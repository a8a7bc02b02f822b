"""The event QR code on the real server: what the keyed route answers, and that the SVG it
serves, shown by Chromium as a browser or a print dialog would, decodes to the session's page
link (OpenCV's QR detector reads the screenshot, as a phone's camera app would). That
FACEPASS_PUBLIC_URL takes the place of the request's base URL: tests/unit/services/test_qr.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import httpx
import numpy as np
import pytest

from libs.common.http.problems import PROBLEM_MEDIA_TYPE
from tests.support.api import KEY
from tests.support.browser import uid
from tests.support.processes import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Page

QR = "/api/v2/sessions/{}/qr.svg"


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def test_the_code_needs_a_key(client: httpx.Client) -> None:
    for headers in ({}, {"X-API-Key": "wrong-key-0123456789"}):
        refused = client.get(QR.format("evt1"), headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert refused.json()["type"] == "/problems/unauthorized"
        assert "<svg" not in refused.text


@pytest.mark.parametrize("session_id", ["-evt", "a..b", "a" * 129])
def test_an_invalid_session_id_is_422(client: httpx.Client, session_id: str) -> None:
    answer = client.get(QR.format(session_id), headers=KEY)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert answer.json()["type"] == "/problems/invalid-id"


def test_a_session_not_seen_yet_gets_its_code(client: httpx.Client) -> None:
    answer = client.get(QR.format(uid("not-yet")), headers=KEY)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    assert set(answer.headers["cache-control"].split(", ")) == {"private", "max-age=86400"}
    assert answer.text.startswith("<svg")


def _decoded(page: Page, artifacts: Path, name: str) -> str:
    """The text of the QR code in a screenshot of the page."""
    shot = artifacts / f"qr-{name}.png"
    page.screenshot(path=str(shot))
    image = cv2.imdecode(np.frombuffer(shot.read_bytes(), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    text, points, _ = cv2.QRCodeDetector().detectAndDecode(image)
    assert points is not None, f"no QR code found in {shot}"
    return str(text)


@pytest.mark.parametrize("length", [8, 128], ids=["short-id", "longest-id"])
def test_the_served_svg_decodes_to_the_session_page_link(
    page: Page, server: ServerProcess, artifacts: Path, length: int
) -> None:
    session = uid("qr")[:length].ljust(length, "q")
    page.set_extra_http_headers(KEY)
    # Chromium opens the route itself: it renders only what is served as image/svg+xml.
    answer = page.goto(f"{server.base_url}{QR.format(session)}")
    assert answer is not None and answer.status == 200
    assert _decoded(page, artifacts, f"{length}") == f"{server.base_url}/s/{session}"
