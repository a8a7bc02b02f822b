"""Session query expansion (services/search_api/expansion.py): the pure parts, then whole
searches through the fake runtime with synthetic unit vectors, on the SQL path and on the
in-memory matrix path. The selfie's embedding is the fake engine's; every face is built from
it and from directions orthogonal to it, so each similarity is known in advance."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from libs.common.db.faces import Lending, PhotoMatch, PhotoObjects
from libs.common.settings import SearchSettings, Settings
from services.search_api import session_query
from services.search_api.expansion import lending_for, merged, refined_query
from services.search_api.matrix import SessionMatrix
from services.search_api.search import SearchRequest, run_search
from tests.support.fake_db import FakePhotoDb
from tests.support.fakes import fake_runtime, plain_jpeg, unit_face
from tests.support.vectors import DIM, FacesAround

Vector = np.ndarray[Any, Any]
SELFIE: Vector = unit_face(1).embedding  # what FakeEngine.selfie embeds, for any selfie


@pytest.fixture
def around() -> FacesAround:
    return FacesAround(SELFIE)


def e(i: int) -> Vector:
    vector = np.zeros(8, np.float32)
    vector[i] = 1.0
    return vector


# --- the pure parts --------------------------------------------------------------------------


def test_the_refined_query_is_the_normalised_mean_of_selfie_and_lenders() -> None:
    assert np.allclose(refined_query(e(0), [e(1)]), (e(0) + e(1)) / np.sqrt(2))
    assert np.allclose(refined_query(e(0), [e(1), e(2), e(3)]), (e(0) + e(1) + e(2) + e(3)) / 2)
    assert np.allclose(refined_query(e(0), []), e(0))
    axes = FacesAround(SELFIE).axes
    query = refined_query(SELFIE, axes[:2])
    assert query.dtype == np.float32 and np.linalg.norm(query) == pytest.approx(1.0, abs=1e-6)


def test_the_union_keeps_each_photo_once_with_its_better_pass() -> None:
    first = [
        PhotoMatch("a", 0.8, [1, 1, 1, 1], PhotoObjects("ka")),
        PhotoMatch("b", 0.5, [2, 2, 2, 2], PhotoObjects("kb")),
    ]
    second = [
        PhotoMatch("b", 0.7, [3, 3, 3, 3], PhotoObjects("kb")),
        PhotoMatch("a", 0.6, [4, 4, 4, 4], PhotoObjects("ka")),
        PhotoMatch("c", 0.5, [5, 5, 5, 5], PhotoObjects("kc")),
    ]
    union = merged(first, second, limit=10)
    assert [(m.photo_id, m.similarity, m.bbox[0]) for m in union] == [
        ("a", 0.8, 1),  # the first pass's face: its similarity was the higher
        ("b", 0.7, 3),  # the second pass's face
        ("c", 0.5, 5),  # found by the second pass only
    ]
    assert [m.photo_id for m in merged(first, second, limit=2)] == ["a", "b"]


def test_lenders_are_never_less_sure_than_the_search() -> None:
    assert lending_for(SearchSettings(), 0.4) == Lending(0.6, 5)  # on by default
    assert lending_for(SearchSettings(query_expansion=False), 0.4) is None
    on = SearchSettings(query_expansion=True, expansion_threshold=0.6, expansion_faces=3)
    assert lending_for(on, 0.4) == Lending(0.6, 3)
    assert lending_for(on, 0.7) == Lending(0.7, 3)  # a stricter search uses its own


# --- whole searches, on both paths -----------------------------------------------------------


class QueryPath:
    """One query path of the search API over the fake db: `passes` are the query vectors
    its per-session passes were given, in order."""

    def __init__(self, name: str, db: FakePhotoDb, monkeypatch: pytest.MonkeyPatch) -> None:
        self.name, self.db, self._matrix_passes = name, db, list[Vector]()
        if name == "matrix":
            monkeypatch.setattr(session_query, "session_matrices", lambda runtime: self)

    async def current(self, session_id: str, model_id: str, version: Any) -> Any:
        """session_matrices' stand-in: the session is held, as of now."""
        matrix = SessionMatrix.build(self.db.session_faces(session_id, model_id), DIM)

        def candidates(query: Vector, *args: Any) -> Any:
            self._matrix_passes.append(query)
            return matrix.candidates(query, *args)

        return SimpleNamespace(candidates=candidates)

    @property
    def passes(self) -> list[Vector]:
        if self.name == "matrix":
            return self._matrix_passes
        return [q["embedding"] for q in self.db.queries]


@pytest.fixture(params=["sql", "matrix"])
def path(
    request: pytest.FixtureRequest, db: FakePhotoDb, monkeypatch: pytest.MonkeyPatch
) -> QueryPath:
    return QueryPath(request.param, db, monkeypatch)


