"""run_search without servers: the answer's shape, coordinates in the selfie's own pixels, the
problems it answers, and the cache in front of the engine (fakes: tests/support/fakes.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from libs.common.db.faces import PhotoMatch, PhotoObjects
from libs.common.http.problems import ApiError
from libs.common.settings import SearchSettings, Settings
from services.search_api.schemas import SearchResponse
from services.search_api.search import SearchRequest, run_search
from services.search_api.selfies import best_of, fused
from tests.support.fake_db import FakePhotoDb
from tests.support.fakes import FakeEngine, FakeObjectStore, fake_runtime, plain_jpeg


class DictCache:
    """SearchCache's interface over a dict (the real one is tested against Valkey)."""

    def __init__(self) -> None:
        self.entries: dict[str, SearchResponse] = {}

    async def key(self, selfie: bytes, parts: Any) -> str:
        return f"{hash(selfie)}|{parts.session_id}|{parts.session_version}|{parts.threshold}"

    async def get(self, key: str | None) -> SearchResponse | None:
        return self.entries.get(key) if key else None

    async def put(self, key: str | None, value: SearchResponse) -> None:
        if key:
            self.entries[key] = value


def request(selfie: bytes, session_id: str = "s1") -> SearchRequest:
    return SearchRequest(session_id, (selfie,), threshold=0.4, limit=10)


@pytest.fixture
def session(db: FakePhotoDb) -> FakePhotoDb:
    db.sessions["s1"] = datetime.now(UTC)
    p2 = PhotoObjects(
        "sessions/s1/photos/p2/aa",
        thumbnail_key="sessions/s1/photos/p2/renditions/aa-thumbnail.jpg",
        preview_key="sessions/s1/photos/p2/renditions/aa-preview.jpg",
        width=4000,
        height=3000,
    )
    # p1 was indexed before renditions existed (and comes from an upstream system's bucket).
    p1 = PhotoObjects("upstream/p1.jpg", object_bucket="pixora-originals")
    db.matches = [
        PhotoMatch("p2", 0.812345, [10.04, 20.06, 30.0, 40.0], p2),
        PhotoMatch("p1", 0.5, [1.0, 2.0, 3.0, 4.0], p1),
    ]
    return db


async def test_results_come_best_first_with_links_and_rounded_numbers(
    session: FakePhotoDb, store: FakeObjectStore, engine: FakeEngine
) -> None:
    runtime = fake_runtime(store=store, engine=engine)
    response = await run_search(runtime, None, request(plain_jpeg(400, 300)))
    assert [r.photo_id for r in response.results] == ["p2", "p1"]
    assert response.results[0].similarity == 0.8123
    assert response.results[0].face.bbox == [10.0, 20.1, 30.0, 40.0]
    assert response.results[0].url.startswith(
        "http://s3.test/facepass-images/sessions/s1/photos/p2/"
    )
    assert str(runtime.settings.search.url_expires_s) in response.results[0].url
    assert session.last_query["model_id"] == engine.pack.id
    assert session.last_query["threshold"] == 0.4 and session.last_query["limit"] == 10
    assert response.threshold == 0.4 and response.took_ms >= 0


async def test_results_link_the_thumbnail_preview_and_original(
    session: FakePhotoDb, store: FakeObjectStore
) -> None:
    response = await run_search(fake_runtime(store=store), None, request(plain_jpeg(400, 300)))
    best, older = response.results
    bucket = "http://s3.test/facepass-images/sessions/s1/photos/p2"
    assert best.thumbnail_url and best.thumbnail_url.startswith(f"{bucket}/renditions/aa-thumb")
    assert best.preview_url and best.preview_url.startswith(f"{bucket}/renditions/aa-preview")
    assert best.original_url and best.original_url.startswith(f"{bucket}/aa?")
    assert best.url == best.original_url and (best.width, best.height) == (4000, 3000)
    # No renditions yet: only the original, signed for its own bucket.
    assert older.thumbnail_url is None and older.preview_url is None
    assert older.original_url and "/pixora-originals/upstream/p1.jpg" in older.original_url
    assert older.width is None


async def test_withheld_originals_leave_only_the_renditions(
    session: FakePhotoDb, store: FakeObjectStore
) -> None:
    settings = Settings(search=SearchSettings(originals=False))
    runtime = fake_runtime(store=store, settings=settings)
    best, older = (await run_search(runtime, None, request(plain_jpeg(400, 300)))).results
    assert best.original_url is None and best.url == best.preview_url is not None
    assert "/renditions/" in (best.url or "")
    assert older.original_url is None and older.url is None


