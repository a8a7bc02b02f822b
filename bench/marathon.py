"""P3m — a marathon: one 1M-face session searched while photos are indexed into it.

Synthetic face-like vectors with planted identities (vectors.session_vectors: ~8 faces per
person, 4 faces per photo) are loaded into a private schema of the configured PostgreSQL by COPY,
with the real migrations. Then the search API's own parts run on it: its session matrices
(services/search_api/matrices.py, background loader included) and its per-session query
(session_query.session_matches, with the shipped SEARCH_* settings), while a writer indexes
photos into the session at a steady rate with the embedder's own write
(libs.common.db.photos.record_indexed). Measured:

- query time: one client searching a planted person back to back, while the writer writes;
- exactness: every answer against float32 brute force over the session as it stood when the
  query began (the writer's faces are strangers to every planted person, so they never match);
- searchable after: from a photo's commit (the embedder publishes its indexed event after it)
  to the first search that returns it, searched for by its own face;
- memory: the anonymous resident memory the process gains by loading the matrix, and its peak
  (the brute-force copy lives in a file mapping, so it is not counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.vectors import (
    DIM,
    FACES_PER_PHOTO,
    MODEL,
    SCHEMA,
    connect,
    create_schema,
    normalise,
    percentiles,
    scan_line,
)
from libs.common.db import faces as faces_db
from libs.common.db import photos
from libs.common.db.faces import CANDIDATES_SEARCH_SQL
from libs.common.db.pool import create_pool
from libs.common.events import ObjectRef, PhotoUploaded
from libs.common.face.engine import FaceEngine
from libs.common.face.results import Face, PhotoFaces
from libs.common.runtime import Runtime
from libs.common.settings import Settings
from services.search_api.matrices import session_matrices, start_session_matrices
from services.search_api.session_query import SessionQuery, session_matches

SESSION = "marathon"
THRESHOLD = 0.36
LIMIT = 200
NOISE = 0.045  # as vectors.session_vectors: a person's faces at cosine ~0.5-0.7


@dataclass(frozen=True)
class Plan:
    faces: int = 1_000_000
    photos_per_s: float = 5.0
    seconds: float = 60.0
    seed: int = 17


def _rss_anon_mb() -> float:
    """This process's anonymous resident memory (file mappings, like the brute-force copy,
    are not counted)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakMemory:
    """The highest RssAnon seen while it runs, sampled every 20 ms on a thread."""

    def __init__(self) -> None:
        self.peak = _rss_anon_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_anon_mb())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Session:
    """The session's faces as float32, in a file mapping: the brute-force truth."""

    def __init__(self, directory: Path, plan: Plan, rng: np.random.Generator) -> None:
        self.vectors = np.lib.format.open_memmap(
            directory / "faces.npy", mode="w+", dtype=np.float32, shape=(plan.faces, DIM)
        )
        people = plan.faces // 8
        identities = normalise(rng.standard_normal((people, DIM), dtype=np.float32))
        picks = rng.integers(0, people, size=plan.faces)
        for start in range(0, plan.faces, 50_000):
            end = min(start + 50_000, plan.faces)
            noise = rng.standard_normal((end - start, DIM), dtype=np.float32) * np.float32(NOISE)
            self.vectors[start:end] = normalise(identities[picks[start:end]] + noise)
        #: The people searched for: planted identities that have faces in the session.
        self.people = identities[rng.choice(np.unique(picks), size=400, replace=False)]
        self.added: list[np.ndarray] = []  # the writer's faces, in commit order

    @staticmethod
    def photo(face: int) -> str:
        return f"{SESSION}-p{face // FACES_PER_PHOTO}"

    def selfie(self, rng: np.random.Generator) -> np.ndarray:
        person = self.people[rng.integers(len(self.people))]
        noise = rng.standard_normal(DIM, dtype=np.float32) * np.float32(NOISE)
        return normalise(person + noise)


