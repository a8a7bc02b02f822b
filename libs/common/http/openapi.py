"""The errors a route can answer, as the OpenAPI document shows them: problem+json.

Every FacePass error is `application/problem+json` (problems.py). A route declares the
problems it can answer with `responses=problem_responses(401, 413, ...)`; 400 and 422 (a
malformed or invalid request) come with every route that takes input. Declared problems
replace Litestar's own 400 `application/json` entry, which FacePass never sends.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.datastructures import ResponseSpec

from libs.common.http.problems import PROBLEM_MEDIA_TYPE


@dataclass
class Problem:
    """RFC 9457 problem details; `type` is stable per kind of problem."""

    type: str
    title: str
    status: int
    detail: str


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or wrong X-API-Key",
    404: "No such photo",
    409: "The photo_id belongs to another session",
    413: "Upload over the byte or pixel cap",
    415: "Not a JPEG, PNG, WebP, GIF or HEIC image",
    422: "Invalid fields, ids or image (with the details)",
    429: "Rate-limited: see Retry-After and RateLimit-* headers",
    503: "A dependency is down: retry after Retry-After",
}


def problem_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI responses for 400, 422 and `codes`, each a problem+json `Problem`."""
    return {
        code: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[code],
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for code in sorted({400, 422, *codes})
    }
