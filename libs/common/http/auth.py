"""API keys for the write and admin routes (X-API-Key), compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from libs.common.http.deps import runtime_of
from libs.common.http.problems import ApiError

API_KEY_HEADER = "X-API-Key"


def key_id(key: str) -> str:
    """What logs, sessions (their owner) and NOTIFY_WEBHOOKS call an API key: a prefix of its
    SHA-256, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def key_matches(presented: str, keys: list[str]) -> bool:
    """True if `presented` equals one of `keys`; every key is compared, in constant time."""
    candidate = presented.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key.encode())
    return matched


def api_key_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard: 401 unless X-API-Key is one of API_KEYS."""
    settings = runtime_of(connection).settings
    keys = [key.get_secret_value() for key in settings.app.api_keys]
    presented = connection.headers.get(API_KEY_HEADER, "")
    if not presented or not keys or not key_matches(presented, keys):
        raise ApiError(
            401,
            "unauthorized",
            f"a valid {API_KEY_HEADER} header is required",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
