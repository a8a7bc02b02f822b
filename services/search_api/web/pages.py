"""Route handlers of the attendee page and its static assets.

The page is plain HTML: the only server-side steps are putting a valid session id from
`/s/{session_id}` into the session field (HTML-escaped), saying how many of its photos are
indexed (nothing for an unknown session, one with none, or a database that does not answer
quickly: the page never waits on it or fails for it) and how many days a "notify me"
subscription keeps its embedding (SEARCH_SUBSCRIPTION_DAYS, in the consent text). `/m/{token}`
is a subscription's own page (its photos so far, "Stop notifications"): the server only checks
the token's shape (else a 404 page) and never puts the token in the page; the script reads it
from the path. Security headers: a Content-Security-Policy that allows only this origin for
scripts, styles and API calls, and this origin plus the S3 endpoint (where the presigned photo
URLs point) for images; no inline script or style.
"""

from __future__ import annotations

import asyncio
import html
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from litestar import Request, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import MediaType
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from libs.common.db import photos
from libs.common.events import is_valid_id
from libs.common.http.deps import has_runtime, runtime_of
from libs.common.log import get_logger
from libs.common.settings import SearchSettings
from services.search_api.subscriptions import is_valid_token

log = get_logger(__name__)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PAGE_TEMPLATE = HERE / "page.html"
SUBSCRIPTION_TEMPLATE = HERE / "subscription.html"
STATIC_PATH = "/static"
#: Placeholder in page.html replaced by the (escaped) session id of `/s/{session_id}`.
SESSION_MARKER = "{{session_id}}"
#: Placeholder in page.html replaced by the sentence giving the session's indexed photos.
PHOTOS_MARKER = "{{session_photos}}"
#: Placeholder in page.html replaced by how long a subscription is kept ("14 days").
DAYS_TEXT_MARKER = "{{subscription_days_text}}"
#: Placeholder in page.html replaced by that number of days (for the script's expiry date).
DAYS_MARKER = "{{subscription_days}}"
#: Placeholder in subscription.html: "valid", or "invalid" for a token of the wrong shape.
STATE_MARKER = "{{token_state}}"
#: SEARCH_SUBSCRIPTION_DAYS's default, for an app without settings (e.g. a bare test app).
DEFAULT_SUBSCRIPTION_DAYS: int = SearchSettings.model_fields["subscription_days"].default
#: Longest wait for the count; past it the page goes out without one.
COUNT_TIMEOUT_S = 2.0
#: Used for img-src/connect-src when the app has no settings (e.g. a bare test app).
ANY_WEB_ORIGIN = "http: https:"

#: The page and its assets are small and not fingerprinted: browsers revalidate (ETag,
#: Last-Modified) rather than run stale code after an upgrade.
NO_CACHE = CacheControlHeader(no_cache=True)
#: Headers on every response of the page and its assets.
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _template(path: Path = PAGE_TEMPLATE) -> str:
    """A page's HTML with the parts both pages share (gallery.html, viewer.html) in place."""
    text = path.read_text(encoding="utf-8")
    for marker, part in (("{{gallery}}", "gallery.html"), ("{{viewer}}", "viewer.html")):
        text = text.replace(marker, (HERE / part).read_text(encoding="utf-8"))
    return text


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, without credentials or path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def photo_origin(request: Request[Any, Any, Any]) -> str:
    """Where the presigned photo URLs point: the S3 endpoint of this process's settings."""
    if not has_runtime(request):
        return ANY_WEB_ORIGIN
    endpoint: str = runtime_of(request).settings.s3.link_endpoint
    return origin_of(endpoint)


def content_security_policy(photo_origin: str) -> str:
    """Self for code and API calls; photos (and their download) also from the S3 origin;
    blob: for the selfie preview and downloads, data: for the empty favicon."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' blob: data: {photo_origin}",
            f"connect-src 'self' {photo_origin}",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def photos_sentence(count: int | None) -> str:
    """What the page says of the session's photos; empty (the element hides) for none."""
    if not count:
        return ""
    return f"{count:,} photo in this event" if count == 1 else f"{count:,} photos in this event"


