"""The access log: one structured JSON line per HTTP request.

Outside the app (it wraps the whole Litestar app in `facepass serve`), so requests Litestar
answers before any handler runs — 401s from guards, 429s, 404s of unknown paths, 400s of bad
bodies — get a line too. The line names the route template, never the raw query; the API key
by its id (the first 12 hex digits of its SHA-256, which an operator can compute from the key:
`printf %s "$KEY" | sha256sum | cut -c1-12`), never the key; the client as TRUSTED_PROXIES
resolves it. ACCESS_LOG_SAMPLE keeps a share of the successful lines; failures are all kept.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from libs.common.http.auth import API_KEY_HEADER, key_id
from libs.common.http.proxies import resolve_client
from libs.common.log import get_logger, request_id_from_headers
from libs.common.settings import Settings

log = get_logger("facepass.access")


def access_logged(app: ASGIApp, settings: Settings) -> ASGIApp:
    """`app`, logging each HTTP request once it is answered (or has failed)."""
    sample = settings.http.access_log_sample
    if sample <= 0:
        return app
    trusted: Sequence[str] = settings.search.trusted_proxies
    known = {key_id(k.get_secret_value()) for k in settings.app.api_keys}

    async def logged(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_recording)
        finally:
            if status >= 400 or sample >= 1 or random.random() < sample:  # noqa: S311 - sampling
                headers = Headers.from_scope(scope)
                presented = headers.get(API_KEY_HEADER)
                presented_id = key_id(presented) if presented else None
                if presented_id is not None and presented_id not in known:
                    presented_id = "invalid"
                client = scope.get("client")
                log.info(
                    "request",
                    method=scope["method"],
                    route=scope.get("path_template") or "<unmatched>",
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                    # Unmatched paths never reach the request-id middleware (route-level).
                    request_id=scope.get("state", {}).get("request_id")
                    or request_id_from_headers(headers),
                    key_id=presented_id,
                    client=resolve_client(
                        client[0] if client else "unknown",
                        headers.get("x-forwarded-for", ""),
                        trusted,
                    ),
                )

    return logged
