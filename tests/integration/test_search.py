"""POST /api/v2/search against the real stack: the right photos, exact per session, cached,
rate-limited across processes, and problem+json for bad selfies."""

from __future__ import annotations

import csv
import io
import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from libs.common.settings import Settings
from tests.support.api import index_and_wait
from tests.support.data import T1, TOM_HANKS, jpeg_bytes, shared_group_dir
from tests.support.processes import API_KEY, ServerProcess, facepass_serve

KEY = {"X-API-Key": API_KEY}
#: The left third of t1.jpg: its left-most person (the largest face there, so the one searched)
#: and part of a second face: a different picture of one attendee.
T1_LEFT = (0, 0, 1280 // 3, 886)


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def search(
    base_url: str, session: str, selfie: bytes, headers: dict[str, str] | None = None, **form: Any
) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/v2/search",
        data={"session_id": session, **{k: str(v) for k, v in form.items()}},
        files={"file": ("selfie.jpg", selfie, "image/jpeg")},
        headers=headers or {},
        timeout=30,
    )


@pytest.fixture(scope="module")
def t1_session(server: ServerProcess) -> str:
    session = _uid("t1s")
    index_and_wait(
        server,
        session,
        {f"{session}-group": T1.read_bytes(), f"{session}-tom": jpeg_bytes(TOM_HANKS)},
    )
    return session


def test_a_crop_of_one_attendee_finds_the_group_photo_only(
    server: ServerProcess, t1_session: str
) -> None:
    response = search(server.base_url, t1_session, jpeg_bytes(T1, crop=T1_LEFT))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "session_id", "results", "query_face", "threshold", "took_ms", "query_expansion",
        "query_faces",
    }  # fmt: skip
    assert body["query_faces"] == [body["query_face"]]
    # On by default: the crop's own face in the group photo is a sure match (>= 0.6) and lends
    # itself; the refined query finds nothing else of her.
    assert body["query_expansion"] == {"used": True, "faces": 1}
    assert [r["photo_id"] for r in body["results"]] == [f"{t1_session}-group"]
    result = body["results"][0]
    assert set(result) == {
        "photo_id", "similarity", "face", "thumbnail_url", "preview_url", "original_url",
        "width", "height", "url",
    }  # fmt: skip
    assert result["url"] == result["original_url"] and (result["width"], result["height"]) == (
        1280,
        886,
    )
    assert result["similarity"] >= body["threshold"]
    assert len(result["face"]["bbox"]) == 4
    assert result["face"]["bbox"][2] < 1280 / 3 + 20  # the matching face is the left one
    photo = httpx.get(result["url"], timeout=10)
    assert photo.status_code == 200 and photo.content == T1.read_bytes()
    assert body["query_face"]["faces_in_selfie"] >= 1
    assert 0 < body["query_face"]["det_score"] <= 1


def test_two_selfies_of_one_attendee_are_one_search(server: ServerProcess, t1_session: str) -> None:
    selfies = [jpeg_bytes(T1, crop=T1_LEFT), jpeg_bytes(T1, crop=T1_LEFT, scale=0.7)]
    files = [("file", (f"s{i}.jpg", data, "image/jpeg")) for i, data in enumerate(selfies)]
    response = httpx.post(
        f"{server.base_url}/api/v2/search", data={"session_id": t1_session}, files=files, timeout=30
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["photo_id"] for r in body["results"]] == [f"{t1_session}-group"]
    assert len(body["query_faces"]) == 2

    grey = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(grey, "JPEG")
    files.append(("file", ("grey.jpg", grey.getvalue(), "image/jpeg")))
    no_face = httpx.post(
        f"{server.base_url}/api/v2/search", data={"session_id": t1_session}, files=files, timeout=30
    )
    assert no_face.status_code == 422 and no_face.json()["type"] == "/problems/no-face"
    assert no_face.json()["selfie"] == 3, no_face.text
    files.append(("file", ("more.jpg", selfies[0], "image/jpeg")))
    too_many = httpx.post(
        f"{server.base_url}/api/v2/search", data={"session_id": t1_session}, files=files, timeout=30
    )
    assert too_many.status_code == 422, too_many.text


def test_another_person_finds_only_their_photo(server: ServerProcess, t1_session: str) -> None:
    body = search(server.base_url, t1_session, jpeg_bytes(TOM_HANKS, scale=0.8)).json()
    assert [r["photo_id"] for r in body["results"]] == [f"{t1_session}-tom"]


