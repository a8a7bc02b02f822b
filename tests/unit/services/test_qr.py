"""The event QR code without servers: the SVG the pure function writes, the route's answers
(key, id, media type, caching, which base URL it encodes) on a Litestar app over a fake runtime,
and the FACEPASS_PUBLIC_URL setting. That the SVG decodes to the link, as a phone reads it, is
checked in Chromium: tests/browser/test_qr.py."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient
from pydantic import SecretStr

from libs.common.http.deps import RUNTIME_DEPENDENCIES
from libs.common.http.problems import EXCEPTION_HANDLERS, PROBLEM_MEDIA_TYPE
from libs.common.settings import AppSettings, HttpSettings, Settings, SettingsError, load_settings
from services.ingest.qr import qr_svg, session_link, session_qr
from tests.support.fakes import fake_runtime

KEY = "unit-test-key"
SVG = "{http://www.w3.org/2000/svg}"
QR = "/api/v2/sessions/{}/qr.svg"


def _client(public_url: str | None = None) -> TestClient[Litestar]:
    settings = Settings(
        app=AppSettings(_env_file=None, api_keys=[SecretStr(KEY)]),
        http=HttpSettings(_env_file=None, public_url=public_url),
    )
    app = Litestar(
        route_handlers=[session_qr],
        dependencies=RUNTIME_DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        state=State({"runtime": fake_runtime(settings=settings)}),
    )
    return TestClient(app, base_url="http://venue.test:8000")


@pytest.fixture
def client() -> Iterator[TestClient[Litestar]]:
    with _client() as test_client:
        yield test_client


def test_the_svg_is_a_standalone_scalable_code_on_white() -> None:
    link = "https://photos.example.org/s/evt-2026"
    root = ET.fromstring(qr_svg(link))
    assert root.tag == f"{SVG}svg"
    # A print size in millimetres, and a viewBox, so it also scales without loss.
    assert root.get("width") == root.get("height")
    assert str(root.get("width")).endswith("mm")
    assert root.get("viewBox") == f"0 0 {root.get('width', '')[:-2]} {root.get('height', '')[:-2]}"
    assert root.findtext(f"{SVG}title") == link
    paths = list(root.iter(f"{SVG}path"))
    assert [p.get("fill") for p in paths if p.get("fill")] == ["#fff"]  # the white background
    assert [p.get("stroke") for p in paths if p.get("stroke")] == ["#000"]  # the modules
    assert qr_svg(link) == qr_svg(link)  # the same link, the same bytes
    assert qr_svg(link) != qr_svg(f"{link}x")


def test_the_route_needs_a_key(client: TestClient[Litestar]) -> None:
    for headers in ({}, {"X-API-Key": "wrong-key-123"}):
        refused = client.get(QR.format("evt1"), headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert refused.headers["www-authenticate"] == "X-API-Key"


@pytest.mark.parametrize("session_id", ["-evt", "a..b", "a" * 129, "ü"])
def test_an_invalid_session_id_is_422(client: TestClient[Litestar], session_id: str) -> None:
    answer = client.get(QR.format(session_id), headers={"X-API-Key": KEY})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert answer.json()["type"] == "/problems/invalid-id"
    assert answer.json()["fields"] == ["session_id"]


def test_the_code_links_to_the_page_at_the_request_base_url(client: TestClient[Litestar]) -> None:
    answer = client.get(QR.format("evt-2026.06_a:1"), headers={"X-API-Key": KEY})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    assert set(answer.headers["cache-control"].split(", ")) == {"private", "max-age=86400"}
    assert answer.content == qr_svg("http://venue.test:8000/s/evt-2026.06_a:1")


def test_the_code_links_to_the_public_url_when_set() -> None:
    with _client("https://photos.example.org/events") as client:
        answer = client.get(QR.format("evt1"), headers={"X-API-Key": KEY})
    assert answer.status_code == 200
    assert answer.content == qr_svg("https://photos.example.org/events/s/evt1")
    assert session_link("https://photos.example.org", "e") == "https://photos.example.org/s/e"


@pytest.mark.parametrize(
    ("value", "read"),
    [("https://photos.example.org/", "https://photos.example.org"),
     ("http://10.0.0.5:8000/facepass/", "http://10.0.0.5:8000/facepass"),
     ("", None)],
)  # fmt: skip
def test_public_url_is_a_base_url_without_its_trailing_slash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, read: str | None
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("FACEPASS_PUBLIC_URL", value)
    assert load_settings().http.public_url == read


@pytest.mark.parametrize(
    "value",
    ["photos.example.org", "ftp://photos.example.org", "https://", "https://x.org/?event=1",
     "https://x.org/#top", "https://x.org/?"],
)  # fmt: skip
def test_public_url_refuses_what_is_not_a_base_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEPASS_PUBLIC_URL", value)
    with pytest.raises(SettingsError, match="FACEPASS_PUBLIC_URL"):
        load_settings()