async def _copy_session(conn: Any, session: Session, progress: Callable[[str], None]) -> None:
    """The session, its photos and faces, by COPY in chunks."""
    await conn.execute("INSERT INTO sessions (session_id) VALUES ($1)", SESSION)
    faces = len(session.vectors)
    for start in range(0, faces, 40_000):
        end = min(start + 40_000, faces)
        photo_ids = list(dict.fromkeys(session.photo(i) for i in range(start, end)))
        await conn.copy_records_to_table(
            "photos", schema_name=SCHEMA,
            columns=["photo_id", "session_id", "status", "object_key"],
            records=[(p, SESSION, "indexed", p) for p in photo_ids],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "face_embeddings",
            schema_name=SCHEMA,
            columns=["photo_id", "face_index", "session_id", "bbox", "det_score", "embedding",
                     "model_id"],
            records=[
                (session.photo(i), i % FACES_PER_PHOTO, SESSION, [0.0, 0.0, 1.0, 1.0], 0.9,
                 session.vectors[i], MODEL)
                for i in range(start, end)
            ],
        )  # fmt: skip
        if start % 200_000 == 0:
            progress(f"marathon: {end:,} of {faces:,} faces copied")


def _photo_faces(vectors: np.ndarray) -> PhotoFaces:
    faces = tuple(Face((0.0, 0.0, 1.0, 1.0), ((0.0, 0.0),) * 5, 0.9, v) for v in vectors)
    return PhotoFaces(faces, (), 4000, 3000, {})


@dataclass
class Timeline:
    queries: list[tuple[float, np.ndarray, list[tuple[str, float]]]]  # seconds, selfie, answer
    searchable_s: list[float]


async def _search(runtime: Runtime, embedding: np.ndarray) -> list[tuple[str, float]]:
    """One search of the session, the search API's way."""
    async with runtime.pool().acquire() as conn:
        version = await faces_db.session_version(conn, SESSION)
    assert version is not None
    query = SessionQuery(SESSION, MODEL, version, THRESHOLD, LIMIT, None)
    matches, _ = await session_matches(runtime, query, embedding)
    return [(m.photo_id, m.similarity) for m in matches]


async def _run_while_indexing(
    runtime: Runtime, session: Session, plan: Plan, rng: np.random.Generator
) -> Timeline:
    timeline = Timeline([], [])
    stop = asyncio.Event()
    written: asyncio.Queue[tuple[str, np.ndarray, float]] = asyncio.Queue()

    async def writer() -> None:
        interval, n = 1.0 / plan.photos_per_s, 0
        next_at = time.perf_counter()
        while not stop.is_set():
            photo = f"{SESSION}-new{n}"
            vectors = normalise(rng.standard_normal((FACES_PER_PHOTO, DIM), dtype=np.float32))
            event = PhotoUploaded(
                photo_id=photo, session_id=SESSION, object=ObjectRef(bucket="facepass", key=photo)
            )
            await photos.record_indexed(runtime.pool(), event, _photo_faces(vectors), MODEL)
            session.added.append(vectors)
            written.put_nowait((photo, vectors[0], time.perf_counter()))
            n += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    async def prober() -> None:
        while not stop.is_set():
            photo, face, committed = await written.get()
            while photo not in {p for p, _ in await _search(runtime, face)}:
                pass
            timeline.searchable_s.append(time.perf_counter() - committed)

    async def client() -> None:
        while not stop.is_set():
            selfie = session.selfie(rng)
            start = time.perf_counter()
            found = await _search(runtime, selfie)
            timeline.queries.append((time.perf_counter() - start, selfie, found))

    tasks = [asyncio.create_task(job()) for job in (writer, prober, client)]
    await asyncio.sleep(plan.seconds)
    stop.set()
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return timeline


