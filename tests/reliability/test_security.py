"""Security: keys on every write/admin route (compared in constant time), no secret in logs,
no selfie (bytes or embedding) anywhere after searches, CORS only for CORS_ORIGINS, caps
enforced before decoding, and SQL built only with bind parameters."""

from __future__ import annotations

import ast
import asyncio
import base64
import hmac
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from PIL import Image, ImageOps

from libs.common.http import auth
from libs.common.settings import Settings
from libs.stack.servers import PostgresServer
from tests.reliability import images
from tests.reliability.conftest import ALLOWED_ORIGIN
from tests.reliability.support import (
    KEY,
    db,
    encode,
    index,
    list_objects,
    list_topics,
    photo_rows,
    read_topic,
    s3_client,
    search,
    uid,
    wait_indexed,
)
from tests.support.data import REPO, T1, TOM_HANKS
from tests.support.processes import API_KEY, ServerProcess

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
    assert len(list_objects(stack, f"sessions/{session}/")) == 1


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


# --- selfies are never persisted ------------------------------------------------------------


def _distinctive_selfie() -> bytes:
    """A selfie no test indexes: Tom Hanks mirrored, upscaled, on a noise background."""
    rng = np.random.default_rng(uuid.uuid4().int % 2**32)
    noise = rng.integers(0, 255, (240, 220, 3), dtype=np.uint8)
    canvas = Image.fromarray(noise)
    with Image.open(TOM_HANKS) as tom:
        canvas.paste(ImageOps.mirror(tom.convert("RGB")).resize((150, 150)), (35, 45))
    return encode(canvas, quality=95)


def _selfie_embedding(data: bytes, settings: Settings) -> np.ndarray:
    from libs.common.face.engine import FaceEngine
    from libs.common.imaging import decode_image

    engine = FaceEngine.from_settings(settings.face)
    engine.load()
    image = decode_image(data, max_bytes=10**8, max_pixels=10**8)
    return np.asarray(engine.selfie(image).face.embedding, dtype=np.float32)


