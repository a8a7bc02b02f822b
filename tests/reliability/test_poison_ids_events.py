"""Poison ids and events, completing tests/integration (invalid ids on POST index; invalid
JSON / missing object / corrupt / text events): hostile ids everywhere an id is taken, duplicate
photo_id races, and poison events. Each gets its 422 or DLQ entry, changes nothing, and a good
photo after them still indexes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from typing import Any

import httpx

from libs.common.settings import Settings
from tests.support import bad_images as images
from tests.support.data import T1, TOM_HANKS, jpeg_bytes
from tests.support.processes import ServerProcess
from tests.support.reliability import (
    KEY,
    Topics,
    db,
    faces_per_photo,
    http_client,
    index,
    list_objects,
    photo_rows,
    publish_many,
    put_object,
    read_json_values,
    uid,
    wait_for,
    wait_indexed,
)

VALID_ID = "^[A-Za-z0-9][A-Za-z0-9._:-]*$"


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
    with http_client(server) as client:
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
            # Search takes the same ids as ingest: an id ingest refuses is 422 here too.
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
        with http_client(server) as client:
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
    keys = list_objects(stack, f"sessions/{session}/photos/{photo}/")
    assert len(keys) == 3 and sum("/renditions/" in k for k in keys) == 2  # one photo's set


def test_duplicate_photo_id_race_different_bytes(server: ServerProcess, stack: Settings) -> None:
    """Two uploads of one id with different bytes: both accepted, one of them wins entirely
    (its bytes, its faces, its single object and its two renditions); never a mix."""
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
        digest = row[1][:32]
        mine = [prefix + digest] + [
            f"{prefix}renditions/{digest}-{kind}.jpg" for kind in ("preview", "thumbnail")
        ]
        return row if faces == row[2] and keys == mine else None

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