Search = Callable[..., Any]


@pytest.fixture
def search() -> Search:
    """A search of session s1 at threshold 0.4, with these SEARCH_* settings."""

    async def run(**search_settings: Any) -> Any:
        settings = Settings(search=SearchSettings(**search_settings))
        request = SearchRequest("s1", (plain_jpeg(),), threshold=0.4, limit=10)
        return await run_search(fake_runtime(settings=settings), None, request)

    return run


def found(response: Any) -> list[str]:
    return [r.photo_id for r in response.results]


async def test_a_sure_match_lends_and_brings_in_a_photo_the_selfie_missed(
    db: FakePhotoDb, path: QueryPath, search: Search, around: FacesAround
) -> None:
    sure = around.face(0.8, (around.u, 0.6))  # the selfie's person, as the event's camera saw them
    db.add_photo("sure", "s1", [sure])
    db.add_photo(
        "missed", "s1", [around.face(0.35, (around.u, 0.7))]
    )  # below 0.4 for the selfie alone
    db.add_photo("stranger", "s1", [around.face(0.05)])

    plain = await search(query_expansion=False)  # the switch off: one pass
    assert found(plain) == ["sure"] and len(path.passes) == 1
    assert (plain.query_expansion.used, plain.query_expansion.faces) == (False, 0)

    expanded = await search(query_expansion=True)  # on: two passes, the second refined
    assert found(expanded) == ["sure", "missed"]
    assert (expanded.query_expansion.used, expanded.query_expansion.faces) == (True, 1)
    assert len(path.passes) == 1 + 2
    assert np.allclose(path.passes[-1], refined_query(SELFIE, [sure]), atol=1e-6)
    # Each photo keeps the higher of its two similarities (the lender's is now the refined one).
    assert expanded.results[1].similarity == pytest.approx(
        float(refined_query(SELFIE, [sure]) @ db.faces["missed"].faces[0].embedding), abs=1e-4
    )
    assert expanded.results[1].similarity >= 0.4 > 0.35


async def test_a_lookalike_lends_nothing_so_their_other_photos_stay_out(
    db: FakePhotoDb, path: QueryPath, search: Search, around: FacesAround
) -> None:
    """L shows someone else who passes the request's threshold (0.45 >= 0.4) but not the
    strict one (0.6); their other photo L2 matches L's face, not the selfie."""
    lookalike = around.face(0.45, (around.v, 0.85))
    db.add_photo("sure", "s1", [around.face(0.8, (around.u, 0.6))])
    db.add_photo("L", "s1", [lookalike])
    db.add_photo("L2", "s1", [around.face(0.1, (around.v, 0.99))])
    assert float(lookalike @ db.faces["L2"].faces[0].embedding) > 0.85

    expanded = await search(query_expansion=True)
    assert found(expanded) == ["sure", "L"]  # L itself is a match of the selfie's; L2 is not
    assert expanded.query_expansion.faces == 1  # only the sure match lent
    assert expanded.results[1].similarity == pytest.approx(0.45, abs=1e-4)

    # Why the strict threshold matters: were L allowed to lend (a strict threshold at the
    # request's own), the refined query would drift towards L's person and bring in L2.
    loose = await search(query_expansion=True, expansion_threshold=0.4)
    assert loose.query_expansion.faces == 2
    assert "L2" in found(loose)


async def test_no_lender_means_no_second_pass(
    db: FakePhotoDb, path: QueryPath, search: Search, around: FacesAround
) -> None:
    db.add_photo("L", "s1", [around.face(0.45, (around.v, 0.85))])
    db.add_photo("stranger", "s1", [around.face(0.1)])
    response = await search(query_expansion=True)
    assert found(response) == ["L"]
    assert (response.query_expansion.used, response.query_expansion.faces) == (False, 0)
    assert len(path.passes) == 1


async def test_at_most_the_best_expansion_faces_lend(
    db: FakePhotoDb, path: QueryPath, search: Search, around: FacesAround
) -> None:
    best, other = around.face(0.9, (around.u, 0.3)), around.face(0.7, (around.u, 0.5))
    db.add_photo("best", "s1", [best, around.face(0.1)])  # its best face lends, not its other one
    db.add_photo("other", "s1", [other])
    one = await search(query_expansion=True, expansion_faces=1)
    assert one.query_expansion.faces == 1
    assert np.allclose(path.passes[-1], refined_query(SELFIE, [best]), atol=1e-6)
    both = await search(query_expansion=True)
    assert both.query_expansion.faces == 2
    assert np.allclose(path.passes[-1], refined_query(SELFIE, [best, other]), atol=1e-6)
