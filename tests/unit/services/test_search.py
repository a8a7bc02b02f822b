"""run_search without servers: the answer's shape, coordinates in the selfie's own pixels, the
problems it answers, and the cache in front of the engine (fakes: tests/support/fakes.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from libs.common.db.faces import PhotoMatch
from libs.common.http.problems import ApiError
from services.search_api.schemas import SearchResponse
from services.search_api.search import SearchRequest, run_search
from tests.support.fakes import FakeEngine, FakeObjectStore, FakePhotoDb, fake_runtime, plain_jpeg


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
    return SearchRequest(session_id, selfie, threshold=0.4, limit=10)


@pytest.fixture
def session(db: FakePhotoDb) -> FakePhotoDb:
    db.sessions["s1"] = datetime.now(UTC)
    db.matches = [
        PhotoMatch("p2", 0.812345, [10.04, 20.06, 30.0, 40.0], "sessions/s1/photos/p2/aa"),
        PhotoMatch("p1", 0.5, [1.0, 2.0, 3.0, 4.0], "sessions/s1/photos/p1/bb"),
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


async def test_the_query_face_is_in_the_uploaded_selfies_pixels(
    session: FakePhotoDb, engine: FakeEngine
) -> None:
    """A 4000 px selfie is decoded reduced (to >= 1280 px); its bbox is scaled back."""
    response = await run_search(fake_runtime(engine=engine), None, request(plain_jpeg(4000, 3000)))
    # The fake engine puts the face at 25%..50% of whatever it was given.
    assert response.query_face.bbox == pytest.approx([1000, 750, 2000, 1500], abs=4)


async def test_an_unknown_session_answers_like_an_empty_one(db: FakePhotoDb) -> None:
    db.matches = [PhotoMatch("p1", 0.9, [0, 0, 1, 1], "k")]
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
