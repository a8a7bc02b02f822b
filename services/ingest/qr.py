"""GET /api/v2/sessions/{session_id}/qr.svg: the event's QR code, for organisers to print.

It encodes the attendee page of the session, `{FACEPASS_PUBLIC_URL}/s/{session_id}` (or, when
that is unset, the request's own scheme://host): a phone that scans it opens the page with the
session filled in. Keyed like the other organiser routes. The session need not exist yet:
organisers print the code before the event's photos arrive. An SVG, so it prints sharp at any
size.
"""

from __future__ import annotations

import io
from typing import Any

import segno
from litestar import Request, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency

from libs.common.events import is_valid_id
from libs.common.http.auth import api_key_guard
from libs.common.http.openapi import ID, ProblemOperation, problem_responses
from libs.common.http.problems import ApiError
from libs.common.http.ratelimit import api_key_rate_limit
from libs.common.runtime import Runtime

SVG_MEDIA_TYPE = "image/svg+xml"
#: The code of a session never changes while FACEPASS_PUBLIC_URL does not; private, since the
#: route is keyed (no shared cache may keep it).
QR_CACHE = CacheControlHeader(private=True, max_age=86_400)
#: Millimetres per module at the SVG's own size: 7-8 cm for a short link, scannable across a
#: table. It has a viewBox too, so it scales without loss.
MODULE_MM = 2


def session_link(base_url: str, session_id: str) -> str:
    """The attendee page of a session (pages.py serves `/s/{session_id}`)."""
    return f"{base_url}/s/{session_id}"


def qr_svg(link: str) -> bytes:
    """The QR code of `link` as a standalone SVG: error correction M (raised when the link
    leaves room at the same size), the 4-module quiet zone scanners need, on white so that it
    also scans on a dark screen or background."""
    buffer = io.BytesIO()
    segno.make(link, error="m", micro=False).save(
        buffer,
        kind="svg",
        scale=MODULE_MM,
        unit="mm",
        border=4,
        dark="#000",
        light="#fff",
        title=link,
        xmldecl=False,
        svgclass=None,
        lineclass=None,
    )
    return buffer.getvalue()


def public_base_url(request: Request[Any, Any, Any], runtime: Runtime) -> str:
    """FACEPASS_PUBLIC_URL, else where this request came to (right without a proxy in front)."""
    configured = runtime.settings.http.public_url
    if configured:
        return configured
    base = request.base_url
    return f"{base.scheme}://{base.netloc}"


@get(
    "/api/v2/sessions/{session_id:str}/qr.svg",
    guards=[api_key_guard, api_key_rate_limit],
    security=[{"apiKey": []}],
    tags=["sessions"],
    media_type=SVG_MEDIA_TYPE,
    cache_control=QR_CACHE,
    sync_to_thread=False,
    summary="The event's QR code to print",
    description=(
        "An SVG QR code of the session's attendee page, `{FACEPASS_PUBLIC_URL}/s/{session_id}` "
        "(unset: this request's scheme://host). The session need not exist yet. 422 "
        "`invalid-id`: not a valid session id."
    ),
    responses=problem_responses(401, 429),
    operation_class=ProblemOperation,
)
def session_qr(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], session_id: ID
) -> Response[bytes]:
    if not is_valid_id(session_id):
        raise ApiError(
            422,
            "invalid-id",
            "invalid session_id: use 1-128 characters of letters, digits and ._:- starting "
            "with a letter or digit",
            extra={"fields": ["session_id"]},
        )
    link = session_link(public_base_url(request, runtime), session_id)
    return Response(qr_svg(link), media_type=SVG_MEDIA_TYPE)
