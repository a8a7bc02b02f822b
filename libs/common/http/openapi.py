"""What the OpenAPI document says about inputs and errors: the rules the code enforces.

Every FacePass error is `application/problem+json` (problems.py). A route declares the
problems it can answer with `responses=problem_responses(401, 413, ...)`; 400 and 422 (a
malformed or invalid request) come with every route that takes input. Declared problems
replace Litestar's own 400 `application/json` entry, which FacePass never sends. Routes use
`ProblemOperation`, so their 429 and 503 answers also document the Retry-After they carry.

Ids are checked by the routes themselves (`is_valid_id`: 422 `invalid-id`, counted in
metrics), so `ID` only documents that rule, from the same constants, without a second check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import Parameter

from libs.common.events import ID_MAX_LENGTH, ID_PATTERN
from libs.common.http.problems import PROBLEM_MEDIA_TYPE

#: A photo or session id, as documented: path parameter or form field.
ID = Annotated[
    str,
    Parameter(
        schema_extra={"pattern": ID_PATTERN, "min_length": 1, "max_length": ID_MAX_LENGTH},
        description="1-128 characters of letters, digits and ._:-, starting with a letter or "
        "digit, never two dots in a row",
    ),
]


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

#: The answers that always carry Retry-After (ratelimit.py, problems.py `unavailable`).
RETRY_AFTER_STATUSES = frozenset({"429", "503"})
_RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    description="Seconds to wait before retrying",
    required=True,
)


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


@dataclass
class ProblemOperation(Operation):
    """An operation whose 429/503 answers document their Retry-After header: Litestar 2's
    `ResponseSpec` has no headers, so they are added here (`operation_class=`)."""

    def __post_init__(self) -> None:
        for code, response in (self.responses or {}).items():
            if code in RETRY_AFTER_STATUSES and isinstance(response, OpenAPIResponse):
                response.headers = {**(response.headers or {}), "Retry-After": _RETRY_AFTER}
