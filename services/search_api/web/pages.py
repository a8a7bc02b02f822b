"""Route handlers of the attendee page and its static assets.

The page is plain HTML: the only server-side steps are putting a valid session id from
`/s/{session_id}` into the session field (HTML-escaped) and saying how many of its photos are
indexed (nothing for an unknown session, one with none, or a database that does not answer
quickly: the page never waits on it or fails for it). Security headers: a Content-Security-
Policy that allows only this origin for scripts, styles and API calls, and this origin plus
the S3 endpoint (where the presigned photo URLs point) for images; no inline script or style.
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

log = get_logger(__name__)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PAGE_TEMPLATE = HERE / "page.html"
STATIC_PATH = "/static"
#: Placeholder in page.html replaced by the (escaped) session id of `/s/{session_id}`.
SESSION_MARKER = "{{session_id}}"
#: Placeholder in page.html replaced by the sentence giving the session's indexed photos.
PHOTOS_MARKER = "{{session_photos}}"
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
def _template() -> str:
    return PAGE_TEMPLATE.read_text(encoding="utf-8")


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


def render_page(session_id: str = "", photo_count: int | None = None) -> str:
    """The page, with `session_id` in the session field when it is a valid id."""
    value = session_id if is_valid_id(session_id) else ""
    page = _template().replace(SESSION_MARKER, html.escape(value, quote=True))
    return page.replace(PHOTOS_MARKER, photos_sentence(photo_count))


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


def _page(
    request: Request[Any, Any, Any], session_id: str, photo_count: int | None = None
) -> Response[str]:
    return Response(
        render_page(session_id, photo_count),
        media_type=MediaType.HTML,
        headers={
            **COMMON_HEADERS,
            "Content-Security-Policy": content_security_policy(photo_origin(request)),
            "Permissions-Policy": "geolocation=(), microphone=()",
        },
    )


@get("/", include_in_schema=False, sync_to_thread=False, cache_control=NO_CACHE)
def attendee_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The "find my photos" page."""
    return _page(request, "")


@get("/s/{session_id:str}", include_in_schema=False, cache_control=NO_CACHE)
async def session_page(request: Request[Any, Any, Any], session_id: str) -> Response[str]:
    """The page with the session field pre-filled (the link an event hands out) and the
    number of its photos one can find."""
    return _page(request, session_id, await session_photo_count(request, session_id))


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

WEB_ROUTES: tuple[ControllerRouterHandler, ...] = (attendee_page, session_page, static_router)
