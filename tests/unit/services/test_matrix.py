"""The in-memory session matrix without servers: its int8 scan's error bound holds, its
candidates hold every photo the exact query returns (so the exact query over them answers what
float32 brute force answers), and a matrix kept current by changes names the same candidates
as one built from the changed session."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from pgvector import Vector

from libs.common.db.faces import FaceChanges, SessionFaces, SessionVersion
from services.search_api.matrix import SessionMatrix
from services.search_api.quantized import quantize, reaching
from tests.support.vectors import DIM, FacesAround, brute_force, event_vectors, normalise, queries

VERSION = SessionVersion(datetime.now(UTC), 7, datetime.now(UTC))


def _spiky(rng: np.random.Generator, count: int) -> np.ndarray:
    """Vectors whose length sits in a few components: int8 codes fit them worst."""
    vectors = rng.normal(size=(count, DIM)) * 0.01
    vectors[:, :3] += rng.normal(size=(count, 3))
    return normalise(vectors)


@pytest.mark.parametrize("kind", ["event", "gaussian", "spiky"])
def test_every_scan_score_is_within_its_bound_of_the_float32_similarity(kind: str) -> None:
    rng = np.random.default_rng(11)
    vectors = {
        "event": lambda: event_vectors(rng, 3000),
        "gaussian": lambda: normalise(rng.normal(size=(3000, DIM))),
        "spiky": lambda: _spiky(rng, 3000),
    }[kind]()
    rows = quantize(vectors)
    for query in [*queries(rng, vectors, 6), _spiky(rng, 1)[0]]:
        found = reaching(rows, len(vectors), query, -2.0)  # every row
        assert (found.index == np.arange(len(vectors))).all()
        exact = vectors.astype(np.float64) @ query.astype(np.float64)
        slack = found.bound - np.abs(found.approx - exact)
        assert (slack >= 0).all()
        # At a real threshold, exactly the rows whose bound lets them reach it.
        above = reaching(rows, len(vectors), query, 0.3)
        expected = np.flatnonzero(found.approx + found.bound >= 0.3)
        np.testing.assert_array_equal(above.index, expected)
        assert set(np.flatnonzero(exact >= 0.3)) <= set(above.index.tolist())
    if kind != "spiky":  # ... and tight enough to be useful on face-like vectors
        tight = reaching(rows, len(vectors), queries(rng, vectors, 1)[0], -2.0)
        assert tight.bound.max() < 0.03


def test_the_int8_dot_products_are_summed_exactly() -> None:
    """The scan's kernel (SimSIMD, VNNI where there is one) against numpy's int64 sums, at the
    codes' extremes."""
    rng = np.random.default_rng(12)
    vectors = normalise(rng.normal(size=(500, DIM)))
    rows = quantize(vectors)
    rows.codes[0] = 127
    rows.codes[1] = -127
    query = vectors[2]
    found = reaching(rows, 500, query, -2.0)
    q = quantize(query[None])
    dots = rows.codes.astype(np.int64) @ q.codes[0].astype(np.int64)
    expected = dots * (float(q.scales[0]) * rows.scales.astype(np.float64))
    np.testing.assert_array_equal(found.approx, expected)


def _faces(photo_ids: list[str], vectors: np.ndarray, seq: int = 7) -> SessionFaces:
    version = SessionVersion(VERSION.changed_at, seq, VERSION.created_at)
    return SessionFaces(version, photo_ids, [Vector(v) for v in vectors])


def _exact_over(
    candidates: list[str], vectors: np.ndarray, photo_of: list[str], query: np.ndarray,
    threshold: float, limit: int,
) -> list[tuple[str, float]]:  # fmt: skip
    """What the exact SQL query answers when it compares the candidates' faces only."""
    keep = [i for i, p in enumerate(photo_of) if p in set(candidates)]
    return brute_force(vectors[keep], [photo_of[i] for i in keep], query, threshold, limit)


