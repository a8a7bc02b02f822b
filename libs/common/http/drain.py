"""Read the rest of a request body before answering early, so every client gets its status.

A guard that refuses a request (429, 401) or a parse error (400) answers before the handler has
read the body. uvicorn then closes the connection with the body still arriving, and a client
that is still sending gets a TCP reset instead of the answer: outside testing saw the seed
checklist's own load test (`ab -p selfie.jpg`) abort with "Connection reset by peer" as soon as
429s began. Here, when a response starts while the body is unread, the rest of it is read and
thrown away first — at most `max_bytes` (the upload cap), beyond which the connection is left
to close as before.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send


def body_drained(app: ASGIApp, max_bytes: int) -> ASGIApp:
    """`app`, reading (and discarding) what remains of the request body before it answers."""

    async def drained(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        read = 0
        finished = False

        async def receive_counting() -> ReceiveMessage:
            nonlocal read, finished
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                finished = not message.get("more_body", False)
            else:  # http.disconnect: nothing more will come
                finished = True
            return message

        async def send_after_body(message: Message) -> None:
            if message["type"] == "http.response.start":
                while not finished and read <= max_bytes:
                    await receive_counting()
            await send(message)

        await app(scope, receive_counting, send_after_body)

    return drained
