""" "Notify me when new photos of me arrive" in Chromium at phone size, on the real stack: after
a search the page offers it, sends nothing before the consent box is ticked, then sends the
search's own selfies with consent=true; the confirmation links /m/{token}, whose gallery shows
the same photo; "Stop notifications" deletes the subscription (the API then answers 404) and
the page says it ended. Also the /m/ page over plain HTTP: its headers and the token check."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from tests.support.browser import T1_LEFT, index_photos, uid
from tests.support.data import T1, jpeg_bytes
from tests.support.processes import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request

pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip)")
from playwright.sync_api import expect

PHONE = {"width": 412, "height": 900}
SUBSCRIPTIONS = "/api/v2/subscriptions"
OFFER = "Notify me when new photos of me arrive"
ENDED = "This subscription has ended (deleted or expired)."
SCRIPTS = ("/static/gallery.js", "/static/facepass.js", "/static/notify.js")
#: Keeps every multipart body's `file` parts the page sends (Chromium does not report a
#: multipart body holding a Blob to Playwright), so the test can compare the uploads.
RECORD_UPLOADS = """(() => {
  const send = window.fetch;
  window.uploads = [];
  window.fetch = function (url, options) {
    if (options && options.body instanceof FormData) {
      window.uploads.push({url: String(url), consent: options.body.get('consent'),
                           files: options.body.getAll('file')});
    }
    return send.apply(this, arguments);
  };
})()"""
#: Whether the subscription sent the very bytes the search sent.
SAME_SELFIES = """async () => {
  const bytes = async (blob) => Array.from(new Uint8Array(await blob.arrayBuffer())).join(',');
  const [search, subscribe] = window.uploads;
  if (!search.url.endsWith('/api/v2/search') || !subscribe.url.endsWith('/api/v2/subscriptions'))
    return 'unexpected uploads: ' + window.uploads.map(u => u.url);
  if (search.files.length !== subscribe.files.length) return 'a different number of selfies';
  for (let i = 0; i < search.files.length; i++) {
    if (await bytes(search.files[i]) !== await bytes(subscribe.files[i])) return 'selfie ' + i;
  }
  return subscribe.consent;
}"""


@pytest.fixture(scope="module")
def group_session(server: ServerProcess) -> str:
    """A session with t1.jpg (6 people): a crop of its left person finds it."""
    session = uid("web-notify")
    index_photos(server, session, {f"{session}-group": T1.read_bytes()})
    return session


def _phone_context(browser: Browser, client_ip: str) -> BrowserContext:
    context = browser.new_context(
        viewport=PHONE,
        extra_http_headers={"X-Forwarded-For": client_ip},
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(30_000)
    context.add_init_script(RECORD_UPLOADS)
    return context


def _record_problems(page: Page, problems: list[str]) -> None:
    """Script errors and CSP violations; not the 404s the API answers for an ended token."""

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and "status of 404" not in message.text:
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(str(e)))


def _gallery_ids(page: Page) -> list[str]:
    ids = page.locator("#gallery li").evaluate_all("items => items.map(i => i.dataset.photoId)")
    return [str(i) for i in ids]


def _subscribe(page: Page) -> dict[str, object]:
    """Open the offer, tick the box, press Notify me: the API's 201 answer."""
    page.get_by_role("button", name=OFFER).click()
    page.get_by_label("I agree").check()
    with page.expect_response(lambda r: urlsplit(r.url).path == SUBSCRIPTIONS) as answer:
        page.get_by_role("button", name="Notify me", exact=True).click()
    assert answer.value.status == 201, answer.value.text()
    body: dict[str, object] = answer.value.json()
    return body


