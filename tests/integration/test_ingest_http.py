"""POST /api/v2/index and the photo routes against the real stack: accepted photos get indexed,
bad input gets its 4xx and stores nothing, erasure removes rows, vectors and objects."""

from __future__ import annotations

import io
import struct
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.session import get_session

from libs.common.settings import Settings
from libs.common.storage import client_kwargs
from tests.support.data import T1, TOM_HANKS, jpeg_bytes
from tests.support.processes import API_KEY, ServerProcess, facepass_serve

KEY = {"X-API-Key": API_KEY}


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def index(server: ServerProcess, photo_id: str, session_id: str, data: bytes, **kw: Any) -> Any:
    headers = kw.pop("headers", KEY)
    with server.client() as client:
        return client.post(
            "/api/v2/index",
            headers=headers,
            data={"photo_id": photo_id, "session_id": session_id},
            files={"file": ("photo.jpg", data, "image/jpeg")},
            **kw,
        )


def wait_status(
    server: ServerProcess, photo_id: str, want: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    with server.client() as client:
        while time.monotonic() < deadline:
            response = client.get(f"/api/v2/photos/{photo_id}", headers=KEY)
            body = response.json()
            if response.status_code == 200 and body["status"] == want:
                return body
            time.sleep(0.3)
    raise AssertionError(f"{photo_id} never reached {want}: {body}")


def _db(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(settings.postgres.dsn(), autocommit=True)


def _face_count(settings: Settings, photo_id: str) -> int:
    with _db(settings) as conn:
        return conn.execute(
            "SELECT count(*) FROM face_embeddings WHERE photo_id = %s", (photo_id,)
        ).fetchone()[0]


def _objects(settings: Settings, prefix: str) -> list[str]:
    client = get_session().create_client("s3", **client_kwargs(settings.s3))
    try:
        listed = client.list_objects_v2(Bucket=settings.s3.bucket, Prefix=prefix)
        return [item["Key"] for item in listed.get("Contents", [])]
    finally:
        client.close()


def test_index_t1_over_http_gives_six_faces(server: ServerProcess, stack: Settings) -> None:
    photo, session = _uid("t1"), _uid("sess")
    response = index(server, photo, session, T1.read_bytes())
    assert response.status_code == 202, response.text
    body = response.json()
    assert body == {
        "photo_id": photo,
        "session_id": session,
        "status": "queued",
        "status_url": f"/api/v2/photos/{photo}",
        "duplicate": False,
    }
    assert response.headers["location"] == f"/api/v2/photos/{photo}"
    status = wait_status(server, photo, "indexed")
    assert status["faces_indexed"] == 6
    assert status["model"]
    assert _face_count(stack, photo) == 6
    keys = _objects(stack, f"sessions/{session}/photos/{photo}/")
    assert len(keys) == 3 and sum("/renditions/" in k for k in keys) == 2  # + thumb, preview


def test_same_bytes_is_a_no_op_and_new_bytes_replace_the_faces(
    server: ServerProcess, stack: Settings
) -> None:
    photo, session = _uid("re"), _uid("sess")
    assert index(server, photo, session, T1.read_bytes()).status_code == 202
    wait_status(server, photo, "indexed")
    again = index(server, photo, session, T1.read_bytes())
    assert again.status_code == 202
    assert again.json()["duplicate"] is True
    assert again.json()["status"] == "indexed"
    replaced = index(server, photo, session, jpeg_bytes(TOM_HANKS))
    assert replaced.json()["duplicate"] is False
    deadline = time.monotonic() + 60
    while _face_count(stack, photo) != 1 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _face_count(stack, photo) == 1
    # The replaced bytes are gone; only the new object remains (renditions:
    # tests/integration/test_renditions.py).
    keys = _objects(stack, f"sessions/{session}/photos/{photo}/")
    assert len([k for k in keys if "/renditions/" not in k]) == 1


def test_a_photo_id_cannot_move_to_another_session(server: ServerProcess) -> None:
    photo = _uid("owned")
    assert index(server, photo, _uid("a"), T1.read_bytes()).status_code == 202
    response = index(server, photo, _uid("b"), T1.read_bytes())
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/photo-conflict"


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares huge dimensions (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-API-Key": "wrong-key-000000"}, 401), ({"X-API-Key": ""}, 401)],
)
def test_index_needs_a_valid_key(
    server: ServerProcess, headers: dict[str, str], status: int
) -> None:
    response = index(server, _uid("p"), _uid("s"), T1.read_bytes(), headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "/problems/unauthorized"


def test_bad_uploads_get_their_4xx_and_store_nothing(
    server: ServerProcess, stack: Settings
) -> None:
    session = _uid("bad")
    cases = {
        "text": (b"just some text, not an image", 415, "/problems/unsupported-image"),
        "empty": (b"", 415, "/problems/unsupported-image"),
        "bomb": (_png_header_only(60_000, 60_000), 413, "/problems/image-too-large"),
        "truncated": (T1.read_bytes()[:4], 422, "/problems/corrupt-image"),
        # Cut off in transit: the header is whole, the end is missing (was 202, then the DLQ).
        "cut-off": (T1.read_bytes()[: T1.stat().st_size // 3], 422, "/problems/corrupt-image"),
    }
    for name, (payload, status, problem) in cases.items():
        response = index(server, f"{name}-{session}", session, payload)
        assert response.status_code == status, (name, response.text)
        assert response.json()["type"] == problem, name
    for bad_id in ("../../etc/passwd", "a/b", "x" * 200, "ünïcode", ".hidden"):
        response = index(server, bad_id, session, T1.read_bytes())
        assert response.status_code == 422, bad_id
        assert response.json()["type"] == "/problems/invalid-id"
    with server.client() as client:
        missing = client.post(
            "/api/v2/index", headers=KEY, data={"photo_id": "p1"}, files={"file": ("a.jpg", b"x")}
        )
    assert missing.status_code == 422
    assert missing.json()["type"] == "/problems/validation-error"
    assert _objects(stack, f"sessions/{session}/") == []
    with _db(stack) as conn:
        rows = conn.execute("SELECT count(*) FROM photos WHERE session_id = %s", (session,))
        assert rows.fetchone()[0] == 0


def test_oversized_body_is_413(server: ServerProcess) -> None:
    big = b"\xff\xd8\xff" + b"\x00" * (stack_max_bytes() + 1024)
    response = index(server, _uid("big"), _uid("s"), big)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")


def stack_max_bytes() -> int:
    from libs.common.settings import FaceSettings

    return FaceSettings(_env_file=None).max_image_bytes  # type: ignore[call-arg]


def test_status_of_unknown_photo_is_404(server: ServerProcess) -> None:
    with server.client() as client:
        response = client.get("/api/v2/photos/never-seen", headers=KEY)
    assert response.status_code == 404
    assert response.json()["type"] == "/problems/photo-not-found"


def test_erasing_a_photo_removes_row_vectors_and_object(
    server: ServerProcess, stack: Settings
) -> None:
    photo, session = _uid("gone"), _uid("sess")
    index(server, photo, session, T1.read_bytes())
    wait_status(server, photo, "indexed")
    with server.client() as client:
        response = client.delete(f"/api/v2/photos/{photo}", headers=KEY)
        assert response.status_code == 200
        # The photo, its thumbnail and its preview.
        assert response.json() == {"photo_id": photo, "session_id": session, "objects_deleted": 3}
        assert client.get(f"/api/v2/photos/{photo}", headers=KEY).status_code == 404
        assert client.delete(f"/api/v2/photos/{photo}").status_code == 401
    assert _face_count(stack, photo) == 0
    assert _objects(stack, f"sessions/{session}/") == []


def test_erasing_a_session_removes_everything_in_it(server: ServerProcess, stack: Settings) -> None:
    session = _uid("sess")
    photos = [_uid("p") for _ in range(2)]
    for photo, data in zip(photos, [T1.read_bytes(), jpeg_bytes(TOM_HANKS)], strict=True):
        index(server, photo, session, data)
    for photo in photos:
        wait_status(server, photo, "indexed")
    with server.client() as client:
        response = client.delete(f"/api/v2/sessions/{session}", headers=KEY)
    assert response.status_code == 200
    assert response.json() == {"session_id": session, "photos_erased": 2, "objects_deleted": 6}
    with _db(stack) as conn:
        faces = conn.execute(
            "SELECT count(*) FROM face_embeddings WHERE session_id = %s", (session,)
        )
        assert faces.fetchone()[0] == 0
        tomb = conn.execute(
            "SELECT count(*) FROM erased_sessions WHERE session_id = %s", (session,)
        )
        assert tomb.fetchone()[0] == 1
    assert _objects(stack, f"sessions/{session}/") == []


def test_request_id_is_echoed_and_a_bad_one_replaced(server: ServerProcess) -> None:
    with server.client() as client:
        kept = client.get("/api/v2/health/live", headers={"X-Request-ID": "abc-123"})
        replaced = client.get("/api/v2/health/live", headers={"X-Request-ID": "bad id <script>"})
    assert kept.headers["x-request-id"] == "abc-123"
    assert replaced.headers["x-request-id"] != "bad id <script>"
    assert len(replaced.headers["x-request-id"]) == 32


def test_index_carries_the_request_id_to_the_embedder_log(server: ServerProcess) -> None:
    photo = _uid("traced")
    request_id = uuid.uuid4().hex
    with server.client() as client:
        client.post(
            "/api/v2/index",
            headers={**KEY, "X-Request-ID": request_id},
            data={"photo_id": photo, "session_id": _uid("s")},
            files={"file": ("p.jpg", io.BytesIO(T1.read_bytes()), "image/jpeg")},
        )
    wait_status(server, photo, "indexed")
    lines = [line for line in server.log().splitlines() if request_id in line]
    assert any('"photo accepted"' in line for line in lines)
    assert any('"photo indexed"' in line and photo in line for line in lines)


def test_retention_erases_expired_sessions(
    server: ServerProcess, stack: Settings, tmp_path: Path
) -> None:
    """A session past its expires_at, or older than SESSION_RETENTION_DAYS, is erased by the
    ingest service's periodic job; a young session is kept."""
    expiring, ageing, young = _uid("exp"), _uid("old"), _uid("young")
    for session in (expiring, ageing, young):
        index(server, f"{session}-p", session, jpeg_bytes(TOM_HANKS))
        wait_status(server, f"{session}-p", "indexed")
    with _db(stack) as conn:
        conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE session_id = %s",
            (expiring,),
        )
        conn.execute(
            "UPDATE sessions SET created_at = now() - interval '3 days' WHERE session_id = %s",
            (ageing,),
        )
    env = {"SESSION_RETENTION_DAYS": "2", "RETENTION_CHECK_S": "1"}
    with facepass_serve(stack, tmp_path, "ingest", **env):
        deadline = time.monotonic() + 60
        while _objects(stack, f"sessions/{ageing}/") or _objects(stack, f"sessions/{expiring}/"):
            assert time.monotonic() < deadline, "expired sessions were not erased"
            time.sleep(0.5)
    with _db(stack) as conn:
        left = conn.execute(
            "SELECT session_id FROM sessions WHERE session_id = ANY(%s)",
            ([expiring, ageing, young],),
        ).fetchall()
        tombs = conn.execute(
            "SELECT count(*) FROM erased_sessions WHERE session_id = ANY(%s)",
            ([expiring, ageing],),
        ).fetchone()[0]
    assert left == [(young,)]
    assert tombs == 2
    assert _face_count(stack, f"{expiring}-p") == 0