def test_unknown_session_answers_like_an_empty_one(server: ServerProcess) -> None:
    response = search(server.base_url, "no-such-session", jpeg_bytes(TOM_HANKS))
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_selfie_without_a_face_is_422(server: ServerProcess, t1_session: str) -> None:
    grey = io.BytesIO()
    Image.new("RGB", (400, 400), (128, 128, 128)).save(grey, format="JPEG")
    response = search(server.base_url, t1_session, grey.getvalue())
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "/problems/no-face"


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"threshold": "0.05"}, "/problems/validation-error"),
        ({"threshold": "1.5"}, "/problems/validation-error"),
        ({"limit": "0"}, "/problems/validation-error"),
        ({"limit": "5000"}, "/problems/validation-error"),
    ],
)
def test_out_of_bounds_options_are_422(
    server: ServerProcess, t1_session: str, form: dict[str, str], problem: str
) -> None:
    response = search(server.base_url, t1_session, jpeg_bytes(TOM_HANKS), **form)
    assert response.status_code == 422
    assert response.json()["type"] == problem


def test_not_an_image_is_415(server: ServerProcess, t1_session: str) -> None:
    response = search(server.base_url, t1_session, b"definitely not a jpeg")
    assert response.status_code == 415


def test_limit_and_threshold_are_applied(server: ServerProcess, t1_session: str) -> None:
    selfie = jpeg_bytes(T1, crop=T1_LEFT)
    strict = search(server.base_url, t1_session, selfie, threshold=0.999).json()
    assert strict["results"] == [] and strict["threshold"] == 0.999
    loose = search(server.base_url, t1_session, selfie, threshold=0.3, limit=1).json()
    assert len(loose["results"]) == 1


def test_repeat_search_is_cached_and_indexing_invalidates_it(
    server: ServerProcess, stack: Settings
) -> None:
    session = _uid("cache")
    index_and_wait(server, session, {f"{session}-a": jpeg_bytes(TOM_HANKS)})
    selfie = jpeg_bytes(TOM_HANKS, scale=0.7)
    first = search(server.base_url, session, selfie).json()
    second = search(server.base_url, session, selfie).json()
    assert second["results"] == first["results"]
    assert _cache_hits(server) >= 1
    hits = _cache_hits(server)
    # A new photo of the session must be visible at once, not after the cache expires.
    index_and_wait(server, session, {f"{session}-b": jpeg_bytes(TOM_HANKS, scale=0.9)})
    third = search(server.base_url, session, selfie).json()
    assert {r["photo_id"] for r in third["results"]} == {f"{session}-a", f"{session}-b"}
    assert _cache_hits(server) == hits
    # Erasing a photo invalidates too.
    with server.client() as client:
        client.delete(f"/api/v2/photos/{session}-b", headers=KEY)
    fourth = search(server.base_url, session, selfie).json()
    assert [r["photo_id"] for r in fourth["results"]] == [f"{session}-a"]


def _metric(server: ServerProcess, series: str) -> float:
    text = httpx.get(f"{server.base_url}/api/v2/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(series)
    )


def _cache_hits(server: ServerProcess) -> float:
    return _metric(server, 'facepass_search_cache_requests_total{result="hit"}')


def _wait_for_matrix_loads(server: ServerProcess, count: float) -> None:
    deadline = time.monotonic() + 30
    series = 'facepass_search_session_matrix_loads_total{outcome="loaded"}'
    while _metric(server, series) < count:
        assert time.monotonic() < deadline, "the session matrix was never loaded"
        time.sleep(0.1)


