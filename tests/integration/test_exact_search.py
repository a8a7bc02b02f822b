"""The per-session query returns exactly what brute force in numpy returns, on random data."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from libs.common.db.faces import search_session
from libs.common.db.pool import create_pool
from libs.common.settings import Settings

DIM = 512
MODEL = "exactness-test-model"


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _brute_force(
    vectors: np.ndarray, photo_of: list[str], query: np.ndarray, threshold: float, limit: int
) -> list[tuple[str, float]]:
    similarity = vectors @ query
    best: dict[str, float] = {}
    for photo, sim in zip(photo_of, similarity, strict=True):
        if sim >= threshold and sim > best.get(photo, -2.0):
            best[photo] = float(sim)
    return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:limit]


async def test_session_search_matches_numpy_brute_force(stack: Settings) -> None:
    rng = np.random.default_rng(20261128)
    pool = await create_pool(stack.postgres)
    tag = uuid.uuid4().hex[:8]
    sessions = [f"exact-{tag}-{i}" for i in range(3)]
    data: dict[str, tuple[np.ndarray, list[str]]] = {}
    try:
        async with pool.acquire() as conn, conn.transaction():
            for s_index, session in enumerate(sessions):
                faces = 150 * (s_index + 1)
                # A few identities repeated across photos, as at an event, plus noise.
                identities = _normalise(rng.normal(size=(20, DIM)))
                picks = rng.integers(0, 20, size=faces)
                vectors = _normalise(
                    identities[picks] + rng.normal(scale=0.6, size=(faces, DIM)) / np.sqrt(DIM) * 8
                )
                photo_of = [f"{session}-p{i // 4}" for i in range(faces)]
                data[session] = (vectors, photo_of)
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
                        (photo, i % 4, session, [0.0, 0.0, 1.0, 1.0], vectors[i], MODEL)
                        for i, photo in enumerate(photo_of)
                    ],
                )
        checked = 0
        for session, (vectors, photo_of) in data.items():
            for q in range(6):
                # Half the queries near a face of the session, half anywhere.
                base = vectors[rng.integers(len(vectors))] if q % 2 == 0 else rng.normal(size=DIM)
                query = _normalise(base + rng.normal(scale=0.02, size=DIM))
                for threshold, limit in ((0.3, 1000), (0.1, 7), (0.5, 50), (-1.0, 1000)):
                    expected = _brute_force(vectors, photo_of, query, threshold, limit)
                    async with pool.acquire() as conn:
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
        async with pool.acquire() as conn:
            other = await search_session(
                conn,
                session_id=sessions[0],
                model_id="another-pack",
                embedding=data[sessions[0]][0][0],
                threshold=-1.0,
                limit=10,
            )
        assert other == []
    finally:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM sessions WHERE session_id = ANY($1)", sessions)
        await pool.close()