def _truth(session: Session, timeline: Timeline) -> list[list[tuple[str, float]]]:
    """Each query's float32 brute-force answer over the session as it stood when it began
    (the writer's faces are strangers to every searched person: checked, not assumed)."""
    selfies = np.stack([q[1] for q in timeline.queries])
    hits: list[list[tuple[float, str]]] = [[] for _ in selfies]
    chunk = 100_000  # a multiple of FACES_PER_PHOTO: a photo's faces stay in one chunk
    for start in range(0, len(session.vectors), chunk):
        sims = session.vectors[start : start + chunk] @ selfies.T  # (faces, queries)
        per_photo = sims.reshape(-1, FACES_PER_PHOTO, len(selfies)).max(axis=1)
        for photo, query in zip(*np.nonzero(per_photo >= THRESHOLD), strict=True):
            face = start + int(photo) * FACES_PER_PHOTO
            hits[query].append((float(per_photo[photo, query]), session.photo(face)))
    if session.added:
        stranger = float((np.concatenate(session.added) @ selfies.T).max())
        assert stranger < THRESHOLD - 0.05, "a written face resembles a searched person"
    return [
        [(p, s) for s, p in sorted(found, key=lambda x: (-x[0], x[1]))[:LIMIT]] for found in hits
    ]


ROUNDING = 1e-5  # float32 sums in another order (pgvector's, BLAS's) differ by less


