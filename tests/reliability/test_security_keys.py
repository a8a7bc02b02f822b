"""Security of the keys: every write/admin route is 401 without a valid key, keys are compared
in constant time, and neither keys nor credentials ever reach the logs."""

from __future__ import annotations

import ast
import hmac
from pathlib import Path
from typing import Any

import pytest

from libs.common.http import auth
from libs.common.settings import Settings
from tests.support import bad_images as images
from tests.support.data import T1
from tests.support.processes import API_KEY, ServerProcess
from tests.support.reliability import (
    KEY,
    db,
    index,
    list_objects,
    photo_rows,
    search,
    uid,
    wait_indexed,
)

WRONG_KEYS = [
    "wrong-key-000000",
    API_KEY[:-1],  # a prefix
    API_KEY + "0",  # a suffix too many
    API_KEY.upper(),
    f"{API_KEY},{API_KEY}",  # as a repeated header is joined
    f"Bearer {API_KEY}",
    "",
]

ROUTES = [
    ("POST", "/api/v2/index"),
    ("GET", "/api/v2/photos/{photo}"),
    ("DELETE", "/api/v2/photos/{photo}"),
    ("DELETE", "/api/v2/sessions/{session}"),
    ("GET", "/api/v2/sessions/{session}/qr.svg"),
]


# --- keys -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def indexed_photo(server: ServerProcess) -> tuple[str, str]:
    """A photo that exists, so a route that wrongly skipped the key check would act on it."""
    photo, session = uid("guarded"), uid("guarded")
    with server.client() as client:
        assert index(client, photo, session, T1.read_bytes()).status_code == 202
    wait_indexed(server, [photo])
    return photo, session


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_write_and_admin_routes_are_401_without_a_valid_key(
    server: ServerProcess, stack: Settings, indexed_photo: tuple[str, str], method: str, path: str
) -> None:
    photo, session = indexed_photo
    url = path.format(photo=photo, session=session)
    variants: list[dict[str, str]] = [{}, {"Authorization": f"Bearer {API_KEY}"}]
    variants += [{"X-API-Key": key} for key in WRONG_KEYS]
    with server.client() as client:
        for headers in variants:
            kwargs: dict[str, Any] = {"headers": headers}
            if method == "POST":
                kwargs["data"] = {"photo_id": uid("intruder"), "session_id": session}
                kwargs["files"] = {"file": ("p.jpg", T1.read_bytes(), "image/jpeg")}
            response = client.request(method, url, **kwargs)
            assert response.status_code == 401, (method, url, headers, response.text)
            assert response.json()["type"] == "/problems/unauthorized"
            assert response.headers["www-authenticate"] == "X-API-Key"
            assert photo not in response.text  # nothing about the photo leaks
        # The key is not taken from the query string either.
        assert client.request(method, f"{url}?api_key={API_KEY}").status_code == 401
    # Nothing was changed by any refused request.
    assert photo_rows(stack, [photo])[photo][0] == "indexed"
    with db(stack) as conn:
        assert conn.execute(
            "SELECT count(*) FROM photos WHERE session_id = %s", (session,)
        ).fetchone() == (1,)
        assert conn.execute(
            "SELECT count(*) FROM erased_sessions WHERE session_id = %s", (session,)
        ).fetchone() == (0,)
    assert len(list_objects(stack, f"sessions/{session}/")) == 3  # photo, thumbnail, preview


def test_key_matches_compares_every_key_with_compare_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = ["first-key-aaaaaaaa", "second-key-bbbbbbb", "third-key-ccccccc"]
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for presented, want in [
        (keys[0], True),  # the first key matches, the others are still compared
        (keys[2], True),
        ("first-key-aaaaaaa", False),
        ("first-key-aaaaaaaaa", False),
        ("", False),
        ("ключ-ünïcode", False),
    ]:
        calls.clear()
        assert auth.key_matches(presented, keys) is want
        assert len(calls) == len(keys), (presented, calls)
        assert [b for _, b in calls] == [k.encode() for k in keys]
        assert all(a == presented.encode() for a, _ in calls)
    assert auth.key_matches("x", []) is False


def test_key_check_has_no_short_circuit_comparison() -> None:
    """The guard goes through key_matches, and key_matches neither returns early in its loop
    nor compares keys with ==, `in` or startswith (which stop at the first differing byte)."""
    tree = ast.parse(Path(auth.__file__).read_text())
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    matches = functions["key_matches"]
    for node in ast.walk(matches):
        if isinstance(node, ast.For):
            assert not any(isinstance(n, (ast.Return, ast.Break)) for n in ast.walk(node))
        if isinstance(node, ast.Compare):
            assert not any(isinstance(op, (ast.Eq, ast.NotEq, ast.In)) for op in node.ops)
        if isinstance(node, ast.Attribute):
            assert node.attr not in {"startswith", "endswith", "find", "index"}
    guard_calls = {
        n.func.id
        for n in ast.walk(functions["api_key_guard"])
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert "key_matches" in guard_calls


# --- logs -----------------------------------------------------------------------------------


def test_keys_and_credentials_never_reach_the_logs(server: ServerProcess, stack: Settings) -> None:
    session = uid("logs")
    with server.client() as client:
        for key in WRONG_KEYS:
            client.get("/api/v2/photos/anything", headers={"X-API-Key": key})
            index(client, uid("p"), session, T1.read_bytes(), headers={"X-API-Key": key})
        photo = uid("p")
        assert index(client, photo, session, T1.read_bytes()).status_code == 202
        client.get(f"/api/v2/photos/{photo}", headers=KEY)
        client.delete("/api/v2/photos/never-there", headers=KEY)
        search(client, session, images.one_face_jpeg())
    wait_indexed(server, [photo])
    log = server.log()
    assert '"photo accepted"' in log  # the log did record this traffic
    secrets = {
        "API key": API_KEY,
        "POSTGRES_PASSWORD": stack.postgres.password.get_secret_value(),
        "S3 secret key": stack.s3.secret_key.get_secret_value(),
        **{f"presented key {k!r}": k for k in WRONG_KEYS if len(k) >= 8},
    }
    leaked = [name for name, value in secrets.items() if value in log]
    assert leaked == [], f"secrets in the server log: {leaked}"
    assert "dsn" not in log.lower() or "postgresql://" not in log
