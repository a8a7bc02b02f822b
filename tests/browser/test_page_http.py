"""The attendee page over plain HTTP (no browser): content types, security headers, the
pre-filled session, and no reference to any other host (it must work offline on a LAN)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from libs.common.settings import Settings
from tests.support.processes import ServerProcess

ASSETS = {
    "/static/facepass.css": "text/css",
    "/static/facepass.js": "text/javascript",
}


class _Links(HTMLParser):
    """Every URL an HTML document makes the browser load or go to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inputs: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            if values.get(name):
                self.urls.append(str(values[name]))
        if tag == "input" and values.get("id"):
            self.inputs[str(values["id"])] = values


def _parse(html: str) -> _Links:
    links = _Links()
    links.feed(html)
    return links


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def _csp(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    directives = (d.split() for d in policy.split(";") if d.strip())
    return {d[0]: d[1:] for d in directives}


@pytest.mark.parametrize("path", ["/", "/s/x"])
def test_the_page_is_html_with_security_headers(
    client: httpx.Client, stack: Settings, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = _csp(response)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]  # no inline script, no other host
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    # Photos come from their presigned URLs on the S3 endpoint, and only from there.
    s3 = urlsplit(stack.s3.endpoint)
    assert f"{s3.scheme}://{s3.netloc}" in csp["img-src"]
    assert not {"http:", "https:", "*"} & set(csp["img-src"])
    assert csp["connect-src"] == ["'self'", f"{s3.scheme}://{s3.netloc}"]


def test_the_session_link_prefills_the_session(client: httpx.Client) -> None:
    assert _parse(client.get("/").text).inputs["session"]["value"] == ""
    assert _parse(client.get("/s/evt-2026.06_a:1").text).inputs["session"]["value"] == (
        "evt-2026.06_a:1"
    )
    # Not a session id: the field stays empty, and nothing of it reaches the page.
    response = client.get('/s/"><img src=x onerror=alert(1)>')
    assert response.status_code == 200
    assert "alert(1)" not in response.text
    assert _parse(response.text).inputs["session"]["value"] == ""


def test_the_selfie_field_takes_a_file_or_the_front_camera(client: httpx.Client) -> None:
    selfie = _parse(client.get("/").text).inputs["selfie"]
    assert selfie["type"] == "file"
    assert selfie["accept"] == "image/*"
    assert selfie["capture"] == "user"


@pytest.mark.parametrize(("path", "media_type"), ASSETS.items())
def test_static_assets_have_their_content_types(
    client: httpx.Client, path: str, media_type: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text.strip()


def test_a_missing_asset_is_404(client: httpx.Client) -> None:
    missing = client.get("/static/nope.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    # The page's template sits beside the static folder, not in it.
    assert client.get("/static/page.html").status_code == 404
    assert client.get("/static/%2e%2e/page.html").status_code == 404


def test_the_page_loads_nothing_from_another_host(client: httpx.Client) -> None:
    html = client.get("/").text
    urls = _parse(html).urls
    assert set(ASSETS) <= set(urls)
    for url in urls:
        # Same origin (a path, never "//host"), the empty data: favicon, or the API.
        assert (url.startswith("/") and not url.startswith("//")) or url == "data:,", url
        if url.startswith("/static/"):
            assert client.get(url).status_code == 200, url
    texts = [html, *(client.get(path).text for path in ASSETS)]
    for text in texts:
        assert not re.search(r"\b(https?:)?//[\w-]+\.[\w.-]+", text), "a URL of another host"
        assert "@import" not in text
        assert "@font-face" not in text
    css = client.get("/static/facepass.css").text
    assert "url(" not in css