def test_huge_sessions_are_searched_in_memory_with_the_same_answers(
    server: ServerProcess, stack: Settings, tmp_path: Path
) -> None:
    """A search process holding the session's faces in memory answers exactly as SQL does,
    and never from a matrix older than the session."""
    session = _uid("matrix")
    photos = {f"{session}-group": T1.read_bytes(), f"{session}-tom": jpeg_bytes(TOM_HANKS)}
    index_and_wait(server, session, photos)
    selfie = jpeg_bytes(TOM_HANKS, scale=0.8)
    # One pass per search, so the counts below are the paths' (expansion's second pass on both
    # paths: tests/integration/test_query_expansion.py).
    env = {
        "SEARCH_MATRIX_MIN_FACES": "1", "SEARCH_MATRIX_REFRESH_S": "0.1",
        "SEARCH_QUERY_EXPANSION": "False",
    }  # fmt: skip
    # No result cache: every search below runs the per-session query.
    with facepass_serve(stack, tmp_path, "search-api", SEARCH_CACHE_TTL_S="0", **env) as matrix:
        sql = 'facepass_search_session_queries_total{path="sql"}'
        in_memory = 'facepass_search_session_queries_total{path="matrix"}'
        first = search(matrix.base_url, session, selfie, threshold=0.3).json()
        assert (_metric(matrix, sql), _metric(matrix, in_memory)) == (1, 0)
        _wait_for_matrix_loads(matrix, 1)
        second = search(matrix.base_url, session, selfie, threshold=0.3).json()
        assert (_metric(matrix, sql), _metric(matrix, in_memory)) == (1, 1)
        assert [r["photo_id"] for r in second["results"]] == [f"{session}-tom"]
        for a, b in zip(first["results"], second["results"], strict=True):
            assert a["photo_id"] == b["photo_id"] and a["face"] == b["face"]
            assert a["similarity"] == pytest.approx(b["similarity"], abs=2e-4)
        # A new photo moves the session on: the matrix applies the change first and answers
        # with it at once, from memory, without loading the session again.
        index_and_wait(server, session, {f"{session}-tom2": jpeg_bytes(TOM_HANKS, scale=0.9)})
        third = search(matrix.base_url, session, selfie, threshold=0.3).json()
        assert (_metric(matrix, sql), _metric(matrix, in_memory)) == (1, 2)
        expected = {f"{session}-tom", f"{session}-tom2"}
        assert {r["photo_id"] for r in third["results"]} == expected
        updates = "facepass_search_session_matrix_updates_total"
        assert _metric(matrix, updates) == 1
        # An erasure too: the erased photo is gone from the very next answer.
        with server.client() as client:
            erased = client.delete(f"/api/v2/photos/{session}-tom", headers=KEY)
        assert erased.status_code == 200
        fourth = search(matrix.base_url, session, selfie, threshold=0.3).json()
        assert [r["photo_id"] for r in fourth["results"]] == [f"{session}-tom2"]
        assert (_metric(matrix, sql), _metric(matrix, in_memory)) == (1, 3)
        loads = 'facepass_search_session_matrix_loads_total{outcome="loaded"}'
        assert _metric(matrix, loads) == 1  # never reloaded


def test_rate_limit_is_shared_by_two_processes(stack: Settings, tmp_path: Path) -> None:
    """Litestar's own limiter counts per process; ours must count once for all of them."""
    env = {"SEARCH_RATE_LIMIT_PER_MINUTE": "4", "TRUSTED_PROXIES": "127.0.0.1/32"}
    selfie = b"not an image, still counted"
    # One client, seen through a trusted proxy with an address of its own, alternates processes.
    client_ip = f"203.0.113.{random.randrange(1, 255)}"
    proxied = {"X-Forwarded-For": f"{client_ip}, 127.0.0.1"}
    with (
        facepass_serve(stack, tmp_path, "search-api", **env) as one,
        facepass_serve(stack, tmp_path, "search-api", **env) as two,
    ):
        statuses = []
        for i in range(6):
            base = (one if i % 2 == 0 else two).base_url
            statuses.append(search(base, "rl", selfie, headers=proxied).status_code)
        assert statuses[:4] == [415] * 4
        assert statuses[4:] == [429, 429]
        # Another client is not limited by the first one's budget.
        other = {"X-Forwarded-For": f"198.51.100.{random.randrange(1, 255)}"}
        assert search(two.base_url, "rl", selfie, headers=other).status_code == 415
        limited = search(one.base_url, "rl", selfie, headers=proxied)
        assert limited.headers["Retry-After"].isdigit()
        assert limited.headers["RateLimit-Limit"] == "4"
        assert limited.headers["RateLimit-Remaining"] == "0"
        assert limited.json()["type"] == "/problems/rate-limited"


@pytest.mark.skipif(shared_group_dir() is None, reason="../shared/datasets/group not present")
def test_group_photos_are_found_by_another_photo_of_each_person(server: ServerProcess) -> None:
    group = shared_group_dir()
    assert group is not None
    session = _uid("group")
    labels: dict[str, set[str]] = {}
    with (group / "photos.csv").open() as f:
        for row in csv.DictReader(f):
            if row["identities"]:
                labels[Path(row["photo"]).stem] = set(row["identities"].split(";"))
    index_and_wait(
        server,
        session,
        {f"{session}-{name}": (group / "photos" / f"{name}.jpg").read_bytes() for name in labels},
    )
    for person in ("obama", "biden", "kit_harington", "rose_leslie", "alex_lacamoire"):
        selfie = sorted((group / "known" / person).iterdir())[0].read_bytes()
        found = {
            r["photo_id"].removeprefix(f"{session}-")
            for r in search(server.base_url, session, selfie, limit=50).json()["results"]
        }
        expected = {name for name, people in labels.items() if person in people}
        assert found == expected, person