async def test_the_query_face_is_in_the_uploaded_selfies_pixels(
    session: FakePhotoDb, engine: FakeEngine
) -> None:
    """A 4000 px selfie is decoded reduced (to >= 1280 px); its bbox is scaled back."""
    response = await run_search(fake_runtime(engine=engine), None, request(plain_jpeg(4000, 3000)))
    # The fake engine puts the face at 25%..50% of whatever it was given.
    assert response.query_face.bbox == pytest.approx([1000, 750, 2000, 1500], abs=4)


async def test_an_unknown_session_answers_like_an_empty_one(db: FakePhotoDb) -> None:
    db.matches = [PhotoMatch("p1", 0.9, [0, 0, 1, 1], PhotoObjects("k"))]
    response = await run_search(fake_runtime(), None, request(plain_jpeg(), session_id="nope"))
    assert response.results == [] and db.last_query == {}


@pytest.mark.parametrize(
    ("selfie", "status", "slug"),
    [
        (plain_jpeg(colour=(0, 0, 0)), 422, "no-face"),
        (b"plain text", 415, "unsupported-image"),
        (plain_jpeg()[:50], 422, "corrupt-image"),
    ],
)
async def test_bad_selfies_get_their_problem(
    session: FakePhotoDb, selfie: bytes, status: int, slug: str
) -> None:
    with pytest.raises(ApiError) as caught:
        await run_search(fake_runtime(), None, request(selfie))
    assert (caught.value.status_code, caught.value.slug) == (status, slug)


async def test_a_repeated_selfie_is_answered_from_the_cache(
    session: FakePhotoDb, engine: FakeEngine
) -> None:
    cache = DictCache()
    runtime = fake_runtime(engine=engine)
    first = await run_search(runtime, cache, request(plain_jpeg()))  # type: ignore[arg-type]
    second = await run_search(runtime, cache, request(plain_jpeg()))  # type: ignore[arg-type]
    assert engine.selfies == 1
    assert second.results == first.results and second.query_face == first.query_face
    session.sessions["s1"] = datetime.now(UTC)  # the session changed: a new key
    await run_search(runtime, cache, request(plain_jpeg()))  # type: ignore[arg-type]
    assert engine.selfies == 2


def test_selfies_fuse_into_their_normalised_mean() -> None:
    front = np.array([1.0, 0.0, 0.0], np.float32)
    side = np.array([0.0, 1.0, 0.0], np.float32)
    assert fused([front]) is front  # one selfie: searched as it is
    assert np.allclose(fused([front, side]), [2**-0.5, 2**-0.5, 0.0])
    assert np.isclose(np.linalg.norm(fused([front, side, side])), 1.0)


def test_several_answers_keep_each_photo_at_its_best() -> None:
    def match(photo: str, similarity: float) -> PhotoMatch:
        return PhotoMatch(photo, similarity, [0, 0, 1, 1], PhotoObjects(f"k/{photo}"))

    merged = best_of([[match("a", 0.6), match("b", 0.5)], [match("b", 0.9), match("c", 0.4)]], 2)
    assert [(m.photo_id, m.similarity) for m in merged] == [("b", 0.9), ("a", 0.6)]


@pytest.mark.parametrize(("fusion", "queries"), [("mean", 1), ("max", 2)])
async def test_two_selfies_are_one_search_fused_or_one_query_each(
    session: FakePhotoDb, engine: FakeEngine, fusion: str, queries: int
) -> None:
    search = SearchSettings(selfies_fusion=fusion, query_expansion=False)
    runtime = fake_runtime(engine=engine, settings=Settings(search=search))
    selfies = (plain_jpeg(400, 300), plain_jpeg(300, 400, colour=(90, 160, 200)))
    response = await run_search(runtime, None, SearchRequest("s1", selfies, 0.4, 10))
    assert len(session.queries) == queries and engine.selfies == 2
    assert [r.photo_id for r in response.results] == ["p2", "p1"]
    assert [f.bbox for f in response.query_faces] == [[100, 75, 200, 150], [75, 100, 150, 200]]
    assert response.query_face == response.query_faces[0]


async def test_the_selfie_without_a_face_is_named(session: FakePhotoDb) -> None:
    selfies = (plain_jpeg(), plain_jpeg(colour=(0, 0, 0)), plain_jpeg())
    with pytest.raises(ApiError) as caught:
        await run_search(fake_runtime(), None, SearchRequest("s1", selfies, 0.4, 10))
    assert (caught.value.status_code, caught.value.slug) == (422, "no-face")
    assert caught.value.extra == {"selfie": 2} and "selfie 2 of 3" in caught.value.detail