def test_notify_me_subscribes_shows_the_photos_and_stops(
    browser: Browser,
    server: ServerProcess,
    group_session: str,
    client_ip: str,
    tmp_path: Path,
    artifacts: Path,
) -> None:
    context = _phone_context(browser, client_ip)
    problems: list[str] = []
    sent: list[Request] = []

    def record(request: Request) -> None:
        if "/api/v2/" in request.url:
            sent.append(request)

    context.on("request", record)
    page = context.new_page()
    _record_problems(page, problems)
    page.goto(f"{server.base_url}/s/{group_session}")
    expect(page.locator("#privacy")).to_contain_text("Stop notifications deletes it at once")
    expect(page.get_by_role("button", name=OFFER)).to_be_hidden()

    selfie = tmp_path / "selfie.jpg"
    selfie.write_bytes(jpeg_bytes(T1, crop=T1_LEFT))
    page.get_by_label("Your selfie").set_input_files(selfie)
    with page.expect_response(lambda r: r.url.endswith("/api/v2/search")):
        page.get_by_role("button", name="Find my photos").click()
    expect(page.locator("#status")).to_contain_text("Found 1 photo of you")

    # The offer: a button that reveals the consent text and an unticked box.
    page.get_by_role("button", name=OFFER).click()
    consent_text = page.locator("#notify-consent-text")
    expect(consent_text).to_contain_text(
        "the face embedding computed from these selfies (never the images), until"
    )
    expect(consent_text).to_contain_text(
        "(14 days) or until you delete it; used only to find new photos of you in this event"
    )
    until = datetime.fromisoformat(str(page.locator("#notify-until").get_attribute("datetime")))
    assert abs(until - (datetime.now(UTC) + timedelta(days=14))) < timedelta(minutes=5)
    box = page.get_by_label("I agree")
    expect(box).not_to_be_checked()
    notify = page.get_by_role("button", name="Notify me", exact=True)
    expect(notify).to_be_disabled()
    # Neither the browser's submission (the box is required) nor a forced submit event sends
    # anything while the box is unticked.
    form = page.locator("#notify-form")
    form.evaluate("f => f.requestSubmit()")
    form.evaluate("f => f.dispatchEvent(new Event('submit', {cancelable: true}))")
    page.wait_for_timeout(300)
    assert [r for r in sent if SUBSCRIPTIONS in r.url] == []
    page.screenshot(path=artifacts / "notify-consent.png", full_page=True)

    box.check()
    expect(notify).to_be_enabled()
    with page.expect_response(lambda r: urlsplit(r.url).path == SUBSCRIPTIONS) as answer:
        notify.click()
    assert answer.value.status == 201, answer.value.text()
    created = answer.value.json()
    token = str(created["token"])
    assert created["session_id"] == group_session and created["photos_so_far"] == 1
    # The search's own (downscaled) selfie went up again, with consent=true.
    assert page.evaluate(SAME_SELFIES) == "true"

    # The confirmation: the expiry date, the link to /m/{token}, Stop notifications.
    status = page.locator("#notify-status")
    expires = datetime.fromisoformat(str(created["expires_at"]))
    expect(status).to_contain_text("Done: new photos of you in this event will be looked for")
    expect(status).to_contain_text(str(expires.year))
    link = page.get_by_role("link", name="your photos")
    assert link.get_attribute("href") == f"/m/{token}"
    expect(page.get_by_role("button", name="Stop notifications")).to_be_visible()
    expect(page.locator("#notify-done")).to_contain_text("platform")
    # The token stays in the page's memory: no storage, no cookie.
    stored = page.evaluate(
        "JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie"
    )
    assert token not in stored and context.cookies() == []
    page.screenshot(path=artifacts / "notify-confirmation.png", full_page=True)

    # The link: the same photo in the same gallery, the expiry date, Stop notifications.
    with context.expect_page() as opened:
        link.click()
    mine = opened.value
    _record_problems(mine, problems)
    expect(mine.locator("#status")).to_contain_text("1 photo of you so far")
    assert urlsplit(mine.url).path == f"/m/{token}"
    assert _gallery_ids(mine) == [f"{group_session}-group"]
    expect(mine.get_by_role("heading", name="Your photos (1)")).to_be_visible()
    shown = datetime.fromisoformat(
        str(mine.locator("#subscription-expires").get_attribute("datetime")).replace("Z", "+00:00")
    )
    assert abs(shown - expires) < timedelta(seconds=1)
    expect(mine.locator("#subscription-session")).to_have_text(group_session)
    mine.wait_for_function(
        "() => [...document.querySelectorAll('#gallery img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    mine.screenshot(path=artifacts / "notify-photos.png", full_page=True)

    with mine.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        mine.get_by_role("button", name="Stop notifications").click()
    assert deleted.value.status == 204
    expect(mine.locator("#status")).to_contain_text("this subscription has ended")
    expect(mine.locator("#gallery li")).to_have_count(0)
    expect(mine.get_by_role("button", name="Stop notifications")).to_be_hidden()
    with server.client() as client:
        gone = client.get(f"{SUBSCRIPTIONS}/{token}/photos")
        assert gone.status_code == 404, gone.text
        assert gone.headers["content-type"] == "application/problem+json"
    mine.reload()
    expect(mine.locator("#status")).to_have_text(ENDED)
    expect(mine.locator("#results")).to_be_hidden()

    # The search page's own Stop: its link is already stopped (404 reads as stopped), then a
    # second subscription stopped from there.
    page.get_by_role("button", name="Stop notifications").click()
    expect(status).to_contain_text("Notifications stopped")
    again = str(_subscribe(page)["token"])
    expect(page.get_by_role("link", name="your photos")).to_have_attribute("href", f"/m/{again}")
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.get_by_role("button", name="Stop notifications").click()
    assert deleted.value.status == 204
    expect(status).to_contain_text("Notifications stopped: this subscription has ended")
    expect(page.get_by_role("button", name=OFFER)).to_be_visible()
    with server.client() as client:
        assert client.get(f"{SUBSCRIPTIONS}/{again}/photos").status_code == 404

    # Each token went to the API in the path only, never in a query string; neither is logged.
    for request in sent:
        query = urlsplit(request.url).query
        assert token not in query and again not in query
    assert [r.url for r in sent if token in r.url] == [
        f"{server.base_url}{SUBSCRIPTIONS}/{token}/photos",
        f"{server.base_url}{SUBSCRIPTIONS}/{token}",
        f"{server.base_url}{SUBSCRIPTIONS}/{token}/photos",
        f"{server.base_url}{SUBSCRIPTIONS}/{token}",
    ]
    log = server.log()
    assert token not in log and again not in log
    assert problems == [], problems
    context.close()


def test_the_subscription_page_over_http(server: ServerProcess) -> None:
    with server.client() as client:
        page = client.get("/m/" + "A" * 43)
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["referrer-policy"] == "no-referrer"  # the token never leaks
        assert page.headers["x-robots-tag"] == "noindex, nofollow"
        csp = page.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "default-src 'none'" in csp
        assert "A" * 43 not in page.text  # the script reads the token from the path
        scripts = re.findall(r'<script src="([^"]+)" defer></script>', page.text)
        assert scripts == ["/static/gallery.js", "/static/notify.js"]
        assert "<script>" not in page.text and " style=" not in page.text
        # Not a token's shape: a 404 page, and the API is not asked.
        for bad in ("short", "A" * 101, "A" * 30 + ".x"):
            wrong = client.get(f"/m/{bad}")
            assert wrong.status_code == 404, bad
            assert wrong.headers["content-type"] == "text/html; charset=utf-8"
            assert 'data-token="invalid"' in wrong.text
        search_page = client.get("/").text
        assert re.findall(r'<script src="([^"]+)" defer></script>', search_page) == list(SCRIPTS)
        for path in SCRIPTS:
            script = client.get(path)
            assert script.status_code == 200
            assert script.headers["content-type"].split(";")[0] == "text/javascript"
            assert not re.search(r"\b(https?:)?//[\w-]+\.[\w.-]+", script.text), path
            assert "localStorage" not in script.text and "document.cookie" not in script.text