def _same(got: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    """Same photos in the same order, same similarities (BLAS may round the last bit apart)."""
    assert [p for p, _ in got] == [p for p, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-6)


CASES = ((0.3, 1000), (0.1, 7), (0.5, 50), (-1.0, 1000), (0.3, 1))


def test_the_candidates_hold_every_match_so_the_exact_query_over_them_is_brute_force() -> None:
    rng = np.random.default_rng(3)
    vectors = event_vectors(rng, 2000)
    photo_of = [f"p{i // 4:03d}" for i in range(2000)]
    matrix = SessionMatrix.build(_faces(photo_of, vectors), DIM)
    checked = pruned = 0
    for query in queries(rng, vectors, 10):
        for threshold, limit in CASES:
            expected = brute_force(vectors, photo_of, query, threshold, limit)
            candidates = matrix.candidates(query, threshold, limit)
            assert {p for p, _ in expected} <= set(candidates)
            _same(_exact_over(candidates, vectors, photo_of, query, threshold, limit), expected)
            checked += len(expected)
            matching = len(brute_force(vectors, photo_of, query, threshold, 10_000))
            pruned += matching > len(candidates)
    assert checked > 1000
    assert pruned > 0  # the limit did prune: photos surely outranked were left out


def test_faces_at_the_threshold_are_candidates_however_close() -> None:
    """Faces whose similarity is the threshold, a hair above it and a hair below: the first two
    are matches and must be candidates (the third may be)."""
    rng = np.random.default_rng(4)
    around = FacesAround(rng.normal(size=DIM).astype(np.float32), axes=64)
    threshold = 0.36
    near = [around.face(threshold + delta) for delta in (0.0, 1e-6, 1e-3, -1e-6)]
    others = normalise(rng.normal(size=(400, DIM)))
    vectors = np.concatenate([np.stack(near), others]).astype(np.float32)
    photo_of = ["at", "just-above", "above", "just-below"] + [f"o{i}" for i in range(400)]
    matrix = SessionMatrix.build(_faces(photo_of, vectors), DIM)
    candidates = matrix.candidates(around.query, threshold, 100)
    exact = vectors @ around.query
    assert {"at", "just-above", "above"} <= set(candidates)
    assert set(candidates) >= {p for p, s in zip(photo_of, exact, strict=True) if s >= threshold}
    assert len(candidates) < 20  # strangers (similarity ~0) are not candidates


def test_a_matrix_kept_current_names_what_one_built_from_the_changed_session_names() -> None:
    """Changes (photos dropped, re-indexed with other faces, added) applied to a held matrix,
    several times (its buffers grow), give the exact answers of a matrix built from scratch."""
    rng = np.random.default_rng(8)
    current = {f"p{i:02d}": event_vectors(rng, 3) for i in range(40)}
    matrix = SessionMatrix.build(
        _faces(
            [p for p, v in current.items() for _ in v], np.concatenate(list(current.values())), 1
        ),
        DIM,
    )
    older = matrix
    for seq in range(2, 8):
        changed = sorted({f"p{rng.integers(40):02d}" for _ in range(3)} | {f"new{seq}"})
        added = {p: event_vectors(rng, int(rng.integers(0, 3))) for p in changed}
        ids = [p for p, v in added.items() for _ in v]
        new_faces = _faces(ids, np.concatenate(list(added.values())), seq)
        matrix = matrix.updated(FaceChanges(seq - 1, changed, new_faces))
        current.update(added)
        vectors = np.concatenate([v for v in current.values() if len(v)])
        photo_of = [p for p, v in current.items() for _ in v]
        assert matrix.version.change_seq == seq and matrix.faces == len(photo_of)
        rebuilt = SessionMatrix.build(_faces(photo_of, vectors, seq), DIM)
        for query in queries(rng, vectors, 4):
            for threshold, limit in ((0.3, 15), (-1.0, 1000)):
                expected = brute_force(vectors, photo_of, query, threshold, limit)
                for held in (matrix, rebuilt):
                    candidates = held.candidates(query, threshold, limit)
                    got = _exact_over(candidates, vectors, photo_of, query, threshold, limit)
                    _same(got, expected)
    # An older generation still answers as of its own version (a search may be reading it).
    assert older.faces == 120 and older.version.change_seq == 1
    assert set(older.candidates(query, -1.0, 1000)) == {f"p{i:02d}" for i in range(40)}


def test_an_empty_matrix_names_no_candidates() -> None:
    matrix = SessionMatrix.empty(VERSION, DIM)
    assert matrix.candidates(np.ones(DIM, np.float32), -1.0, 10) == []
    assert matrix.faces == 0 and matrix.nbytes == 0
