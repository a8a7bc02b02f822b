"""Request ids: taken from X-Request-ID (if well-formed) or made, bound to every log line of the
request, echoed in the response, and passed on in Kafka headers by the services."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from libs.common.log import REQUEST_ID_HEADER, log_context, request_id_from_headers

_HEADER = REQUEST_ID_HEADER.encode()


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        request_id = request_id_from_headers(headers)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (_HEADER, request_id.encode())]
            await send(message)

        with log_context(request_id=request_id):
            await app(scope, receive, send_with_id)

    return middleware
