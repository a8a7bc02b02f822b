"""Poison input, completing tests/integration (which covers corrupt/truncated/zero-byte/text
uploads, a header-only PNG bomb, invalid ids on POST index, and invalid JSON / missing object /
corrupt / text events): real-pixel and header-only bombs of every type, unusual but valid
images (alpha, CMYK, animated, EXIF-rotated, no face, 200 faces), hostile ids everywhere an id
is taken, a duplicate photo_id race, and poison events. Each gets its documented 4xx or DLQ
entry, nothing is stored for a refused upload, and a good photo after them still indexes. The
same images sent as selfies get 4xx (or 200 where they are valid), never 5xx."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from libs.common.events import ID_PATTERN
from libs.common.settings import Settings
from tests.reliability import images
from tests.reliability.support import (
    KEY,
    Topics,
    db,
    faces_per_photo,
    index,
    list_objects,
    photo_rows,
    publish_many,
    put_object,
    read_json_values,
    search,
    uid,
    wait_for,
    wait_indexed,
)
from tests.support.data import T1, TOM_HANKS, jpeg_bytes
from tests.support.processes import ServerProcess

TOO_LARGE = "/problems/image-too-large"
VALID_ID = "^[A-Za-z0-9][A-Za-z0-9._:-]*$"

#: name → (bytes, status, problem type) for uploads refused before anything is stored.
REFUSED: dict[str, tuple[Callable[[], bytes], int, str]] = {
    "png-100-megapixel-real-pixels": (images.png_bomb, 413, TOO_LARGE),
    "gif-65535x65535-header": (images.gif_header_only, 413, TOO_LARGE),
    "jpeg-65000x65000-header": (images.jpeg_header_only, 413, TOO_LARGE),
    "webp-16384x16384-header": (images.webp_header_only, 413, TOO_LARGE),
    "png-9000x9000-header": (lambda: images.png_header_only(9000, 9000), 413, TOO_LARGE),
}

#: name → (bytes, faces the photo must end up with) for odd but valid photos.
ACCEPTED: dict[str, tuple[Callable[[], bytes], int]] = {
    "png-with-alpha": (images.png_with_alpha, 1),
    "cmyk-jpeg": (images.cmyk_jpeg, 1),
    "animated-gif": (lambda: images.animated("GIF"), 1),
    "animated-webp": (lambda: images.animated("WEBP"), 1),
    "exif-rotated": (images.exif_rotated, 1),
    "no-face": (images.no_face, 0),
}


def _client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=60)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bombs_are_refused_and_store_nothing(
    server: ServerProcess, stack: Settings, name: str
) -> None:
    build, status, problem = REFUSED[name]
    session, photo = uid("bomb"), uid(name[:20])
    with _client(server) as client:
        response = index(client, photo, session, build())
        assert response.status_code == status, response.text
        assert response.json()["type"] == problem
        assert client.get(f"/api/v2/photos/{photo}", headers=KEY).status_code == 404
        selfie = search(client, session, build())
        assert selfie.status_code == status, selfie.text
        assert selfie.json()["type"] == problem
    assert list_objects(stack, f"sessions/{session}/") == []
    assert photo_rows(stack, [photo]) == {}


def test_odd_but_valid_photos_are_indexed_with_their_faces(
    server: ServerProcess, stack: Settings
) -> None:
    assert images.mode_of(images.cmyk_jpeg()) == "CMYK"
    session = uid("odd")
    photos = {f"{name}-{session}": (build(), faces) for name, (build, faces) in ACCEPTED.items()}
    # The control: the same rotated pixels without their EXIF orientation show no face, so a
    # face found in the EXIF-rotated photo proves the orientation was applied.
    photos[f"exif-stripped-{session}"] = (images.exif_rotated_stripped(), 0)
    with _client(server) as client:
        for photo, (data, _) in photos.items():
            response = index(client, photo, session, data)
            assert response.status_code == 202, (photo, response.text)
    wait_indexed(server, list(photos))
    rows = photo_rows(stack, list(photos))
    assert {p: rows[p][0] for p in photos} == dict.fromkeys(photos, "indexed")
    faces = faces_per_photo(stack, list(photos))
    assert {p: faces.get(p, 0) for p in photos} == {p: n for p, (_, n) in photos.items()}


def test_two_hundred_faces_index_the_cap_and_report_the_rest(
    server: ServerProcess, stack: Settings
) -> None:
    session, photo = uid("crowd"), uid("crowd")
    with _client(server) as client:
        assert index(client, photo, session, images.two_hundred_faces()).status_code == 202
        wait_indexed(server, [photo])
        status = client.get(f"/api/v2/photos/{photo}", headers=KEY).json()
        # As a selfie, a crowd is still a valid query: the main face is searched.
        selfie = search(client, session, images.two_hundred_faces())
    assert status["status"] == "indexed"
    assert status["faces_indexed"] == 100  # MAX_FACES_PER_PHOTO
    over = [r for r in status["faces_rejected"] if r["reason"] == "over_limit"]
    assert len(over) >= 90, status["faces_rejected"][:5]
    assert faces_per_photo(stack, [photo]) == {photo: 100}
    assert selfie.status_code == 200, selfie.text
    assert selfie.json()["query_face"]["faces_in_selfie"] >= 150
    assert selfie.json()["results"][0]["photo_id"] == photo


BAD_IDS = [
    "x" * 129,  # one over the limit
    "",
    "\uff50hoto-fullwidth",
    "photo\u200bzero-width",
    "photo\u202eevil",
    "café",
    "😀",
    "..",
    "../../etc/passwd",
    "a/../b",
    "a\\b",
    "%2e%2e%2f",
    "a b",
    "a\nb",
    "a\x00b",
    "-leading-dash",
    ".hidden",
    "x:..:y",
]


def test_hostile_ids_are_422_everywhere_and_change_nothing(
    server: ServerProcess, stack: Settings
) -> None:
    photo = jpeg_bytes(TOM_HANKS)
    good = uid("good")
    with _client(server) as client:
        for bad in BAD_IDS:
            for fields in (
                {"photo_id": bad, "session_id": good},
                {"photo_id": good, "session_id": bad},
            ):
                response = client.post(
                    "/api/v2/index",
                    headers=KEY,
                    data=fields,
                    files={"file": ("p.jpg", photo, "image/jpeg")},
                )
                assert response.status_code == 422, (fields, response.status_code, response.text)
            selfie = client.post(
                "/api/v2/search",
                data={"session_id": bad},
                files={"file": ("s.jpg", photo, "image/jpeg")},
            )
            if re.fullmatch(ID_PATTERN, bad):
                # Well-formed for search (ingest also refuses `..`, for its S3 keys): a session
                # that cannot exist answers like an empty one.
                assert selfie.status_code == 200, (bad, selfie.text)
                assert selfie.json()["results"] == []
            else:
                assert selfie.status_code == 422, (bad, selfie.text)
        # The longest valid ids (128 characters) are accepted.
        longest_photo, longest_session = "p" + "x" * 127, "s" + uid("long").ljust(127, "y")
        accepted = index(client, longest_photo, longest_session, photo)
        assert accepted.status_code == 202, accepted.text
        # Ids in the URL path: never a 5xx, never an erasure or a read outside the id space.
        for raw in (
            "..%2F..%2Fetc%2Fpasswd",
            "%2e%2e",
            "a%00b",
            "%F0%9F%98%80",
            "x" * 300,
            "caf%C3%A9",
            "%252e%252e%252f",
            "a%0Ab",
        ):
            for method in ("GET", "DELETE"):
                for route in ("photos", "sessions"):
                    if method == "GET" and route == "sessions":
                        continue
                    response = client.request(method, f"/api/v2/{route}/{raw}", headers=KEY)
                    assert response.status_code in (404, 405, 422), (method, route, raw, response)
    assert photo_rows(stack, [good]) == {}
    assert list_objects(stack, f"sessions/{good}/") == []
    wait_indexed(server, [longest_photo])
    with db(stack) as conn:
        tombstones = conn.execute(
            "SELECT count(*) FROM erased_sessions WHERE session_id !~ %s", (VALID_ID,)
        ).fetchone()
    assert tombstones == (0,)


def _race(server: ServerProcess, uploads: list[tuple[str, str, bytes]]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(uploads))
    answers: list[Any] = [None] * len(uploads)

    def upload(i: int) -> None:
        photo, session, data = uploads[i]
        with _client(server) as client:
            barrier.wait()
            answers[i] = index(client, photo, session, data)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(uploads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_duplicate_photo_id_race_same_bytes(server: ServerProcess, stack: Settings) -> None:
    session, photo = uid("race"), uid("race")
    answers = _race(server, [(photo, session, T1.read_bytes())] * 2)
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True]
    wait_indexed(server, [photo])
    assert faces_per_photo(stack, [photo]) == {photo: 6}
    assert len(list_objects(stack, f"sessions/{session}/photos/{photo}/")) == 1


def test_duplicate_photo_id_race_different_bytes(server: ServerProcess, stack: Settings) -> None:
    """Two uploads of one id with different bytes: both accepted, one of them wins entirely
    (its bytes, its faces, its single object); never a mix."""
    session, photo = uid("race"), uid("race")
    versions = {
        hashlib.sha256(d).hexdigest(): (d, n)
        for d, n in ((T1.read_bytes(), 6), (jpeg_bytes(TOM_HANKS), 1))
    }
    answers = _race(server, [(photo, session, d) for d, _ in versions.values()])
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]

    prefix = f"sessions/{session}/photos/{photo}/"

    def settled() -> Any:
        """The row indexed, with the faces of the bytes it names, which are the one object
        left. (The older upload's event may briefly index its bytes after the newer upload
        replaced them: see docs/reliability.md; the end state must be consistent.)"""
        with db(stack) as conn:
            row = conn.execute(
                "SELECT status, content_sha256, faces_count FROM photos WHERE photo_id = %s",
                (photo,),
            ).fetchone()
        if not row or row[0] != "indexed" or row[2] != versions[row[1]][1]:
            return None
        faces = faces_per_photo(stack, [photo]).get(photo, 0)
        keys = list_objects(stack, prefix)
        return row if faces == row[2] and keys == [prefix + row[1][:32]] else None

    row = wait_for(settled, 120, "the race's winner to be indexed, consistently")
    assert faces_per_photo(stack, [photo]) == {photo: versions[row[1]][1]}


def test_duplicate_photo_id_race_across_sessions(server: ServerProcess, stack: Settings) -> None:
    photo = uid("race")
    answers = _race(
        server, [(photo, uid("a"), T1.read_bytes()), (photo, uid("b"), T1.read_bytes())]
    )
    assert sorted(a.status_code for a in answers) == [202, 409]
    winner = next(a for a in answers if a.status_code == 202).json()["session_id"]
    wait_indexed(server, [photo])
    assert photo_rows(stack, [photo])[photo][0] == "indexed"
    with db(stack) as conn:
        sessions = conn.execute(
            "SELECT DISTINCT session_id FROM face_embeddings WHERE photo_id = %s", (photo,)
        ).fetchall()
    assert sessions == [(winner,)]


def test_poison_events_go_to_the_dlq_and_the_pipeline_continues(
    server: ServerProcess, stack: Settings, topics: Topics
) -> None:
    """Events published straight to the topic (the upstream contract), as tests/integration's
    poison test but with what it does not cover: bad S3 references (no such bucket, a key
    outside the photo, an empty key), invalid JSON of every shape, hostile ids in an event, and
    image bombs that only the embedder sees."""
    session = uid("poisonev")
    bucket = stack.s3.bucket

    def event(photo: str, key: str, bucket_name: str = bucket, **extra: Any) -> bytes:
        body = {
            "photo_id": photo,
            "session_id": session,
            "object": {"bucket": bucket_name, "key": key},
        }
        return json.dumps({**body, **extra}).encode()

    for name, data in (
        ("bomb.png", images.png_bomb()),
        ("gif-bomb.gif", images.gif_header_only()),
        ("good.jpg", T1.read_bytes()),
    ):
        put_object(stack, f"upstream/{session}/{name}", data)
    marker = session.encode()
    expected: dict[str, set[str]] = {}  # photo id or raw marker → acceptable error kinds
    records: list[tuple[bytes, bytes | None]] = []

    def add(kind: str | set[str], value: bytes, photo: str | None = None) -> None:
        key = photo or f"raw-{len(records)}"
        expected[key] = {kind} if isinstance(kind, str) else kind
        records.append((value, (photo or key).encode()))

    add("missing_object", event(p := uid("nobucket"), "x.jpg", "no-such-bucket-" + session[-8:]), p)
    add("missing_object", event(p := uid("traversal"), f"upstream/{session}/../../etc/passwd"), p)
    add("missing_object", event(p := uid("badbucket"), "x.jpg", "Bad_Bucket!"), p)
    # A "directory" key: S3 says no such key; SeaweedFS serves an empty object (not an image).
    add(
        {"missing_object", "unsupported_image"},
        event(p := uid("prefix"), f"upstream/{session}/"),
        p,
    )
    add("image_too_large", event(p := uid("bomb"), f"upstream/{session}/bomb.png"), p)
    add("image_too_large", event(p := uid("gifbomb"), f"upstream/{session}/gif-bomb.gif"), p)
    for raw in (
        b"[1, 2, 3]",
        b"null",
        b'"just a string"',
        b"\xff\xfe\x00garbage",
        b"",
        b'{"photo_id": 5}',
        b"{" * 5000,
    ):
        add("invalid_event", raw + b" " + marker if raw else raw)
    for bad_id in ("../../etc/passwd", "\uff50hoto", "x" * 129, "a/b"):
        add("invalid_event", event(bad_id, f"upstream/{session}/good.jpg") + b" " + marker)
    add("invalid_event", event(uid("badref"), "") + b" " + marker)
    add(
        "invalid_event",
        json.dumps({"photo_id": uid("noobj"), "session_id": session}).encode() + b" " + marker,
    )
    good = uid("good")
    records.append((event(good, f"upstream/{session}/good.jpg"), good.encode()))
    asyncio.run(publish_many(stack.kafka.bootstrap, topics.kafka.topic_uploaded, records))

    wait_indexed(server, [good], timeout=180)
    assert faces_per_photo(stack, [good]) == {good: 6}

    def ours(entry: dict[str, Any]) -> bool:
        return (
            entry.get("session_id") == session
            or marker.decode() in entry["source"]["value"]
            or (entry["source"]["value"] == "" and entry["source"]["key"].startswith("raw-"))
        )

    def collected() -> list[dict[str, Any]]:
        dlq = [
            e for e in read_json_values(stack.kafka.bootstrap, topics.kafka.topic_dlq) if ours(e)
        ]
        return dlq if len(dlq) >= len(expected) else []

    dlq = wait_for(collected, 90, "every poison event in the DLQ", interval=1)
    kinds = {}
    for entry in dlq:
        key = entry["photo_id"] or entry["source"]["key"]
        kinds[key] = entry["error_kind"]
        assert entry["source"]["topic"] == topics.kafka.topic_uploaded
    assert set(kinds) == set(expected)
    assert {k: v for k, v in kinds.items() if v not in expected[k]} == {}
    rows = photo_rows(stack, [p for p in expected if not p.startswith("raw-")])
    assert {p: r[0] for p, r in rows.items()} == dict.fromkeys(rows, "failed")
    assert len(rows) == 6  # the six valid events that could not be indexed


SELFIES: dict[str, tuple[Callable[[], bytes], int, str | None]] = {
    "zero-byte": (lambda: b"", 415, "/problems/unsupported-image"),
    "text-renamed-jpg": (images.text_as_jpeg, 415, "/problems/unsupported-image"),
    "truncated-jpeg": (images.truncated_jpeg, 422, "/problems/corrupt-image"),
    "no-face": (images.no_face, 422, "/problems/no-face"),
    "png-with-alpha": (images.png_with_alpha, 200, None),
    "cmyk-jpeg": (images.cmyk_jpeg, 200, None),
    "animated-gif": (lambda: images.animated("GIF"), 200, None),
    "animated-webp": (lambda: images.animated("WEBP"), 200, None),
    "exif-rotated": (images.exif_rotated, 200, None),
}


def test_poison_selfies_get_4xx_never_5xx(server: ServerProcess) -> None:
    session = uid("selfies")
    with _client(server) as client:
        for name, (build, status, problem) in SELFIES.items():
            response = search(client, session, build())
            assert response.status_code == status, (name, response.text)
            if problem:
                assert response.json()["type"] == problem, name
                assert response.headers["content-type"].startswith("application/problem+json")
        missing_file = client.post("/api/v2/search", data={"session_id": session})
        assert missing_file.status_code in (400, 422), missing_file.text
        for form in (
            {"threshold": "abc"},
            {"limit": "1e9"},
            {"threshold": "nan"},
            {"limit": "-1"},
            {"threshold": "2"},
        ):
            response = client.post(
                "/api/v2/search",
                data={"session_id": session, **form},
                files={"file": ("s.jpg", jpeg_bytes(TOM_HANKS), "image/jpeg")},
            )
            assert response.status_code in (400, 422), (form, response.text)
        no_multipart = client.post(
            "/api/v2/search",
            content=b"\x00" * 100,
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert 400 <= no_multipart.status_code < 500, no_multipart.text
