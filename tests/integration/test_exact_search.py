"""The per-session query returns exactly what brute force in numpy returns, on random data:
the SQL scan, and the same query over the candidates of the in-memory matrix the search API
keeps for huge sessions; with query expansion's lending, both bring the same lenders'
embeddings."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import pytest

from libs.common.db import photos
from libs.common.db.faces import Lending, PhotoMatch, search_session, session_version
from libs.common.db.photos import touch_session
from libs.common.db.pool import create_pool
from libs.common.events import ObjectRef, PhotoUploaded
from libs.common.face.results import Face, PhotoFaces
from libs.common.metrics import SESSION_MATRIX_LOADS
from libs.common.settings import SearchSettings, Settings
from services.search_api.matrices import SessionMatrices, load_matrix
from services.search_api.matrix import SessionMatrix
from tests.support.vectors import DIM, brute_force, event_vectors, queries

MODEL = "exactness-test-model"
#: (threshold, limit) pairs: the usual, a tight limit, a high bar, and everything.
CASES = ((0.3, 1000), (0.1, 7), (0.5, 50), (-1.0, 1000))


@dataclass
class Indexed:
    pool: asyncpg.Pool
    sessions: dict[str, tuple[np.ndarray, list[str]]]  # session -> (vectors, photo of each)


async def _insert_session(
    pool: asyncpg.Pool, rng: np.random.Generator, session: str, faces: int
) -> tuple[np.ndarray, list[str]]:
    """A session of `faces` random faces, 4 per photo (face i's box starts at x = i)."""
    vectors = event_vectors(rng, faces)
    photo_of = [f"{session}-p{i // 4}" for i in range(faces)]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO sessions (session_id) VALUES ($1)", session)
        await conn.executemany(
            "INSERT INTO photos (photo_id, session_id, status, object_key) "
            "VALUES ($1, $2, 'indexed', $1) ON CONFLICT DO NOTHING",
            [(p, session) for p in dict.fromkeys(photo_of)],
        )
        await conn.executemany(
            "INSERT INTO face_embeddings (photo_id, face_index, session_id, bbox, "
            "det_score, embedding, model_id) VALUES ($1, $2, $3, $4, 0.9, $5, $6)",
            [
                (photo, i % 4, session, [float(i), 0.0, 1.0, 1.0], vectors[i], MODEL)
                for i, photo in enumerate(photo_of)
            ],
        )
    return vectors, photo_of


async def _from_memory(
    pool: asyncpg.Pool, session: str, matrix: SessionMatrix, query: np.ndarray,
    threshold: float, limit: int, lending: Lending | None = None,
) -> list[PhotoMatch]:  # fmt: skip
    """What the in-memory path answers: the exact query over the matrix's candidates."""
    candidates = matrix.candidates(query, threshold, limit)
    async with pool.acquire() as conn:
        return await search_session(
            conn, session_id=session, model_id=MODEL, embedding=query, threshold=threshold,
            limit=limit, lending=lending, photo_ids=candidates,
        )  # fmt: skip


@pytest.fixture(scope="module")
async def indexed(stack: Settings) -> AsyncIterator[Indexed]:
    """Three sessions of 150, 300 and 450 random faces, 4 per photo."""
    rng = np.random.default_rng(20261128)
    pool = await create_pool(stack.postgres)
    tag = uuid.uuid4().hex[:8]
    data: dict[str, tuple[np.ndarray, list[str]]] = {}
    try:
        for s_index in range(3):
            session = f"exact-{tag}-{s_index}"
            data[session] = await _insert_session(pool, rng, session, 150 * (s_index + 1))
        yield Indexed(pool, data)
    finally:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM sessions WHERE session_id = ANY($1)", list(data))
        await pool.close()


async def test_session_search_matches_numpy_brute_force(indexed: Indexed) -> None:
    rng = np.random.default_rng(1)
    checked = 0
    for session, (vectors, photo_of) in indexed.sessions.items():
        for query in queries(rng, vectors, 6):
            for threshold, limit in CASES:
                expected = brute_force(vectors, photo_of, query, threshold, limit)
                async with indexed.pool.acquire() as conn:
                    got = await search_session(
                        conn,
                        session_id=session,
                        model_id=MODEL,
                        embedding=query,
                        threshold=threshold,
                        limit=limit,
                    )
                assert [m.photo_id for m in got] == [p for p, _ in expected]
                assert [m.similarity for m in got] == pytest.approx(
                    [s for _, s in expected], abs=1e-5
                )
                checked += len(expected)
    assert checked > 500  # the comparison covered many matches, not empty lists
    # Faces of another model pack are never compared.
    session = next(iter(indexed.sessions))
    async with indexed.pool.acquire() as conn:
        other = await search_session(
            conn,
            session_id=session,
            model_id="another-pack",
            embedding=indexed.sessions[session][0][0],
            threshold=-1.0,
            limit=10,
        )
    assert other == []


async def _load(pool: asyncpg.Pool, session: str, model: str = MODEL) -> SessionMatrix | None:
    async with pool.acquire() as conn:
        return await load_matrix(conn, session, model, DIM, _inline, chunk_rows=64)


async def test_the_in_memory_matrix_answers_like_brute_force(indexed: Indexed) -> None:
    """Loaded in chunks, its candidates hold every match: the exact query over them answers
    what float32 brute force answers."""
    rng = np.random.default_rng(2)
    checked = 0
    for session, (vectors, photo_of) in indexed.sessions.items():
        matrix = await _load(indexed.pool, session)
        async with indexed.pool.acquire() as conn:
            version = await session_version(conn, session)
        assert matrix is not None and matrix.version == version
        assert matrix.faces == len(photo_of)
        assert sorted(matrix.photos) == sorted(set(photo_of))
        for query in queries(rng, vectors, 6):
            for threshold, limit in CASES:
                expected = brute_force(vectors, photo_of, query, threshold, limit)
                got = await _from_memory(indexed.pool, session, matrix, query, threshold, limit)
                assert [m.photo_id for m in got] == [p for p, _ in expected]
                assert [m.similarity for m in got] == pytest.approx(
                    [s for _, s in expected], abs=1e-5
                )
                for match in got:  # the best face's own box (its x1 is the face's number)
                    face = int(match.bbox[0])
                    assert photo_of[face] == match.photo_id
                    assert float(vectors[face] @ query) == pytest.approx(match.similarity, abs=1e-5)
                checked += len(expected)
    assert checked > 500
    assert await _load(indexed.pool, "no-such-session") is None
    empty = await _load(indexed.pool, session, "another-pack")
    assert empty is not None and empty.faces == 0


async def test_both_paths_lend_the_best_sure_matches_faces(indexed: Indexed) -> None:
    """The first `faces` matches at >= the strict threshold carry their best face's embedding;
    no other match does. (0.0, 3): the rank cap binds; (0.5, 3): the threshold does."""
    rng = np.random.default_rng(4)
    lent = 0
    for session, (vectors, photo_of) in indexed.sessions.items():
        matrix = await _load(indexed.pool, session)
        assert matrix is not None
        for query in queries(rng, vectors, 4):
            for lending in (Lending(0.0, 3), Lending(0.5, 3)):
                expected = brute_force(vectors, photo_of, query, -1.0, 50)
                lenders = [p for p, sim in expected if sim >= lending.threshold][: lending.faces]
                async with indexed.pool.acquire() as conn:
                    sql = await search_session(
                        conn, session_id=session, model_id=MODEL, embedding=query,
                        threshold=-1.0, limit=50, lending=lending,
                    )  # fmt: skip
                memory = await _from_memory(indexed.pool, session, matrix, query, -1.0, 50, lending)
                for got in (sql, memory):
                    assert [m.photo_id for m in got if m.embedding is not None] == lenders
                    for match in got:
                        if match.embedding is not None:
                            best = max(
                                (i for i, p in enumerate(photo_of) if p == match.photo_id),
                                key=lambda i: float(vectors[i] @ query),
                            )
                            np.testing.assert_allclose(match.embedding, vectors[best], atol=1e-6)
                lent += len(lenders)
    assert lent > 30


async def _inline(fn: Callable[..., Any], *args: Any) -> Any:
    """run_cpu in the caller's thread."""
    return fn(*args)


async def _settle(matrices: SessionMatrices) -> None:
    """Let the background loader finish what is queued."""
    for _ in range(200):
        if matrices.idle:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the loader did not finish")


@contextlib.asynccontextmanager
async def _running(indexed: Indexed, settings: SearchSettings) -> AsyncIterator[SessionMatrices]:
    """Session matrices with their background loader running."""
    matrices = SessionMatrices(settings, DIM, lambda: indexed.pool, _inline)
    loader = asyncio.create_task(matrices.run())
    try:
        yield matrices
    finally:
        loader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loader


async def _versions(indexed: Indexed, *sessions: str) -> dict[str, Any]:
    async with indexed.pool.acquire() as conn:
        return {s: await session_version(conn, s) for s in sessions}


async def test_matrices_serve_only_the_current_version_of_big_sessions(indexed: Indexed) -> None:
    small, middle, big = indexed.sessions
    settings = SearchSettings(matrix_min_faces=300, matrix_memory_mb=64, matrix_refresh_s=0.01)
    async with _running(indexed, settings) as matrices:
        versions = await _versions(indexed, *indexed.sessions)
        # First sight: nothing in memory yet (the caller uses SQL); loads are queued.
        for session in indexed.sessions:
            assert await matrices.current(session, MODEL, versions[session]) is None
        await _settle(matrices)
        # Sessions of 300 and 450 faces are held; the one of 150 is not, and is not reloaded.
        assert await matrices.current(small, MODEL, versions[small]) is None
        assert matrices.idle
        for session in (middle, big):
            matrix = await matrices.current(session, MODEL, versions[session])
            assert matrix is not None
            assert matrix.faces == len(indexed.sessions[session][1])
        # Once the session changes (an index or an erasure takes a change number), the
        # matrix first applies what changed (here: nothing of its faces) and answers at once,
        # as of the new version, without a reload.
        async with indexed.pool.acquire() as conn:
            await touch_session(conn, big)
        moved = (await _versions(indexed, big))[big]
        assert moved is not None and moved.change_seq > versions[big].change_seq
        caught_up = await matrices.current(big, MODEL, moved)
        assert caught_up is not None and caught_up.version == moved
        assert matrices.idle  # no load was queued


async def test_matrices_keep_within_their_memory_budget(indexed: Indexed) -> None:
    # 1 MiB holds a 1,100-face session (524 B a face) or a 1,300-face one, not both.
    rng = np.random.default_rng(9)
    tag = uuid.uuid4().hex[:8]
    middle, big = f"budget-{tag}-1100", f"budget-{tag}-1300"
    await _insert_session(indexed.pool, rng, middle, 1100)
    await _insert_session(indexed.pool, rng, big, 1300)
    settings = SearchSettings(matrix_min_faces=1, matrix_memory_mb=1, matrix_refresh_s=0.01)
    try:
        async with _running(indexed, settings) as matrices:
            versions = await _versions(indexed, middle, big)
            assert await matrices.current(middle, MODEL, versions[middle]) is None
            await _settle(matrices)
            assert await matrices.current(middle, MODEL, versions[middle]) is not None
            await asyncio.sleep(0.05)  # past the refresh interval
            assert await matrices.current(big, MODEL, versions[big]) is None
            await _settle(matrices)
            # The newer one stays; the least recently used one made room.
            assert await matrices.current(big, MODEL, versions[big]) is not None
            assert matrices.held_bytes <= matrices.budget
            assert matrices.held_sessions == [(big, MODEL)]
    finally:
        async with indexed.pool.acquire() as conn:
            await conn.execute("DELETE FROM sessions WHERE session_id = ANY($1)", [middle, big])


def _uploaded(session: str, photo: str) -> PhotoUploaded:
    return PhotoUploaded(
        photo_id=photo, session_id=session, object=ObjectRef(bucket="facepass", key=photo)
    )


def _faces(vectors: np.ndarray) -> PhotoFaces:
    faces = tuple(
        Face((float(i), 0.0, 1.0, 1.0), ((0.0, 0.0),) * 5, 0.9, v) for i, v in enumerate(vectors)
    )
    return PhotoFaces(faces, (), 100, 100, {})


async def test_a_held_matrix_applies_every_change_and_stays_exact(stack: Settings) -> None:
    """Photos indexed, indexed again with other faces, failed and erased while a session is
    held: every search answers from memory exactly what brute force over the session's faces
    of that moment answers, and the session is never loaded again."""
    rng = np.random.default_rng(5)
    session = f"fresh-{uuid.uuid4().hex[:8]}"
    pool = await create_pool(stack.postgres)
    current: dict[str, np.ndarray] = {}  # photo -> its faces now

    async def index(photo: str, count: int) -> None:
        current[photo] = event_vectors(rng, count)
        await photos.record_indexed(pool, _uploaded(session, photo), _faces(current[photo]), MODEL)

    try:
        for i in range(60):
            await index(f"{session}-p{i}", 4)
        settings = SearchSettings(matrix_min_faces=100, matrix_memory_mb=64, matrix_refresh_s=60)
        async with _running(Indexed(pool, {}), settings) as matrices:
            version = (await _versions(Indexed(pool, {}), session))[session]
            assert await matrices.current(session, MODEL, version) is None
            await _settle(matrices)

            async def check(step: str) -> None:
                stands = (await _versions(Indexed(pool, {}), session))[session]
                matrix = await matrices.current(session, MODEL, stands)
                assert matrix is not None and matrix.version == stands, step
                vectors = np.concatenate(list(current.values()))
                photo_of = [p for p, v in current.items() for _ in range(len(v))]
                for query in queries(rng, vectors, 3):
                    expected = brute_force(vectors, photo_of, query, 0.3, 1000)
                    got = await _from_memory(pool, session, matrix, query, 0.3, 1000)
                    assert [m.photo_id for m in got] == [p for p, _ in expected], step
                    assert [m.similarity for m in got] == pytest.approx(
                        [s for _, s in expected], abs=1e-5
                    ), step
                assert matrix.faces == len(photo_of), step

            await check("loaded")
            await index(f"{session}-new", 3)
            await check("a photo added")
            await index(f"{session}-p1", 2)  # indexed again: its faces replaced
            await check("a photo re-indexed")
            await photos.erase_photo(pool, f"{session}-p2")
            del current[f"{session}-p2"]
            await check("a photo erased")
            failed = _uploaded(session, f"{session}-p3")
            await photos.record_failed(pool, failed, "processing_error: test")
            del current[f"{session}-p3"]
            await check("a photo failed")
            for i in range(10):  # many small changes, one search after each
                await index(f"{session}-burst{i}", 1)
                await check(f"burst {i}")
            assert matrices.idle and SESSION_MATRIX_LOADS.labels("loaded")._value.get() >= 1
    finally:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM sessions WHERE session_id = $1", session)
        await pool.close()


async def test_a_session_erased_and_begun_again_is_never_answered_from_the_old_matrix(
    stack: Settings,
) -> None:
    rng = np.random.default_rng(6)
    session = f"again-{uuid.uuid4().hex[:8]}"
    pool = await create_pool(stack.postgres)
    try:
        for i in range(30):
            event = _uploaded(session, f"{session}-p{i}")
            await photos.record_indexed(pool, event, _faces(event_vectors(rng, 4)), MODEL)
        settings = SearchSettings(matrix_min_faces=50, matrix_memory_mb=64, matrix_refresh_s=60)
        async with _running(Indexed(pool, {}), settings) as matrices:
            first = (await _versions(Indexed(pool, {}), session))[session]
            await matrices.current(session, MODEL, first)
            await _settle(matrices)
            assert await matrices.current(session, MODEL, first) is not None
            await photos.erase_session(pool, session)
            event = _uploaded(session, f"{session}-later")
            await photos.record_indexed(pool, event, _faces(event_vectors(rng, 1)), MODEL)
            again = (await _versions(Indexed(pool, {}), session))[session]
            assert again.created_at != first.created_at
            assert await matrices.current(session, MODEL, again) is None  # SQL answers it
    finally:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM sessions WHERE session_id = $1", session)
        await pool.close()
