"""Structured logs: JSON lines with service and ids; secrets redacted; request id from headers."""

from __future__ import annotations

import json
import logging

import pytest

from libs.common.log import (
    REQUEST_ID_HEADER,
    configure_logging,
    get_logger,
    log_context,
    request_id_from_headers,
)


def test_json_lines_carry_service_level_and_context_ids(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("embedder", debug=False, level="INFO")
    with log_context(request_id="req-1", photo_id="p-9", session_id="s-3"):
        get_logger("t").info("photo indexed", faces=6)
    get_logger("t").info("outside")
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    inside, outside = lines[-2], lines[-1]
    assert inside["service"] == "embedder"
    assert inside["level"] == "info"
    assert inside["event"] == "photo indexed"
    assert (inside["request_id"], inside["photo_id"], inside["session_id"]) == (
        "req-1",
        "p-9",
        "s-3",
    )
    assert inside["faces"] == 6
    assert "request_id" not in outside


def test_secrets_are_redacted_by_key(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("ingest")
    get_logger().warning("auth", api_key="k-123456789", password="pw-abc", x_api_key="zzz")
    logging.getLogger("stdlib").info("plain stdlib line")
    err = capsys.readouterr().err
    for secret in ("k-123456789", "pw-abc", "zzz"):
        assert secret not in err
    assert "plain stdlib line" in err


def test_debug_mode_is_human_readable(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("search-api", debug=True, level="DEBUG")
    get_logger().debug("hello there")
    err = capsys.readouterr().err
    assert "hello there" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.strip().splitlines()[-1])


def test_request_id_travels_in_headers() -> None:
    assert request_id_from_headers({REQUEST_ID_HEADER: b"abc123"}) == "abc123"
    assert request_id_from_headers({REQUEST_ID_HEADER: "from-http"}) == "from-http"
    fresh = request_id_from_headers({})
    assert len(fresh) == 32 and fresh != request_id_from_headers(None)
    assert request_id_from_headers({REQUEST_ID_HEADER: "x" * 500}) != "x" * 500
