"""A platform's side of FacePass's webhooks, written from docs/events.md alone: verify the
signature header, and a tiny receiver (a real HTTP server on a free port) that records what
it is sent and can be told to fail first."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def verify(secret: str, header: str, body: bytes, now: float, tolerance_s: float = 300) -> bool:
    """docs/events.md: `t=<unix seconds>,v1=<hex>`; hex = HMAC-SHA256(key=the API key,
    message=`<t>.` + body); refuse a `t` further than the tolerance from now."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp, given = int(parts["t"]), parts["v1"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return abs(now - timestamp) <= tolerance_s and hmac.compare_digest(expected.hexdigest(), given)


class Receiver:
    """Records each POST (headers, body, time); answers `fail_first` of them with 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"headers": dict(self.headers), "body": body, "at": time.time()}
                )
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/facepass"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]
