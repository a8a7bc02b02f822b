"""P1 — pipeline efficiency, and P4 — scale-out with embedder processes.

P1: the same photos (1) through the raw face engine in this process — decode + `analyze_batch`
in chunks of EMBEDDER_BATCH_SIZE on one thread, one intra-op thread: what the embedder itself
runs — and (2) end to end over HTTP on the bench's `all` server (one process, one inference
thread): from the first POST /api/v2/index to the last `photos.indexed` event. The raw engine is
measured before and after the end-to-end run and averaged, so drift of a noisy machine hits both
sides. Ratio = end-to-end photos/s ÷ raw photos/s. The per-stage breakdown comes from the stage
timings the embedder puts in every `photos.indexed` event.

P4: an `ingest` process and two `embedder` processes (FACE_INTRA_OP_THREADS=1 each) are started
together; the photos are indexed with both embedders running, then one is stopped (it leaves the
consumer group, the other takes its partitions) and the same number of new photos is indexed
with one. Each embedder's CPU seconds show that both really worked.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.client import IndexRun, index_photos, unique
from bench.harness import Bench, Server
from bench.protocols.lfw_events import decode
from libs.common.cpu import cpu_cores
from libs.common.face import FaceEngine
from libs.common.settings import EmbedderSettings, FaceSettings

STAGES = ("download_ms", "decode_ms", "detect_ms", "embed_ms", "db_ms")


def raw_engine(engine: FaceEngine, photos: list[bytes], batch: int) -> dict[str, Any]:
    """Photos/s of decode + analyze_batch on this thread, the way the embedder runs them."""
    engine.analyze(decode(photos[0]))  # first runs allocate
    faces = 0
    start = time.perf_counter()
    for i in range(0, len(photos), batch):
        images = [decode(p) for p in photos[i : i + batch]]
        faces += sum(len(r.faces) for r in engine.analyze_batch(images))
    wall = time.perf_counter() - start
    return {
        "photos": len(photos),
        "faces": faces,
        "wall_s": round(wall, 2),
        "photos_per_s": round(len(photos) / wall, 3),
    }


def stage_breakdown(run: IndexRun) -> dict[str, Any]:
    """Mean ms per photo of each embedder stage, and the share of the wall time the inference
    thread was busy (detect + embed; decoding runs on other threads, concurrently)."""
    events = list(run.indexed.values())
    means = {
        stage.removesuffix("_ms"): round(
            statistics.fmean(float(e.get("timings", {}).get(stage, 0.0)) for e in events), 1
        )
        for stage in STAGES
    }
    engine_s = (means["detect"] + means["embed"]) * len(events) / 1000
    return {
        "ms_per_photo": means,
        "ingest_post_ms_median": round(statistics.median(run.post_ms), 1),
        "inference_busy_s": round(engine_s, 2),
        "inference_busy_share_of_wall": round(engine_s / run.wall_s, 3) if run.wall_s else None,
    }


def _run_summary(run: IndexRun) -> dict[str, Any]:
    return {
        "photos": run.photos,
        "indexed": len(run.indexed),
        "failed": len(run.failed),
        "wall_s": round(run.wall_s, 2),
        "post_wall_s": round(run.post_wall_s, 2),
        "photos_per_s": round(run.photos_per_s, 3),
    }


def _index(bench: Bench, server: Server, prefix: str, photos: list[bytes]) -> IndexRun:
    session_id = unique(prefix)
    named = [(f"{session_id}-{i:04d}", data) for i, data in enumerate(photos)]
    return asyncio.run(index_photos(bench, server, session_id, named))


def efficiency(
    bench: Bench, server: Server, photos: list[bytes], progress: Callable[[str], None]
) -> dict[str, Any]:
    """P1 on the bench's `all` server."""
    batch = EmbedderSettings().batch_size
    engine = FaceEngine.from_settings(FaceSettings(intra_op_threads=1))
    engine.load()
    progress(f"P1: raw engine on {len(photos)} photos")
    before = raw_engine(engine, photos, batch)
    progress("P1: warm-up, then end to end over HTTP")
    _index(bench, server, "p1w", photos[:4])
    cpu0 = bench.cpu_seconds(server.process.pid)
    run = _index(bench, server, "p1", photos)
    cpu = bench.cpu_seconds(server.process.pid) - cpu0
    progress("P1: raw engine again")
    after = raw_engine(engine, photos, batch)
    raw = (before["photos_per_s"] + after["photos_per_s"]) / 2
    return {
        "photos": len(photos),
        "embedder_batch_size": batch,
        "intra_op_threads": 1,
        "inference_workers": cpu_cores(),  # the `all` server's default: one per core
        "raw_before": before,
        "raw_after": after,
        "raw_photos_per_s": round(raw, 3),
        "end_to_end": {**_run_summary(run), "cpu_s": round(cpu, 1)},
        "ratio": round(run.photos_per_s / raw, 3) if raw else None,
        "stages": stage_breakdown(run),
    }


def _cpu(bench: Bench, server: Server) -> float:
    return bench.cpu_seconds(server.process.pid, stack=False)


def scale_out(bench: Bench, photos: list[bytes], progress: Callable[[str], None]) -> dict[str, Any]:
    """P4: indexing photos/s with 2 embedder processes, then with 1, one thread each."""
    env = {"FACE_INTRA_OP_THREADS": "1"}
    progress("P4: starting ingest and two embedders")
    ingest, first, second = bench.start_many(("ingest", {}), ("embedder", env), ("embedder", env))
    try:
        _index(bench, ingest, "p4w", photos[:12])
        time.sleep(2)
        cpu0 = [_cpu(bench, first), _cpu(bench, second)]
        progress(f"P4: {len(photos)} photos with 2 embedders")
        two = _index(bench, ingest, "p4x2", photos)
        cpu_two = [_cpu(bench, s) - c for s, c in zip((first, second), cpu0, strict=True)]
        second.stop()  # leaves the group; the first takes its partitions
        progress("P4: one embedder stopped; waiting for the group to settle")
        _index(bench, ingest, "p4w1", photos[:4])
        cpu1 = _cpu(bench, first)
        progress(f"P4: {len(photos)} photos with 1 embedder")
        one = _index(bench, ingest, "p4x1", photos)
        cpu_one = _cpu(bench, first) - cpu1
    finally:
        for server in (second, first, ingest):
            server.stop()
    return {
        "photos": len(photos),
        "intra_op_threads": 1,
        "partitions": bench.settings.kafka.partitions,
        "one_embedder": {**_run_summary(one), "embedder_cpu_s": [round(cpu_one, 1)]},
        "two_embedders": {
            **_run_summary(two),
            "embedder_cpu_s": [round(c, 1) for c in cpu_two],
        },
        "ratio": round(two.photos_per_s / one.photos_per_s, 3) if one.photos_per_s else None,
        "stages_one": stage_breakdown(one),
        "stages_two": stage_breakdown(two),
    }
