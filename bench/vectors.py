"""P3 — vector scale: the production per-session query on many sessions and one huge one.

Synthetic, face-like data (each session has identities; each face is its identity plus noise,
so a person's faces are similar and strangers are not), loaded into a private schema of the
configured database with the real migration, queried the way the search API queries them, and
checked against numpy brute force on the same vectors: recall is the share of brute-force
results the query returned (1.0 = exact). Every session is queried with the search SQL
(`libs.common.db.faces.search_session`); the huge one also through the in-memory matrix the
search API keeps for sessions over SEARCH_MATRIX_MIN_FACES (`services/search_api/matrices.py`:
its int8 scan names candidates, the same SQL compares their faces), loaded the way the API
loads it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

from libs.common.db.faces import SEARCH_SQL, search_session
from libs.common.db.migrate import migration_templates, render_sql
from libs.common.settings import Settings
from services.search_api.matrices import load_matrix
from services.search_api.matrix import SessionMatrix

SCHEMA = "facepass_bench"  # written literally in the SQL below: no SQL is built by formatting
MODEL = "bench-synthetic"
DIM = 512
FACES_PER_PHOTO = 4
THRESHOLD = 0.36
LIMIT = 100

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Plan:
    sessions: int
    faces_per_session: int
    big_session_faces: int
    queries: int
    seed: int = 7


def normalise(x: Matrix) -> Matrix:
    return np.asarray(x / np.linalg.norm(x, axis=-1, keepdims=True), np.float32)


def session_vectors(rng: np.random.Generator, faces: int) -> Matrix:
    """Faces of one session: about one identity per 8 faces, noise giving same-person cosine
    similarities around 0.5-0.7 and strangers around 0."""
    identities = normalise(rng.standard_normal((max(1, faces // 8), DIM), dtype=np.float32))
    picks = rng.integers(0, len(identities), size=faces)
    noise = rng.standard_normal((faces, DIM), dtype=np.float32) * np.float32(0.045)
    return normalise(identities[picks] + noise)


async def connect(settings: Settings) -> asyncpg.Connection:
    pg = settings.postgres
    conn = await asyncpg.connect(
        host=pg.host, port=pg.port, user=pg.user,
        password=pg.password.get_secret_value(), database=pg.db,
    )  # fmt: skip
    await register_vector(conn)
    return conn


async def create_schema(conn: asyncpg.Connection) -> None:
    await conn.execute("DROP SCHEMA IF EXISTS facepass_bench CASCADE; CREATE SCHEMA facepass_bench")
    await conn.execute("SET search_path TO facepass_bench, public")
    for _, up, _ in migration_templates():
        await conn.execute(
            render_sql(up, DIM).replace("CREATE EXTENSION IF NOT EXISTS vector;", "")
        )


async def _load_session(conn: asyncpg.Connection, session_id: str, vectors: Matrix) -> None:
    photos = [f"{session_id}-p{i // FACES_PER_PHOTO}" for i in range(len(vectors))]
    await conn.execute("INSERT INTO sessions (session_id) VALUES ($1)", session_id)
    await conn.copy_records_to_table(
        "photos",
        schema_name=SCHEMA,
        columns=["photo_id", "session_id", "status", "object_key"],
        records=[(p, session_id, "indexed", p) for p in dict.fromkeys(photos)],
    )
    await conn.copy_records_to_table(
        "face_embeddings",
        schema_name=SCHEMA,
        columns=[
            "photo_id",
            "face_index",
            "session_id",
            "bbox",
            "det_score",
            "embedding",
            "model_id",
        ],
        records=[
            (p, i % FACES_PER_PHOTO, session_id, [0.0, 0.0, 1.0, 1.0], 0.9, vectors[i], MODEL)
            for i, p in enumerate(photos)
        ],
    )


def brute_force(vectors: Matrix, query: Matrix, threshold: float, limit: int) -> list[str]:
    """Photo ids a perfect search returns: best face per photo ≥ threshold, best first."""
    sims = vectors @ query
    best: dict[int, float] = {}
    for index in np.flatnonzero(sims >= threshold):
        photo = int(index) // FACES_PER_PHOTO
        best[photo] = max(best.get(photo, -2.0), float(sims[index]))
    ranked = sorted(best.items(), key=lambda item: -item[1])[:limit]
    return [str(photo) for photo, _ in ranked]


def percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values) * 1000
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "max_ms": round(float(arr.max()), 2),
    }


Query = Callable[[str, Matrix], Awaitable[list[str]]]


def _sql_query(conn: asyncpg.Connection) -> Query:
    """The per-session SQL of the search API (sessions under SEARCH_MATRIX_MIN_FACES)."""

    async def query(session_id: str, embedding: Matrix) -> list[str]:
        matches = await search_session(
            conn, session_id=session_id, model_id=MODEL, embedding=embedding,
            threshold=THRESHOLD, limit=LIMIT,
        )  # fmt: skip
        return [m.photo_id for m in matches]

    return query


def _matrix_query(conn: asyncpg.Connection, matrix: SessionMatrix) -> Query:
    """The search API's in-memory path for huge sessions: the int8 scan names the candidate
    photos, the exact SQL compares their faces only."""

    async def query(session_id: str, embedding: Matrix) -> list[str]:
        candidates = matrix.candidates(embedding, THRESHOLD, LIMIT)
        matches = await search_session(
            conn, session_id=session_id, model_id=MODEL, embedding=embedding,
            threshold=THRESHOLD, limit=LIMIT, photo_ids=candidates,
        )  # fmt: skip
        return [m.photo_id for m in matches]

    return query


async def _measure(
    query: Query, rng: np.random.Generator, sessions: dict[str, Matrix], queries: int
) -> dict[str, Any]:
    timings: list[float] = []
    found = expected = 0
    names = list(sessions)
    for q in range(queries):
        session_id = names[q % len(names)]
        vectors = sessions[session_id]
        # A selfie of someone present: one of their faces plus fresh noise.
        selfie = normalise(
            vectors[rng.integers(len(vectors))]
            + rng.standard_normal(DIM, dtype=np.float32) * np.float32(0.045)
        )
        start = time.perf_counter()
        photo_ids = await query(session_id, selfie)
        timings.append(time.perf_counter() - start)
        truth = [f"{session_id}-p{p}" for p in brute_force(vectors, selfie, THRESHOLD, LIMIT)]
        expected += len(truth)
        found += len(set(truth) & set(photo_ids))
    return {
        "queries": queries,
        **percentiles(timings),
        "recall": round(found / expected, 6) if expected else None,
        "results_per_query": round(expected / queries, 1),
    }


async def _load_matrix(conn: asyncpg.Connection, session_id: str) -> tuple[SessionMatrix, float]:
    """The session's matrix as the search API loads it, and the seconds that took."""
    start = time.perf_counter()
    matrix = await load_matrix(conn, session_id, MODEL, DIM, _inline)
    assert matrix is not None
    return matrix, time.perf_counter() - start


