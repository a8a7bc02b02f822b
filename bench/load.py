"""P2 — search under load, with wrk, on the bench's `all` server (rate limits off).

For each concurrency c: distinct selfies, on a `search-api` server of their own with the result
cache off (SEARCH_CACHE_TTL_S=0), so every request runs the face model however often wrk's
rotation comes round (its searches and cache-hit counters, read before and after, prove it); and
one repeated selfie on the `all` server (warmed first, so every request is a cache hit). A
rotation of 1,500 bodies at ~240 searches/s repeats within a 20 s run, so distinct selfies on a
caching server were mostly cache hits. Beside them, the model-bound limit measured in the same
run: this machine's cores ÷ the median time of the selfie model (decode at the server's
reduction + detect + embed, one thread) on a sample of the same selfies.
Optionally the rate limiter at its default (60/min per client): how many 429s, with Retry-After.

P2 proper: 12 MP phone selfies (the Event-Photo protocol's) at c=10, on the same cache-less
server, wrk rotating a smaller set (enough distinct ones for a whole run would be hundreds of
megabytes of request bodies). Its model-bound limit is measured on the same selfies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import wrk
from bench.client import index_photos, metric_total, search, unique
from bench.harness import Bench, Server
from libs.common.face import FaceEngine, NoFaceError
from libs.common.face.selfie import selfie_from_bytes
from libs.common.settings import FaceSettings

REPO = Path(__file__).resolve().parents[1]
HITS = "facepass_search_cache_requests_total"
SEARCHES = "facepass_searches_total"


def selfie_model_ms(selfies: list[bytes], *, parallel: bool = True) -> dict[str, Any]:
    """Median ms of what the server's CPU does for an uncached selfie, on one thread."""
    settings = FaceSettings(intra_op_threads=1)
    engine = FaceEngine.from_settings(settings)
    engine.load()
    times: list[float] = []
    for i, data in enumerate([selfies[0], *selfies]):
        start = time.perf_counter()
        with contextlib.suppress(NoFaceError):  # timed all the same: the server does it too
            selfie_from_bytes(engine, data, settings)
        if i:  # the first is a warm-up
            times.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    cores = os.cpu_count() or 1
    return {
        "sample": len(times),
        "ms_median": round(median, 1),
        "cores": cores,
        "limit_req_per_s": round(cores * 1000 / median, 1),
        "parallel_loops_req_per_s": parallel_rate(selfies, cores) if parallel else None,
    }


def parallel_rate(selfies: list[bytes], processes: int) -> float:
    """Selfies/s of `processes` plain selfie loops running at once (one thread each): what
    the machine gives the model right now, beside the formula cores ÷ model time."""
    with tempfile.TemporaryDirectory(prefix="selfies-") as tmp:
        for i, data in enumerate(selfies):
            (Path(tmp) / f"{i:05d}.jpg").write_bytes(data)
        loops = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.selfie_loop", tmp],
                cwd=REPO,  # where `-m` finds the bench, which is not installed
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for _ in range(processes)
        ]
        try:
            for loop in loops:
                assert loop.stdout is not None
                loop.stdout.readline()  # "ready": model loaded and warm
            for loop in loops:
                assert loop.stdin is not None
                loop.stdin.write("go\n")
                loop.stdin.flush()
            rates = [float(loop.communicate(timeout=300)[0].strip()) for loop in loops]
        finally:
            for loop in loops:
                if loop.poll() is None:
                    loop.kill()
    return round(sum(rates), 1)


def _drain(server: Server, timeout_s: float = 120) -> float:
    """Wait until the server has answered every request wrk left in flight when it stopped
    (up to c of them, each needing the model), so the next run does not queue behind them.
    Returns the seconds waited."""
    start = time.perf_counter()
    last = -1.0
    while time.perf_counter() - start < timeout_s:
        answered = metric_total(server, SEARCHES)
        if answered == last:
            break
        last = answered
        time.sleep(0.5)
    return round(time.perf_counter() - start, 1)


def _level(server: Server, bodies: wrk.Bodies, connections: int, duration_s: int) -> dict[str, Any]:
    """One wrk run, with the searches the server counted and how many were cache hits."""
    hits = metric_total(server, HITS, result="hit")
    searched = metric_total(server, SEARCHES)
    result = wrk.run(server.base_url, bodies, connections=connections, duration_s=duration_s)
    result["drain_s"] = _drain(server)
    result["cache_hits"] = int(metric_total(server, HITS, result="hit") - hits)
    result["searches"] = int(metric_total(server, SEARCHES) - searched)
    return result


