"""Fuzz: schemathesis generates requests for every route of the OpenAPI document the server
publishes (/docs/openapi.json), with and without a valid X-API-Key, and runs every check it
has (`--checks all`): no 5xx; answers conform to the documented statuses, schemas, content
types and headers; requests the document allows are accepted and those it forbids refused;
missing auth is refused; OPTIONS and 405 answers list the documented methods.

Uses the `st` CLI of schemathesis (pinned: schemathesis==4.32.5), bounded by --max-examples
and a fixed --seed; the slow variant generates more. A failure prints schemathesis' report
with a curl command reproducing each failing request.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.processes import API_KEY, ServerProcess

ST = str(Path(sys.executable).parent / "st")
CHECKS = "all"

# One expectation cannot be met and is narrowed, for the three uploads only, instead of skipped:
# positive_data_acceptance ("a request the document allows gets 2xx/401/404/409/429") on the
# uploads. To the document `file` is any bytes, but the server needs a real image (413/415
# otherwise), and a search or a subscription a selfie with a face (422 `no-face`), which
# schemathesis cannot generate. Index keeps 422 refused, so its ids are still checked; the
# search form's bounds are checked on their edges by tests/unit/services/test_route_contract.py.
_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
_IMAGE_ANSWERS = {
    "POST /api/v2/index": ["413", "415"],
    "POST /api/v2/search": ["413", "415", "422"],
    "POST /api/v2/subscriptions": ["413", "415", "422"],
}
#: schemathesis.toml (JSON strings and arrays of strings are TOML too).
CONFIG = "".join(
    f"[[operations]]\ninclude-name = {json.dumps(name)}\n"
    f"checks.positive_data_acceptance.expected-statuses = {json.dumps(_ACCEPTED + extra)}\n"
    for name, extra in _IMAGE_ANSWERS.items()
)


OPERATIONS = {
    "POST /api/v2/index",
    "POST /api/v2/search",
    "GET /api/v2/health",
    "GET /api/v2/health/live",
    "GET /api/v2/photos/{photo_id}",
    "DELETE /api/v2/photos/{photo_id}",
    "DELETE /api/v2/sessions/{session_id}",
    "GET /api/v2/sessions/{session_id}/qr.svg",
    "POST /api/v2/subscriptions",
    "GET /api/v2/subscriptions/{token}/photos",
    "DELETE /api/v2/subscriptions/{token}",
}


def _fuzz(server: ServerProcess, tmp_path: Path, examples: int, with_key: bool) -> str:
    junit = tmp_path / f"fuzz-{'key' if with_key else 'nokey'}.xml"
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    args = [
        ST, "--config-file", str(config), "run", f"{server.base_url}/docs/openapi.json",
        "--checks", CHECKS,
        "--max-examples", str(examples),
        "--seed", "20261128",
        "--workers", "2",
        "--phases", "examples,coverage,fuzzing",
        "--generation-database", "none",
        "--request-timeout", "60",
        "--suppress-health-check", "all",
        "--no-color",
        "--report", "junit",
        "--report-junit-path", str(junit),
    ]  # fmt: skip
    if with_key:
        args += ["-H", f"X-API-Key: {API_KEY}"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12000:]
    # Every operation of the document was exercised, and none failed or errored.
    cases = ET.parse(junit).getroot().iter("testcase")
    outcomes = {case.get("name"): [child.tag for child in case] for case in cases}
    assert set(outcomes) == OPERATIONS, outcomes
    assert all(tags == [] for tags in outcomes.values()), outcomes
    return output


@pytest.mark.parametrize("with_key", [True, False], ids=["with-key", "without-key"])
def test_fuzz_every_route_no_5xx_and_schema_conformant(
    server: ServerProcess, tmp_path: Path, with_key: bool
) -> None:
    _fuzz(server, tmp_path, examples=40, with_key=with_key)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("with_key", [True, False], ids=["with-key", "without-key"])
def test_fuzz_longer(server: ServerProcess, tmp_path: Path, with_key: bool) -> None:
    output = _fuzz(server, tmp_path, examples=400, with_key=with_key)
    print("FUZZ-RESULT", "with key" if with_key else "without key", output[-1500:])
