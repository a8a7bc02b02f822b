"""Make the OpenAPI document say what the API really answers on errors.

Litestar documents a 400 `application/json` body of its own for every route with parameters,
and none of the other errors. FacePass answers every error as `application/problem+json`
(problems.py), so this rewrites the document once, after the app is built: each operation lists
the problems it can answer (400/422 always, 401 and 429 on keyed or limited routes, 413/415 on
uploads, 503 everywhere a dependency is used), all with one Problem schema.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIType

from libs.common.http.problems import PROBLEM_MEDIA_TYPE

PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    description="RFC 9457 problem details; `type` is stable per kind of problem.",
    required=["type", "title", "status", "detail"],
    properties={
        "type": Schema(type=OpenAPIType.STRING, examples=["/problems/no-face"]),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
    },
)

_DESCRIPTIONS = {
    "400": "Malformed request (problem+json)",
    "401": "Missing or wrong X-API-Key",
    "413": "Upload over the byte or pixel cap",
    "415": "Not a JPEG, PNG, WebP, GIF or HEIC image",
    "422": "Invalid fields, ids or image (problem+json with the details)",
    "429": "Rate-limited: see Retry-After and RateLimit-* headers",
    "503": "A dependency is down: retry after Retry-After",
}
_UPLOAD_PATHS = {"/api/v2/index", "/api/v2/search"}
_KEYED_PREFIXES = ("/api/v2/index", "/api/v2/photos", "/api/v2/sessions")
_SEARCH = "/api/v2/search"


def _problem_response(code: str) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=_DESCRIPTIONS[code],
        content={
            PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=Reference("#/components/schemas/Problem"))
        },
    )


def _codes_for(path: str) -> list[str]:
    codes = ["400", "422"]
    if path.startswith(_KEYED_PREFIXES):
        codes += ["401", "429", "503"]
    if path == _SEARCH:
        codes += ["429", "503"]
    if path in _UPLOAD_PATHS:
        codes += ["413", "415"]
    return codes


def document_problems(app: Litestar) -> None:
    """Rewrite the error responses of every /api/v2 operation as problem+json."""
    schema = app.openapi_schema
    components = schema.components or Components()
    components.schemas = {**(components.schemas or {}), "Problem": PROBLEM_SCHEMA}
    schema.components = components
    for path, item in (schema.paths or {}).items():
        if not path.startswith("/api/v2/") or path.startswith("/api/v2/health"):
            continue
        for operation in (item.get, item.post, item.put, item.delete, item.patch):
            if isinstance(operation, Operation):
                responses = dict(operation.responses or {})
                for code in _codes_for(path):
                    responses[code] = _problem_response(code)
                operation.responses = responses