@contextlib.contextmanager
def _cacheless(bench: Bench, session_id: str, warm: bytes) -> Iterator[Server]:
    """A `search-api` server of its own with the result cache off, warmed by one search (the
    model's first run is slower): every request it answers runs the face model."""
    with bench.serve("search-api", SEARCH_CACHE_TTL_S="0", FACE_INTRA_OP_THREADS="1") as server:
        with server.client() as client:
            search(client, session_id, warm)
        yield server


def run(
    bench: Bench,
    server: Server,
    *,
    photos: list[bytes],
    selfies: list[bytes],
    concurrency: tuple[int, ...],
    uncached_s: int,
    cached_s: int,
    rate_limit_check: bool,
    progress: Callable[[str], None],
    parallel_check: bool = True,
    phone_selfies: list[bytes] | None = None,
) -> dict[str, Any]:
    """`selfies` are split evenly between the concurrency levels (distinct runs); the first one
    is also the repeated selfie. `phone_selfies`, when given, are P2's (c=10, `uncached_s`)."""
    session_id = unique("p2")
    progress(f"P2: indexing {len(photos)} photos")
    named = [(f"{session_id}-{i:04d}", p) for i, p in enumerate(photos)]
    indexed = asyncio.run(index_photos(bench, server, session_id, named))
    progress("P2: selfie model time")
    model = selfie_model_ms(selfies[: min(60, len(selfies))], parallel=parallel_check)
    share = len(selfies) // len(concurrency)
    levels: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wrk-", dir=bench.log_dir) as tmp:
        folder = Path(tmp)
        repeated = wrk.write_bodies(folder / "cached", session_id, selfies[:1])
        with server.client() as client:
            search(client, session_id, selfies[0]).raise_for_status()  # now cached
        uncached: dict[int, dict[str, Any]] = {}
        with _cacheless(bench, session_id, selfies[0]) as cacheless:
            for n, c in enumerate(concurrency):
                distinct = wrk.write_bodies(
                    folder / f"c{c}", session_id, selfies[n * share : (n + 1) * share]
                )
                progress(f"P2: c={c}, distinct selfies, {uncached_s} s, cache off")
                uncached[c] = _level(cacheless, distinct, c, uncached_s)
        for c in concurrency:
            progress(f"P2: c={c}, repeated selfie, {cached_s} s")
            cached = _level(server, repeated, c, cached_s)
            levels.append({"connections": c, "uncached": uncached[c], "cached": cached})
        limited = _rate_limited(bench, session_id, repeated, progress) if rate_limit_check else None
        phone = (
            _phone(bench, session_id, folder, phone_selfies, uncached_s, progress)
            if phone_selfies
            else None
        )
    return {
        "session_photos": len(indexed.indexed),
        "session_faces": sum(int(e.get("faces_indexed", 0)) for e in indexed.indexed.values()),
        "distinct_selfies_per_level": share,
        "model_bound": model,
        "levels": levels,
        "rate_limit": limited,
        "phone": phone,
    }


def _phone(
    bench: Bench,
    session_id: str,
    folder: Path,
    selfies: list[bytes],
    duration_s: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """P2: distinct 12 MP phone selfies at c=10 on a `search-api` server without the result
    cache (module docstring), and the model-bound limit on the same selfies."""
    connections = 10
    progress(f"P2: 12 MP phone selfies, model time on {len(selfies)}")
    model = selfie_model_ms(selfies, parallel=False)
    bodies = wrk.write_bodies(folder / "phone", session_id, selfies)
    progress(f"P2: 12 MP phone selfies, c={connections}, {duration_s} s, cache off")
    with _cacheless(bench, session_id, selfies[0]) as server:
        result = _level(server, bodies, connections, duration_s)
    return {
        "connections": connections,
        "selfies": len(selfies),
        "bytes_mean": round(sum(map(len, selfies)) / len(selfies)),
        "cache": "off",
        "model_bound": model,
        "uncached": result,
    }


def _rate_limited(
    bench: Bench, session_id: str, bodies: wrk.Bodies, progress: Callable[[str], None]
) -> dict[str, Any]:
    """A search-api server at the default per-IP limit, hit by one client for a few seconds."""
    limit = 60
    progress(f"P2: rate limit {limit}/min, repeated selfie, c=10, 5 s")
    with bench.serve("search-api", SEARCH_RATE_LIMIT_PER_MINUTE=str(limit)) as limited:
        result = wrk.run(limited.base_url, bodies, connections=10, duration_s=5)
    return {"limit_per_minute": limit, **result}
