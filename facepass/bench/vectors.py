"""P3 — vector scale: the production per-session query on many sessions and one huge one.

Synthetic, face-like data (each session has identities; each face is its identity plus noise,
so a person's faces are similar and strangers are not), loaded into a private schema of the
configured database with the real migration, queried with the real search SQL
(`libs.common.db.faces.search_session`), and checked against numpy brute force on the same
vectors: recall is the share of brute-force results the query returned (1.0 = exact).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

from libs.common.db.faces import SEARCH_SQL, search_session
from libs.common.db.migrate import migration_templates, render_sql
from libs.common.settings import Settings

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


def _normalise(x: Matrix) -> Matrix:
    return np.asarray(x / np.linalg.norm(x, axis=-1, keepdims=True), np.float32)


def session_vectors(rng: np.random.Generator, faces: int) -> Matrix:
    """Faces of one session: about one identity per 8 faces, noise giving same-person cosine
    similarities around 0.5-0.7 and strangers around 0."""
    identities = _normalise(rng.standard_normal((max(1, faces // 8), DIM), dtype=np.float32))
    picks = rng.integers(0, len(identities), size=faces)
    noise = rng.standard_normal((faces, DIM), dtype=np.float32) * np.float32(0.045)
    return _normalise(identities[picks] + noise)


async def _connect(settings: Settings) -> asyncpg.Connection:
    pg = settings.postgres
    conn = await asyncpg.connect(
        host=pg.host, port=pg.port, user=pg.user,
        password=pg.password.get_secret_value(), database=pg.db,
    )  # fmt: skip
    await register_vector(conn)
    return conn


async def _create_schema(conn: asyncpg.Connection) -> None:
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


def _percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values) * 1000
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "max_ms": round(float(arr.max()), 2),
    }


async def _measure(
    conn: asyncpg.Connection,
    rng: np.random.Generator,
    sessions: dict[str, Matrix],
    queries: int,
) -> dict[str, Any]:
    timings: list[float] = []
    found = expected = 0
    names = list(sessions)
    for q in range(queries):
        session_id = names[q % len(names)]
        vectors = sessions[session_id]
        # A selfie of someone present: one of their faces plus fresh noise.
        query = _normalise(
            vectors[rng.integers(len(vectors))]
            + rng.standard_normal(DIM, dtype=np.float32) * np.float32(0.045)
        )
        start = time.perf_counter()
        matches = await search_session(
            conn, session_id=session_id, model_id=MODEL, embedding=query,
            threshold=THRESHOLD, limit=LIMIT,
        )  # fmt: skip
        timings.append(time.perf_counter() - start)
        truth = [f"{session_id}-p{p}" for p in brute_force(vectors, query, THRESHOLD, LIMIT)]
        expected += len(truth)
        found += len(set(truth) & {m.photo_id for m in matches})
    return {
        "queries": queries,
        **_percentiles(timings),
        "recall": round(found / expected, 6) if expected else None,
        "results_per_query": round(expected / queries, 1),
    }


async def run(settings: Settings, plan: Plan, progress: Callable[[str], None]) -> dict[str, Any]:
    rng = np.random.default_rng(plan.seed)
    conn = await _connect(settings)
    try:
        await _create_schema(conn)
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
        await _measure(conn, rng, small, min(20, plan.queries))
        await _measure(conn, rng, big, 3)
        result_small = await _measure(conn, rng, small, plan.queries)
        result_big = await _measure(conn, rng, big, plan.queries)
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
            "query_plan_small_session": [_scan_line(r[0]) for r in plan_small if "Scan" in r[0]],
            "query_plan_big_session": [_scan_line(r[0]) for r in plan_big if "Scan" in r[0]],
        }
    finally:
        await conn.execute("DROP SCHEMA IF EXISTS facepass_bench CASCADE")
        await conn.close()


def _scan_line(line: str) -> str:
    return line.strip().split("(")[0].strip()[:120]
