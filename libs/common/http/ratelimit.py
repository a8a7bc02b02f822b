"""Rate limits kept in Redis, so every process of every service counts against one budget.

Litestar's built-in limiter keeps its counters per process (litestar issue #4700): four search
replicas would allow four times the limit. Here each (limit, identity) pair is a fixed-window
counter in Redis, incremented and given its expiry atomically by a Lua script. Search is
limited per client IP (X-Forwarded-For believed only from TRUSTED_PROXIES); keyed routes per
API key. Answers carry RateLimit-* headers; a refusal is 429 with Retry-After. If Redis is down
the limiter lets requests through (and says so in logs and metrics) rather than take the API
down with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from libs.common.http.auth import API_KEY_HEADER
from libs.common.http.deps import runtime_of
from libs.common.http.problems import ApiError
from libs.common.http.proxies import resolve_client
from libs.common.log import get_logger
from libs.common.metrics import RATE_LIMITED

log = get_logger(__name__)

WINDOW_S = 60
_INCR_WITH_EXPIRY = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"""


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(self.reset_s),
        }


async def take(redis: Redis, name: str, identity: str, limit: int) -> Quota | None:
    """Count one request of `identity` against `limit` per minute; None if Redis is down."""
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    key = f"facepass:ratelimit:{name}:{digest}"
    try:
        count, ttl_ms = await redis.eval(_INCR_WITH_EXPIRY, 1, key, WINDOW_S * 1000)
    except (RedisError, OSError) as exc:
        log.warning("rate limiter unavailable, request let through", error=type(exc).__name__)
        RATE_LIMITED.labels(limit=f"{name}-bypassed").inc()
        return None
    reset_s = max(1, -(-int(ttl_ms) // 1000))
    return Quota(limit=limit, remaining=limit - int(count), reset_s=reset_s)


def client_ip(connection: ASGIConnection[Any, Any, Any, Any], trusted: list[str]) -> str:
    """The caller's address as TRUSTED_PROXIES resolves it (see `proxies.resolve_client`)."""
    peer = connection.client.host if connection.client else "unknown"
    return resolve_client(peer, connection.headers.get("x-forwarded-for", ""), trusted)


async def _enforce(
    connection: ASGIConnection[Any, Any, Any, Any], name: str, identity: str, limit: int
) -> None:
    runtime = runtime_of(connection)
    if limit <= 0 or runtime.redis is None:
        return
    quota = await take(runtime.redis, name, identity, limit)
    if quota is None:
        return
    connection.state.rate_limit_headers = quota.headers()
    if quota.remaining < 0:
        RATE_LIMITED.labels(limit=name).inc()
        raise ApiError(
            429,
            "rate-limited",
            f"too many requests: the limit is {limit} per minute",
            headers={**quota.headers(), "Retry-After": str(quota.reset_s)},
        )


async def search_rate_limit(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: SEARCH_RATE_LIMIT_PER_MINUTE per client IP."""
    search = runtime_of(connection).settings.search
    ip = client_ip(connection, search.trusted_proxies)
    await _enforce(connection, "search-ip", ip, search.rate_limit_per_minute)


async def api_key_rate_limit(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard (after the key check): RATE_LIMIT_API_KEY_PER_MINUTE per API key."""
    search = runtime_of(connection).settings.search
    key = connection.headers.get(API_KEY_HEADER, "")
    await _enforce(connection, "api-key", key, search.keyed_rate_limit_per_minute)


def rate_limit_headers_middleware(app: ASGIApp) -> ASGIApp:
    """Add the RateLimit-* headers a guard computed to the response."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return

        async def send_with_quota(message: Message) -> None:
            if message["type"] == "http.response.start":
                quota = scope.get("state", {}).get("rate_limit_headers")
                if quota:
                    extra = [(k.lower().encode(), v.encode()) for k, v in quota.items()]
                    present = {k for k, _ in message.get("headers", [])}
                    message["headers"] = [
                        *message.get("headers", []),
                        *(h for h in extra if h[0] not in present),
                    ]
            await send(message)

        await app(scope, receive, send_with_quota)

    return middleware