def _within_rounding(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> bool:
    """The same photos, the i-th similarity of each list within ROUNDING of the other's (so the
    order differs at most between near ties); a photo only one list has is within ROUNDING of
    the threshold."""
    boundary = [x for x in (*got, *want) if abs(x[1] - THRESHOLD) < ROUNDING]
    rest_got = [x for x in got if x not in boundary]
    rest_want = [x for x in want if x not in boundary]
    return {p for p, _ in rest_got} == {p for p, _ in rest_want} and all(
        abs(a - b) < ROUNDING for (_, a), (_, b) in zip(rest_got, rest_want, strict=True)
    )


def _exactness(timeline: Timeline, truth: list[list[tuple[str, float]]]) -> dict[str, Any]:
    """Each answer against float32 brute force: the same photos in the same order, or the
    same within rounding; the first few differences, to look at."""
    same = close = expected = found = 0
    differences: list[dict[str, Any]] = []
    for (_, _, got), want in zip(timeline.queries, truth, strict=True):
        identical = [p for p, _ in got] == [p for p, _ in want]
        same += identical
        close += _within_rounding(got, want)
        if not identical and len(differences) < 5:
            differences.append({"found": got, "expected": want})
        expected += len(want)
        found += len({p for p, _ in want} & {p for p, _ in got})
    n = len(truth)
    return {
        "queries": n,
        "same_photos_same_order": same,
        "same_within_rounding": close,
        "exact": int(close == n),
        "recall": round(found / expected, 6) if expected else None,
        "results_per_query": round(expected / n, 1) if n else 0,
        "differences": differences,
    }


async def run(settings: Settings, plan: Plan, progress: Callable[[str], None]) -> dict[str, Any]:
    rng = np.random.default_rng(plan.seed)
    pool = await create_pool(
        settings.postgres, server_settings={"search_path": f"{SCHEMA}, public"}, max_size=6
    )
    # A search process: the face engine (its models are part of its memory), a pool, matrices.
    # The shipped settings, except that a smaller run (a smoke test) is held in memory too.
    search = settings.search.model_copy(
        update={"matrix_min_faces": min(settings.search.matrix_min_faces, plan.faces)}
    )
    settings = settings.model_copy(update={"search": search})
    engine = FaceEngine.from_settings(settings.face)
    engine.load()
    runtime = Runtime(settings, frozenset(), db=pool, engine=engine)
    try:
        with tempfile.TemporaryDirectory(prefix="facepass-marathon-") as tmp:
            session = Session(Path(tmp), plan, rng)
            conn = await connect(settings)
            try:
                await create_schema(conn)
                start = time.perf_counter()
                await _copy_session(conn, session, progress)
                await conn.execute("ANALYZE face_embeddings")
            finally:
                await conn.close()
            copy_s = time.perf_counter() - start
            progress(f"marathon: {plan.faces:,} faces in {copy_s:.0f} s; loading the matrix")
            result = await _measure(runtime, session, plan, rng, progress)
            result["copy_seconds"] = round(copy_s, 1)
            return result
    finally:
        await pool.execute("DROP SCHEMA IF EXISTS facepass_bench CASCADE")
        runtime.close_pools()
        await pool.close()


async def _measure(
    runtime: Runtime, session: Session, plan: Plan, rng: np.random.Generator,
    progress: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    await start_session_matrices(runtime)
    matrices = session_matrices(runtime)
    assert matrices is not None
    loader = asyncio.create_task(matrices.run())
    try:
        before = _rss_anon_mb()
        with PeakMemory() as peak:
            started = time.perf_counter()
            sql_s = time.perf_counter()
            await _search(runtime, session.selfie(rng))  # by SQL; queues the load
            sql_s = time.perf_counter() - sql_s
            while not matrices.idle:  # noqa: ASYNC110 - the loader sets no event to wait on
                await asyncio.sleep(0.05)
            load_s = time.perf_counter() - started
        held = _rss_anon_mb()
        assert matrices.held_sessions, "the matrix did not load"
        for _ in range(5):
            await _search(runtime, session.selfie(rng))  # warm
        progress(f"marathon: matrix in {load_s:.0f} s; searching while indexing")
        timeline = await _run_while_indexing(runtime, session, plan, rng)
        after = _rss_anon_mb()
        plan_lines = await _candidates_plan(runtime, session)
        progress(f"marathon: {len(timeline.queries)} searches; checking them by brute force")
        truth = _truth(session, timeline)
    finally:
        loader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loader
    times = [q[0] for q in timeline.queries]
    return {
        "plan": plan.__dict__,
        "threshold": THRESHOLD,
        "limit": LIMIT,
        "first_search_by_sql_s": round(sql_s, 2),
        "matrix": {
            "load_seconds": round(load_s, 1),
            "megabytes": round(matrices.held_bytes / 1e6, 1),
            "rss_anon_before_mb": round(before, 0),
            "rss_anon_held_mb": round(held, 0),
            "rss_anon_peak_mb": round(peak.peak, 0),
            "rss_anon_end_mb": round(after, 0),
            "process_gb": round(max(peak.peak, after) / 1024, 2),
        },
        "while_indexing": {
            "photos_written": len(session.added),
            "photos_per_s": round(len(session.added) / plan.seconds, 2),
            **percentiles(times),
            **_exactness(timeline, truth),
        },
        "candidates_query_plan": plan_lines,
        "searchable_after": {
            "photos": len(timeline.searchable_s),
            **_seconds(timeline.searchable_s),
        },
    }


async def _candidates_plan(runtime: Runtime, session: Session) -> list[str]:
    """How PostgreSQL runs the exact query over candidates when it plans it once for all
    parameters (as a prepared statement may be): by primary key, not by the session's rows."""
    candidates = [session.photo(i) for i in range(0, 400, FACES_PER_PHOTO)]
    async with runtime.pool().acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        rows = await conn.fetch(
            "EXPLAIN (COSTS OFF) " + CANDIDATES_SEARCH_SQL,
            session.vectors[0], SESSION, MODEL, 1 - THRESHOLD, LIMIT, candidates,
        )  # fmt: skip
    return [scan_line(r[0]) for r in rows if "Scan" in r[0]]


def _seconds(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values or [float("nan")])
    return {
        "p50_s": round(float(np.percentile(arr, 50)), 3),
        "p95_s": round(float(np.percentile(arr, 95)), 3),
        "max_s": round(float(arr.max()), 3),
    }
