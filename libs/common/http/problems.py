"""Errors as `application/problem+json` (RFC 9457) with a stable `type` per kind of problem.

Every error a FacePass HTTP route returns goes through here: our own `ApiError`s, Litestar's
HTTP exceptions (validation becomes 422 with the offending fields), a dependency that is down
(503 with Retry-After, naming it) and anything unexpected (500, no internals leaked).
"""

from __future__ import annotations

from typing import Any

from aiokafka.errors import KafkaError
from asyncpg.exceptions import (
    AdminShutdownError,
    CannotConnectNowError,
    CrashShutdownError,
    InterfaceError,
    PostgresConnectionError,
)
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ExceptionHandlersMap
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from libs.common.imaging import ImageError, ImageTooLargeError, UnsupportedImageError
from libs.common.log import get_logger
from libs.common.runtime import DependencyUnavailableError, Need
from libs.common.storage import StorageUnavailableError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"
RETRY_AFTER_S = 5

log = get_logger(__name__)

_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
    500: "internal-error",
    503: "service-unavailable",
}


class ApiError(HTTPException):
    """An error with a stable problem type, e.g. ApiError(415, "unsupported-image", "...")."""

    def __init__(
        self,
        status_code: int,
        slug: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail=detail, status_code=status_code, headers=headers, extra=extra)
        self.slug = slug


def problem(
    status: int,
    slug: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": slug.replace("-", " "),
        "status": status,
        "detail": detail,
    }
    if extra:
        body.update(extra)
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def image_problem(exc: ImageError) -> ApiError:
    """The one answer to bad image bytes, on every route that takes an image: 413 over a cap,
    415 not a supported image, 422 damaged."""
    if isinstance(exc, ImageTooLargeError):
        return ApiError(413, "image-too-large", str(exc))
    if isinstance(exc, UnsupportedImageError):
        return ApiError(415, "unsupported-image", str(exc))
    return ApiError(422, "corrupt-image", str(exc))


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ApiError):
        extra = exc.extra if isinstance(exc.extra, dict) else None
        return problem(exc.status_code, exc.slug, exc.detail, headers=exc.headers, extra=extra)
    if isinstance(exc, ValidationException):
        errors = exc.extra if isinstance(exc.extra, list) else []
        return problem(
            HTTP_422_UNPROCESSABLE_ENTITY,
            "validation-error",
            "the request is invalid; see `errors`",
            extra={"errors": [_clean(e) for e in errors]},
        )
    slug = _STATUS_SLUGS.get(exc.status_code, "error")
    return problem(exc.status_code, slug, str(exc.detail), headers=exc.headers)


def _clean(error: Any) -> Any:
    """Validation error entries without the submitted values (they may be file bytes)."""
    if isinstance(error, dict):
        return {k: v for k, v in error.items() if k in {"key", "message", "source"}}
    return str(error)


def unavailable(dependency: str) -> Response[dict[str, Any]]:
    return problem(
        HTTP_503_SERVICE_UNAVAILABLE,
        "service-unavailable",
        f"{dependency} is unavailable; retry later",
        headers={"Retry-After": str(RETRY_AFTER_S)},
        extra={"dependency": dependency},
    )


def _dependency_down(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    dependency = _which_dependency(exc)
    log.warning("dependency unavailable", dependency=dependency, error=type(exc).__name__)
    return unavailable(dependency)


def _which_dependency(exc: Exception) -> str:
    if isinstance(exc, DependencyUnavailableError):
        return exc.dependency
    if isinstance(exc, StorageUnavailableError):
        return Need.S3
    if isinstance(exc, KafkaError):
        return Need.KAFKA
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return Need.REDIS
    return Need.DB


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return _dependency_down(request, exc)
    log.exception("unhandled error", path=request.url.path)
    return problem(500, "internal-error", "an unexpected error occurred")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: _http_exception,
    DependencyUnavailableError: _dependency_down,
    StorageUnavailableError: _dependency_down,
    KafkaError: _dependency_down,
    PostgresConnectionError: _dependency_down,
    InterfaceError: _dependency_down,
    # PostgreSQL stopping or starting (SQLSTATE 57P01-57P03: "the database system is shutting
    # down", "terminating connection due to administrator command"): it is down, not a bug.
    # Without these a request racing a restart answered 500 (tests/reliability/test_restarts.py).
    AdminShutdownError: _dependency_down,
    CrashShutdownError: _dependency_down,
    CannotConnectNowError: _dependency_down,
    RedisConnectionError: _dependency_down,
    RedisTimeoutError: _dependency_down,
    Exception: _unexpected,
}
