"""The attendee page in a real browser: a selfie finds the attendee's photos; every problem the
search API answers becomes a clear message."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from PIL import Image

from tests.support.browser import RATE_LIMIT, T1_LEFT, index_photos, uid
from tests.support.data import T1, TOM_HANKS, jpeg_bytes, shared_group_dir
from tests.support.processes import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip)")
from playwright.sync_api import expect

ALL_IMAGES_LOADED = """() => [...document.querySelectorAll('#gallery img')]
    .every(img => img.complete && img.naturalWidth > 0)"""


@pytest.fixture(scope="module")
def t1_session(server: ServerProcess) -> str:
    """A session with t1.jpg (6 people) and a photo of Tom Hanks."""
    session = uid("web-t1")
    index_photos(
        server,
        session,
        {f"{session}-group": T1.read_bytes(), f"{session}-tom": jpeg_bytes(TOM_HANKS)},
    )
    return session


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _grey_jpeg(path: Path) -> Path:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (128, 128, 128)).save(out, format="JPEG")
    return _write(path, out.getvalue())


#: Keeps the selfie of the last search the page sent (Chromium does not report multipart
#: bodies holding a Blob to Playwright), so a test can look at what was uploaded.
RECORD_UPLOADS = """(() => {
  const send = window.fetch;
  window.fetch = function (url, options) {
    if (options && options.body instanceof FormData) window.lastUpload = options.body.get('file');
    return send.apply(this, arguments);
  };
})()"""
UPLOADED_SELFIE = """async () => {
  const file = window.lastUpload;
  const bitmap = await createImageBitmap(file);
  return {type: file.type, width: bitmap.width, height: bitmap.height};
}"""


def _search(page: Page, selfie: Path) -> Request:
    """Choose `selfie` and press the search button; the request that the page sent."""
    page.get_by_label("Your selfie").set_input_files(selfie)
    with page.expect_request(lambda r: r.url.endswith("/api/v2/search")) as sent:
        page.get_by_role("button", name="Find my photos").click()
    return sent.value


def _gallery_ids(page: Page) -> list[str]:
    ids = page.locator("#gallery li").evaluate_all("items => items.map(i => i.dataset.photoId)")
    return [str(i) for i in ids]


def _gallery_similarities(page: Page) -> list[float]:
    values = page.locator("#gallery li").evaluate_all(
        "items => items.map(i => i.dataset.similarity)"
    )
    return [float(v) for v in values]


def _show_gallery_images(page: Page) -> None:
    """Scroll the (lazy-loaded) thumbnails into view and wait until every one has loaded."""
    page.locator("#gallery li").last.scroll_into_view_if_needed()
    page.wait_for_function(ALL_IMAGES_LOADED)


def test_a_selfie_finds_the_attendees_photo(
    page: Page, server: ServerProcess, t1_session: str, tmp_path: Path, artifacts: Path
) -> None:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.add_init_script(RECORD_UPLOADS)
    page.goto(f"{server.base_url}/s/{t1_session}")
    expect(page.get_by_label("Session code")).to_have_value(t1_session)
    expect(page.locator("#privacy")).to_contain_text("never stored")

    # A phone-sized selfie (852x1772): the page sends it downscaled to a long side of 1280.
    selfie = _write(tmp_path / "selfie.jpg", jpeg_bytes(T1, crop=T1_LEFT, scale=2.0))
    sent = _search(page, selfie)

    status = page.get_by_role("status")
    expect(status).to_contain_text("Found 1 photo of you")
    assert _gallery_ids(page) == [f"{t1_session}-group"]
    assert sent.method == "POST"
    uploaded = page.evaluate(UPLOADED_SELFIE)
    assert uploaded == {"type": "image/jpeg", "width": round(852 * 1280 / 1772), "height": 1280}
    expect(page.get_by_role("heading", name="Your photos (1)")).to_be_visible()

    # The thumbnail is the photo's 400 px copy, from its presigned S3 URL (allowed by the
    # page's CSP); the original is only downloaded.
    _show_gallery_images(page)
    natural = page.locator("#gallery img").first.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert natural == [400, round(400 * 886 / 1280)]
    # The square thumbnail is centred on the matched face (left of t1), not on the photo.
    position = page.locator("#gallery img").first.evaluate("i => i.style.objectPosition")
    x, y = (float(v.rstrip("%")) for v in position.split())
    assert x < 25 and 0 < y < 100, position
    link = page.get_by_role("link", name=re.compile(r"Photo 1 of 1, best match"))
    assert link.get_attribute("target") == "_blank"  # a new tab on Ctrl/middle click
    assert "X-Amz-Signature" in (link.get_attribute("href") or "")
    assert "-preview." in (link.get_attribute("href") or "")

    # Download saves the photo's bytes under its id.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download photo 1").click()
    download = download_info.value
    assert download.suggested_filename == f"{t1_session}-group.jpg"
    saved = download.path()
    assert saved.read_bytes() == T1.read_bytes()

    page.screenshot(path=artifacts / "gallery-t1.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=artifacts / "gallery-t1-phone.png", full_page=True)
    assert problems == [], problems  # no script error, no CSP violation


@pytest.mark.skipif(shared_group_dir() is None, reason="../shared/datasets/group not present")
def test_group_photos_are_found_and_ranked(
    page: Page, server: ServerProcess, artifacts: Path
) -> None:
    group = shared_group_dir()
    assert group is not None
    with (group / "photos.csv").open() as f:
        labelled = {row["photo"]: row["identities"].split(";") for row in csv.DictReader(f)}
    names = ["obama_and_biden", "two_people", "obama1", "kit_with_rose", "johnsnow_test1"]
    session = uid("web-group")
    index_photos(
        server, session, {f"{session}-{n}": (group / f"photos/{n}.jpg").read_bytes() for n in names}
    )
    expected = {f"{session}-{n}" for n in names if "biden" in labelled[f"photos/{n}.jpg"]}
    assert len(expected) == 2

    page.goto(f"{server.base_url}/s/{session}")
    # Another photo of Biden, as the person's own file (970x2204: downscaled by the page).
    _search(page, group / "known/biden/biden.jpg")

    expect(page.get_by_role("status")).to_contain_text("Found 2 photos of you")
    assert set(_gallery_ids(page)) == expected
    similarities = _gallery_similarities(page)
    assert similarities == sorted(similarities, reverse=True)
    _show_gallery_images(page)
    page.screenshot(path=artifacts / "gallery-group.png", full_page=True)


def test_a_selfie_without_a_face_says_so(
    page: Page, server: ServerProcess, t1_session: str, tmp_path: Path, artifacts: Path
) -> None:
    page.goto(f"{server.base_url}/s/{t1_session}")
    _search(page, _grey_jpeg(tmp_path / "grey.jpg"))
    status = page.get_by_role("status")
    expect(status).to_contain_text("We could not find a face in your selfie")
    expect(status).to_have_attribute("data-kind", "error")
    expect(page.locator("#results")).to_be_hidden()
    expect(page.get_by_role("button", name="Find my photos")).to_be_enabled()
    page.screenshot(path=artifacts / "no-face.png", full_page=True)


def test_no_match_in_the_session_says_so(page: Page, server: ServerProcess, tmp_path: Path) -> None:
    # Typed on the bare page: the session field is empty there.
    page.goto(server.base_url + "/")
    session_field = page.get_by_label("Session code")
    expect(session_field).to_have_value("")
    session_field.fill(uid("web-empty"))
    _search(page, _write(tmp_path / "selfie.jpg", jpeg_bytes(T1, crop=T1_LEFT)))
    expect(page.get_by_role("status")).to_contain_text("No photos of you were found")
    expect(page.locator("#results")).to_be_hidden()


def test_rate_limited_search_says_when_to_retry(
    page: Page, server: ServerProcess, client_ip: str, t1_session: str, tmp_path: Path
) -> None:
    # Spend this client's budget (bad images still count), then search in the page.
    for _ in range(RATE_LIMIT):
        response = httpx.post(
            f"{server.base_url}/api/v2/search",
            data={"session_id": t1_session},
            files={"file": ("x.jpg", b"not an image", "image/jpeg")},
            headers={"X-Forwarded-For": client_ip},
            timeout=30,
        )
        assert response.status_code == 415, response.text
    page.goto(f"{server.base_url}/s/{t1_session}")
    _search(page, _write(tmp_path / "selfie.jpg", jpeg_bytes(T1, crop=T1_LEFT)))

    status = page.get_by_role("status")
    expect(status).to_contain_text("Too many searches")
    match = re.search(r"try again in (\d+) seconds?", status.inner_text())
    assert match, status.inner_text()
    assert 1 <= int(match.group(1)) <= 60
    # The button stays off until Retry-After has passed.
    expect(page.get_by_role("button", name="Find my photos")).to_be_disabled()
    expect(page.locator("#results")).to_be_hidden()


def test_service_unavailable_says_to_retry_later(
    page: Page, server: ServerProcess, t1_session: str, tmp_path: Path
) -> None:
    # A real 503 needs a dependency down (shared by the whole suite): answer it at the network.
    problem = {
        "type": "/problems/service-unavailable",
        "title": "service unavailable",
        "status": 503,
        "detail": "db is unavailable; retry later",
    }
    page.route(
        "**/api/v2/search",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "5"},
            content_type="application/problem+json",
            body=json.dumps(problem),
        ),
    )
    page.goto(f"{server.base_url}/s/{t1_session}")
    _search(page, _write(tmp_path / "selfie.jpg", jpeg_bytes(T1, crop=T1_LEFT)))
    expect(page.get_by_role("status")).to_contain_text(
        "The photo search is unavailable right now. Please try again in 5 seconds."
    )
    expect(page.get_by_role("button", name="Find my photos")).to_be_enabled()


def test_the_form_works_from_the_keyboard(page: Page, server: ServerProcess) -> None:
    page.goto(f"{server.base_url}/s/kbd-session")
    status = page.locator("#status")
    assert status.get_attribute("aria-live") == "polite"
    page.get_by_label("Session code").focus()
    order = []
    for _ in range(2):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id"))
    assert order == ["selfie", "submit"]
    # Enter with no selfie chosen: the browser's own validation stops the search (no submit
    # event, so no status) and takes the focus to the missing field.
    page.keyboard.press("Enter")
    assert page.evaluate("document.getElementById('selfie').validity.valueMissing")
    assert page.evaluate("document.activeElement.id") == "selfie"
    assert status.inner_text() == ""