def _needles(selfie: bytes, embedding: np.ndarray) -> dict[str, bytes]:
    """Byte strings that appear wherever the selfie or its embedding was stored, in any of the
    encodings a careless write would use."""
    middle = len(selfie) // 2
    chunk = selfie[middle : middle + 48]
    b64 = base64.b64encode(selfie)
    at = (len(b64) // 2) // 4 * 4
    f32 = embedding.astype("<f4").tobytes()[:64]
    f64 = embedding.astype("<f8").tobytes()[:64]
    shortest = [np.format_float_positional(x, unique=True, trim="-") for x in embedding[:4]]
    return {
        "selfie bytes": chunk,
        "selfie hex": chunk.hex().encode(),
        "selfie base64": b64[at : at + 64],
        "embedding float32": f32,
        "embedding float32 hex": f32.hex().encode(),
        "embedding float32 base64": base64.b64encode(embedding.astype("<f4").tobytes())[:64],
        "embedding float64": f64,
        "embedding text": ",".join(shortest).encode(),
        "embedding text spaced": ", ".join(shortest).encode(),
    }


def _found(blob: bytes, needles: dict[str, bytes]) -> list[str]:
    return [name for name, needle in needles.items() if needle in blob]


def _pg_dump(settings: Settings) -> bytes:
    pg = settings.postgres
    binary = PostgresServer(settings, settings.stack.state_dir).bin_dir / "pg_dump"
    env = {**os.environ, "PGPASSWORD": pg.password.get_secret_value()}
    args = [str(binary), "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", pg.db]
    return subprocess.run([*args, "--data-only"], env=env, capture_output=True, check=True).stdout


def _s3_blobs(settings: Settings) -> Iterator[tuple[str, bytes]]:
    client = s3_client(settings)
    try:
        for bucket in (b["Name"] for b in client.list_buckets()["Buckets"]):
            for key in list_objects(settings, bucket=bucket):
                body = client.get_object(Bucket=bucket, Key=key)["Body"]
                yield f"s3://{bucket}/{key}", body.read()
    finally:
        client.close()


def _kafka_blobs(settings: Settings) -> Iterator[tuple[str, bytes]]:
    bootstrap = settings.kafka.bootstrap
    for topic in asyncio.run(list_topics(bootstrap)):
        yield topic, b"\n".join(asyncio.run(read_topic(bootstrap, topic)))


def _redis_blobs(settings: Settings) -> Iterator[tuple[str, bytes]]:
    client = redis.Redis(host=settings.redis.host, port=settings.redis.port)
    try:
        for key in client.scan_iter(count=500):
            kind = client.type(key)
            if kind == b"string":
                yield key.decode(), key + b"=" + (client.get(key) or b"")
            else:
                yield key.decode(), key + b"=" + repr(client.dump(key)).encode()
    finally:
        client.close()


def test_selfies_are_never_stored_anywhere(server: ServerProcess, stack: Settings) -> None:
    session, photo = uid("privacy"), uid("privacy")
    group = T1.read_bytes()
    with server.client() as client:
        assert index(client, photo, session, group).status_code == 202
        wait_indexed(server, [photo])
        selfie = _distinctive_selfie()
        for _ in range(3):  # the second and third are answered from the cache
            response = search(client, session, selfie)
            assert response.status_code == 200, response.text
        assert search(client, uid("other"), selfie).status_code == 200
    embedding = _selfie_embedding(selfie, stack)
    needles = _needles(selfie, embedding)

    # PostgreSQL: no stored vector is the selfie's, and no column holds its bytes or values.
    with db(stack) as conn:
        closest = conn.execute(
            "SELECT max(1 - (embedding <=> %s::vector)) FROM face_embeddings",
            ("[" + ",".join(map(str, embedding.tolist())) + "]",),
        ).fetchone()[0]
    assert closest < 0.9999, closest
    dump = _pg_dump(stack)
    assert photo.encode() in dump  # the dump does hold the indexed photo's rows
    assert _found(dump, needles) == []

    # S3, every object of every bucket (the Kafka broker's log included).
    positive = group[len(group) // 2 : len(group) // 2 + 48]
    seen_photo = False
    for where, blob in _s3_blobs(stack):
        assert _found(blob, needles) == [], where
        seen_photo |= positive in blob
    assert seen_photo, "the scan did not see the indexed photo's bytes in S3"

    # Kafka, every topic from offset 0; Redis, every key; the server's log.
    kafka = dict(_kafka_blobs(stack))
    assert any(photo.encode() in blob for blob in kafka.values())
    for topic, blob in kafka.items():
        assert _found(blob, needles) == [], topic
    for key, blob in _redis_blobs(stack):
        assert _found(blob, needles) == [], key
    log = server.log().encode()
    assert _found(log, needles) == []


# --- CORS -----------------------------------------------------------------------------------


def test_cors_only_for_the_configured_origins(server: ServerProcess) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    with server.client() as client:
        allowed = client.options("/api/v2/search", headers={"Origin": ALLOWED_ORIGIN, **preflight})
        assert allowed.status_code in (200, 204)
        assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "POST" in allowed.headers["access-control-allow-methods"]
        for origin in (
            "https://evil.example",
            "https://photos.allowed.example.evil.example",
            "http://photos.allowed.example",
            "null",
        ):
            refused = client.options("/api/v2/search", headers={"Origin": origin, **preflight})
            assert refused.status_code < 500
            assert "access-control-allow-origin" not in refused.headers, origin
            simple = client.get("/api/v2/health/live", headers={"Origin": origin})
            assert "access-control-allow-origin" not in simple.headers, origin
        simple = client.get("/api/v2/health/live", headers={"Origin": ALLOWED_ORIGIN})
        assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


# --- caps before decode ---------------------------------------------------------------------


def _peak_rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def test_pixel_cap_is_enforced_before_decoding(server: ServerProcess, stack: Settings) -> None:
    """A 100-megapixel PNG (real pixels, 120 kB of upload) is refused on both routes without
    being decoded: the server's peak memory does not grow by the 100+ MB a decode needs. The
    control, a 49-megapixel PNG under the cap sent as a selfie, is decoded and does grow it."""
    pid = server.process.pid
    session, photo = uid("cap"), uid("cap")
    bomb = images.png_bomb()
    with server.client() as client:
        search(client, session, images.one_face_jpeg())  # warm: first-request allocations
        _reset_peak(pid)
        before = _peak_rss_kb(pid)
        assert index(client, photo, session, bomb).status_code == 413
        assert search(client, session, bomb).status_code == 413
        refused_growth_mb = (_peak_rss_kb(pid) - before) / 1024
        _reset_peak(pid)
        before = _peak_rss_kb(pid)
        control = search(client, session, images.png_bomb(7000))
        assert control.status_code == 422, control.text  # decoded: no face in it
        decoded_growth_mb = (_peak_rss_kb(pid) - before) / 1024
    assert decoded_growth_mb > 100, decoded_growth_mb
    assert refused_growth_mb < 40, refused_growth_mb
    assert photo_rows(stack, [photo]) == {}
    assert list_objects(stack, f"sessions/{session}/") == []


# --- SQL is parameterised -------------------------------------------------------------------

SQL_METHODS = {"execute", "executemany", "fetch", "fetchrow", "fetchval", "cursor", "prepare"}

#: Interpolations into SQL text that are known to hold constants only, and why.
ALLOWED_INTERPOLATIONS = {
    # `_COLUMNS` is a module constant (a column list) and `lock` is "" or " FOR UPDATE".
    ("libs/common/db/photos.py", "get_photo"),
}


def _interpolated(node: ast.AST, assigned: dict[str, ast.AST]) -> bool:
    """Whether a SQL argument is built by f-string, % or str.format (resolving local names)."""
    if isinstance(node, ast.Name) and node.id in assigned:
        return _interpolated(assigned[node.id], {})
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return not (_is_literal(node.left) and _is_literal(node.right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "format":
            # psycopg's sql.SQL(...).format(...) quotes identifiers and literals: allowed.
            base = node.func.value
            return not (
                isinstance(base, ast.Call)
                and isinstance(base.func, ast.Attribute)
                and base.func.attr == "SQL"
            )
        if node.func.attr == "join":
            return True
    return False


def _is_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) or (
        isinstance(node, ast.BinOp) and _is_literal(node.left) and _is_literal(node.right)
    )


def _sql_interpolations() -> set[tuple[str, str]]:
    found = set()
    for folder in ("libs", "services"):
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for function in ast.walk(tree):
                if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                assigned = {
                    t.id: n.value
                    for n in ast.walk(function)
                    if isinstance(n, ast.Assign)
                    for t in n.targets
                    if isinstance(t, ast.Name)
                }
                for call in ast.walk(function):
                    if (
                        isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Attribute)
                        and call.func.attr in SQL_METHODS
                        and call.args
                        and _interpolated(call.args[0], assigned)
                    ):
                        found.add((str(path.relative_to(REPO)), function.name))
    return found


def test_sql_is_built_only_with_bind_parameters() -> None:
    found = _sql_interpolations()
    assert found - ALLOWED_INTERPOLATIONS == set(), "SQL text built by interpolation"
    assert found >= ALLOWED_INTERPOLATIONS, "a stale allow-list entry: remove it"


def test_the_sql_scan_catches_interpolation(tmp_path: Path) -> None:
    """The scanner itself: an f-string, % and .format passed to execute are all caught."""
    snippets = [
        'async def f(conn, x):\n    await conn.execute(f"DELETE FROM t WHERE id = {x}")\n',
        'async def f(conn, x):\n    q = "SELECT %s" % x\n    await conn.fetch(q)\n',
        'async def f(conn, x):\n    await conn.fetchval("SELECT {}".format(x))\n',
    ]
    for source in snippets:
        tree = ast.parse(source)
        function = tree.body[0]
        assigned = {
            t.id: n.value
            for n in ast.walk(function)
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        calls = [c for c in ast.walk(function) if isinstance(c, ast.Call) and c.args]
        assert any(_interpolated(c.args[0], assigned) for c in calls), source
    safe = 'async def f(conn, x):\n    await conn.execute("DELETE FROM t WHERE id = $1", x)\n'
    calls = [c for c in ast.walk(ast.parse(safe)) if isinstance(c, ast.Call) and c.args]
    assert not any(_interpolated(c.args[0], {}) for c in calls)