async def _inline(fn: Callable[..., Any], *args: Any) -> Any:
    """run_cpu in the caller's thread (the bench queries one at a time)."""
    return fn(*args)


async def run(settings: Settings, plan: Plan, progress: Callable[[str], None]) -> dict[str, Any]:
    rng = np.random.default_rng(plan.seed)
    conn = await connect(settings)
    try:
        await create_schema(conn)
        start = time.perf_counter()
        small: dict[str, Matrix] = {}
        for i in range(plan.sessions):
            session_id = f"bench-s{i:04d}"
            small[session_id] = session_vectors(rng, plan.faces_per_session)
            await _load_session(conn, session_id, small[session_id])
            if i % 100 == 0:
                progress(f"loaded {i}/{plan.sessions} sessions")
        big = {"bench-big": session_vectors(rng, plan.big_session_faces)}
        await _load_session(conn, "bench-big", big["bench-big"])
        await conn.execute("ANALYZE face_embeddings")
        load_s = time.perf_counter() - start
        total = plan.sessions * plan.faces_per_session + plan.big_session_faces
        progress(f"loaded {total} faces in {load_s:.0f} s; querying")
        # Warm the cache the way a running service is warm, then measure.
        sql = _sql_query(conn)
        await _measure(sql, rng, small, min(20, plan.queries))
        await _measure(sql, rng, big, 3)
        result_small = await _measure(sql, rng, small, plan.queries)
        result_big = await _measure(sql, rng, big, plan.queries)
        matrix, matrix_load_s = await _load_matrix(conn, "bench-big")
        in_memory = _matrix_query(conn, matrix)
        await _measure(in_memory, rng, big, 3)
        result_big_memory = await _measure(in_memory, rng, big, plan.queries)
        query = big["bench-big"][0]
        plan_big = await conn.fetch(
            "EXPLAIN (COSTS OFF) " + SEARCH_SQL, query, "bench-big", MODEL, 1 - THRESHOLD, LIMIT
        )
        plan_small = await conn.fetch(
            "EXPLAIN (COSTS OFF) " + SEARCH_SQL, query, "bench-s0001", MODEL, 1 - THRESHOLD, LIMIT
        )
        return {
            "plan": plan.__dict__,
            "total_faces": total,
            "load_seconds": round(load_s, 1),
            "small_sessions": result_small,
            "big_session": result_big,
            "big_session_memory": {
                **result_big_memory,
                "load_seconds": round(matrix_load_s, 2),
                "megabytes": round(matrix.nbytes / 1e6, 1),
            },
            "query_plan_small_session": [scan_line(r[0]) for r in plan_small if "Scan" in r[0]],
            "query_plan_big_session": [scan_line(r[0]) for r in plan_big if "Scan" in r[0]],
        }
    finally:
        await conn.execute("DROP SCHEMA IF EXISTS facepass_bench CASCADE")
        await conn.close()


def scan_line(line: str) -> str:
    return line.strip().split("(")[0].strip()[:120]