def days_text(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def subscription_days(request: Request[Any, Any, Any]) -> int:
    """How long a "notify me" subscription is kept (SEARCH_SUBSCRIPTION_DAYS)."""
    if not has_runtime(request):
        return DEFAULT_SUBSCRIPTION_DAYS
    days: int = runtime_of(request).settings.search.subscription_days
    return days


def render_page(
    session_id: str = "", photo_count: int | None = None, days: int = DEFAULT_SUBSCRIPTION_DAYS
) -> str:
    """The page, with `session_id` in the session field when it is a valid id."""
    value = session_id if is_valid_id(session_id) else ""
    page = _template().replace(SESSION_MARKER, html.escape(value, quote=True))
    page = page.replace(DAYS_TEXT_MARKER, days_text(days)).replace(DAYS_MARKER, str(days))
    return page.replace(PHOTOS_MARKER, photos_sentence(photo_count))


def render_subscription_page(valid: bool) -> str:
    """A subscription's page; the script fetches its photos, or says the link is not one."""
    state = "valid" if valid else "invalid"
    return _template(SUBSCRIPTION_TEMPLATE).replace(STATE_MARKER, state)


async def session_photo_count(request: Request[Any, Any, Any], session_id: str) -> int | None:
    """Indexed photos of a valid session; None without a database or when it fails or is slow
    (the count is a courtesy: the page must still open, e.g. while PostgreSQL restarts)."""
    if not is_valid_id(session_id) or not has_runtime(request):
        return None
    try:
        async with asyncio.timeout(COUNT_TIMEOUT_S):
            async with runtime_of(request).pool().acquire() as conn:
                return await photos.indexed_photo_count(conn, session_id)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("session photo count unavailable", error=type(exc).__name__)
        return None


def _html(
    request: Request[Any, Any, Any], body: str, status_code: int = 200, **headers: str
) -> Response[str]:
    return Response(
        body,
        status_code=status_code,
        media_type=MediaType.HTML,
        headers={
            **COMMON_HEADERS,
            "Content-Security-Policy": content_security_policy(photo_origin(request)),
            "Permissions-Policy": "geolocation=(), microphone=()",
            **headers,
        },
    )


def _page(
    request: Request[Any, Any, Any], session_id: str, photo_count: int | None = None
) -> Response[str]:
    return _html(request, render_page(session_id, photo_count, subscription_days(request)))


@get("/", include_in_schema=False, sync_to_thread=False, cache_control=NO_CACHE)
def attendee_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The "find my photos" page."""
    return _page(request, "")


@get("/s/{session_id:str}", include_in_schema=False, cache_control=NO_CACHE)
async def session_page(request: Request[Any, Any, Any], session_id: str) -> Response[str]:
    """The page with the session field pre-filled (the link an event hands out) and the
    number of its photos one can find."""
    return _page(request, session_id, await session_photo_count(request, session_id))


@get("/m/{token:str}", include_in_schema=False, sync_to_thread=False, cache_control=NO_CACHE)
def subscription_page(request: Request[Any, Any, Any], token: str) -> Response[str]:
    """A "notify me" subscription's page: its photos so far and "Stop notifications". A token
    of the wrong shape is a 404 page (the API is never asked about it). Kept out of search
    engines; the access log names the route template, never the token."""
    valid = is_valid_token(token)
    return _html(
        request,
        render_subscription_page(valid),
        200 if valid else 404,
        **{"X-Robots-Tag": "noindex, nofollow"},
    )


def _static_headers(response: Response[Any]) -> Response[Any]:
    response.headers.update(COMMON_HEADERS)
    return response


static_router = create_static_files_router(
    path=STATIC_PATH,
    directories=[STATIC_DIR],
    name="web-static",
    cache_control=NO_CACHE,
    after_request=_static_headers,
    include_in_schema=False,
)

WEB_ROUTES: tuple[ControllerRouterHandler, ...] = (
    attendee_page,
    session_page,
    subscription_page,
    static_router,
)
