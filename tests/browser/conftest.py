"""Browser tests of the attendee page: Debian's Chromium, driven by Playwright, against a real
`facepass serve --target all` on the session's embedded stack.

Chromium comes from Debian (`make test-tools` installs `chromium`); Playwright's own browser
download is never used. Without Chromium or the playwright package the browser tests skip,
saying which is missing; the HTTP tests of the page still run.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from libs.common.settings import Settings
from tests.support.browser import RATE_LIMIT
from tests.support.data import REPO
from tests.support.kafka import Topics
from tests.support.processes import ServerProcess, facepass_serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = Path(os.environ.get("FACEPASS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "artifacts" / "browser"
#: How long Playwright waits for a page condition (a search on 2 cores takes well under it).
WAIT_MS = 30_000

_client_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def server(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Topics and a consumer group of its own: its embedder must not take partitions (and the
    # log lines other tests look for) from the session's integration server.
    with facepass_serve(
        stack,
        tmp_path_factory.mktemp("browser-server-logs"),
        SEARCH_RATE_LIMIT_PER_MINUTE=str(RATE_LIMIT),
        TRUSTED_PROXIES="127.0.0.1/32",
        **Topics(stack).env(),
    ) as process:
        yield process


@pytest.fixture(scope="module")
def playwright(server: ServerProcess) -> Iterator[Playwright]:
    """Playwright's sync API, for one test module at a time.

    It runs an asyncio loop in this thread while it is open: `server` (and the stack, which
    uses asyncio.run) must start before it, and it must close before other modules' async
    tests run, hence the module scope.
    """
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM}: `make test-tools` installs it (Debian)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed (pip)"
    )
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def client_ip() -> str:
    """An address of its own for this test's client (documentation range, never a real peer)."""
    n = next(_client_numbers)
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


@pytest.fixture
def page(browser: Browser, client_ip: str) -> Iterator[Page]:
    """A fresh browser context and page, seen by the server as `client_ip`."""
    context = browser.new_context(
        viewport={"width": 1024, "height": 900},
        extra_http_headers={"X-Forwarded-For": client_ip},
        accept_downloads=True,
    )
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (gitignored); CI can keep the folder."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
