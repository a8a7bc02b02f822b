"""Structured logging for every FacePass process.

JSON lines in production, coloured console lines when DEBUG=True. Each line carries `service`,
`level`, and whatever is bound in the current context (`request_id`, `photo_id`, `session_id`).
The request id crosses Kafka in a message header (`x-request-id`), so a photo can be followed
from ingest through the embedder with one grep. A redaction processor drops secrets by key name
before anything is rendered.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

REQUEST_ID_HEADER = "x-request-id"
#: What a caller-supplied request id may look like; anything else is replaced (no log injection).
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_SECRET_KEYS = (
    "password",
    "secret",
    "api_key",
    "apikey",
    "x-api-key",
    "token",
    "dsn",
    "authorization",
)


def _redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if any(marker in key.lower() for marker in _SECRET_KEYS):
            event_dict[key] = "**redacted**"
    return event_dict


def configure_logging(service: str, *, debug: bool = False, level: str = "INFO") -> None:
    """Route stdlib and structlog output through one renderer, tagged with `service`."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if debug else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries that log every connection attempt at INFO drown the useful lines.
    for noisy in ("aiokafka", "botocore", "aiobotocore", "asyncio", "urllib3", "yoyo"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind ids (request_id, photo_id, session_id) for the lines logged inside the block."""
    tokens = structlog.contextvars.bind_contextvars(
        **{key: value for key, value in values.items() if value is not None}
    )
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def request_id_from_headers(headers: Mapping[str, Any] | None) -> str:
    """The request id carried by a Kafka message or HTTP request, or a new one."""
    if headers:
        value = headers.get(REQUEST_ID_HEADER)
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if isinstance(value, str) and _SAFE_REQUEST_ID.fullmatch(value):
            return value
    return new_request_id()
