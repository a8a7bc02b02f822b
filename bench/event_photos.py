"""EP-12 / EP-24 — camera-size photos and phone selfies (../shared/BENCHMARKS.md, Event-Photo).

On one draw, in one run:
- P6: the raw engine (decode as the embedder decodes, then `analyze_batch` in chunks of
  EMBEDDER_BATCH_SIZE, one thread, one intra-op thread) on onnxruntime and on OpenVINO, the
  same photos, side by side; the ratio of their photos/s.
- P1: end to end over HTTP on the bench's `all` server (its inference workers: every core), from
  the first POST to the last `photos.indexed`, ÷ (cores x the raw single-thread photos/s of the
  backend the server runs), the raw rate measured before and after and averaged.
- A3: every attendee's 12 MP phone selfie searched in the session; precision/recall at the
  shipped threshold and a sweep (scored like LFW-Events).
- Selfie time: decode + detect + embed on one thread (the search path's own function), median
  ms for the 12 MP selfies, their 720 px variants and the 250 px LFW originals.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.accuracy import scored, similarities
from bench.client import IndexRun, index_photos, unique
from bench.harness import SWEEP_FLOOR, Bench, Server
from bench.pipeline import stage_breakdown
from bench.protocols import lfw_events
from bench.protocols.event_photos import EpParams, EventPhotos, build
from bench.protocols.lfw_events import read_labels
from libs.common.cpu import cpu_cores
from libs.common.face import FaceEngine, NoFaceError
from libs.common.face.photo import PhotoInput, decode_photo
from libs.common.face.selfie import selfie_from_bytes
from libs.common.settings import EmbedderSettings, FaceSettings

BACKENDS = ("onnxruntime", "openvino")


def _engine(backend: str) -> FaceEngine:
    settings = FaceSettings(intra_op_threads=1, inference_workers=1, backend=backend)
    engine = FaceEngine.from_settings(settings)
    engine.load()
    return engine


def raw_engine(engine: FaceEngine, photos: list[bytes], batch: int) -> dict[str, Any]:
    """Photos/s of decode + analyze_batch on this thread, as one embedder inference worker."""

    def decode(data: bytes) -> PhotoInput:
        return decode_photo(data, engine.settings)[1]

    engine.analyze(decode(photos[0]))  # first runs allocate
    faces = 0
    stages = dict.fromkeys(("decode", "detect", "align", "embed"), 0.0)
    start = time.perf_counter()
    for i in range(0, len(photos), batch):
        began = time.perf_counter()
        images = [decode(p) for p in photos[i : i + batch]]
        stages["decode"] += (time.perf_counter() - began) * 1000
        for result in engine.analyze_batch(images):
            faces += len(result.faces)
            for stage in ("detect", "align", "embed"):
                stages[stage] += result.timings_ms.get(stage, 0.0)
    wall = time.perf_counter() - start
    per_photo = {k: round(v / len(photos), 1) for k, v in stages.items()}
    return {"photos": len(photos), "faces": faces, "wall_s": round(wall, 2),
            "photos_per_s": round(len(photos) / wall, 3), "ms_per_photo": per_photo}  # fmt: skip


def backends(photos: list[bytes], batch: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """P6: both backends on the same photos, alternated (ort, ov, ort, ov) against drift."""
    engines = {b: _engine(b) for b in BACKENDS}
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKENDS}
    for round_ in (1, 2):
        for backend in BACKENDS:
            progress(f"P6: raw engine on {backend}, round {round_}")
            runs[backend].append(raw_engine(engines[backend], photos, batch))
    rates = {b: round(statistics.fmean(r["photos_per_s"] for r in rs), 3) for b, rs in runs.items()}
    stages = {
        b: {k: round(statistics.fmean(r["ms_per_photo"][k] for r in rs), 1)
            for k in rs[0]["ms_per_photo"]}
        for b, rs in runs.items()
    }  # fmt: skip
    return {
        "photos": len(photos),
        "runs_photos_per_s": {b: [r["photos_per_s"] for r in rs] for b, rs in runs.items()},
        "photos_per_s": rates,
        "ms_per_photo": stages,
        "openvino_providers": engines["openvino"].providers(),
        "ratio": round(rates["openvino"] / rates["onnxruntime"], 3),
    }


def selfie_times(ep: EventPhotos, dataset: Path) -> dict[str, Any]:
    """Median ms of the search path's selfie work on one thread."""
    engine = _engine("auto")
    labels = read_labels(dataset)
    lfw = [labels[name][0].read_bytes() for name in sorted(ep.selfies)]
    out: dict[str, Any] = {"backend": engine.providers()[0]}
    kinds = {
        "phone_12mp": list(ep.selfies.values()),
        "phone_720px": list(ep.small_selfies.values()),
        "lfw_250px": lfw,
    }
    for kind, selfies in kinds.items():
        times = []
        for data in [selfies[0], *selfies]:
            start = time.perf_counter()
            with contextlib.suppress(NoFaceError):  # timed all the same: the server does it too
                selfie_from_bytes(engine, data, engine.settings)
            times.append((time.perf_counter() - start) * 1000)
        out[kind] = {"selfies": len(selfies), "ms_median": round(statistics.median(times[1:]), 1)}
    return out


def _index(bench: Bench, server: Server, session_id: str, photos: list[bytes]) -> IndexRun:
    named = [(f"{session_id}-{i:04d}", data) for i, data in enumerate(photos)]
    return asyncio.run(index_photos(bench, server, session_id, named))


def run(
    bench: Bench,
    server: Server,
    *,
    dataset: Path,
    params: EpParams,
    limit: int | None,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    progress(f"{params.name}: building the photos and selfies")
    ep = build(dataset, params, limit=limit)
    batch = EmbedderSettings().batch_size
    backend = _engine("auto")
    p6 = backends(ep.photos, batch, progress)
    progress(f"P1: raw engine ({backend.providers()[0]}) before")
    before = raw_engine(backend, ep.photos, batch)
    progress(f"P1: {len(ep.photos)} photos end to end over HTTP")
    _index(bench, server, unique("epw"), ep.photos[:2])
    session_id = unique("ep")
    cpu0 = bench.cpu_seconds(server.process.pid)
    indexed = _index(bench, server, session_id, ep.photos)
    cpu = bench.cpu_seconds(server.process.pid) - cpu0
    progress("P1: raw engine after")
    after = raw_engine(backend, ep.photos, batch)
    raw = (before["photos_per_s"] + after["photos_per_s"]) / 2
    cores = cpu_cores()
    progress(f"A3: searching {len(ep.selfies)} phone selfies")
    identities = sorted(ep.selfies)
    photo_ids = [f"{session_id}-{i:04d}" for i in range(len(ep.photos))]
    assert min(lfw_events.default_thresholds()) >= SWEEP_FLOOR
    similarity, no_face, default = similarities(
        server, session_id, [ep.selfies[n] for n in identities], photo_ids
    )
    accuracy = scored(identities, similarity, no_face, ep.truth, indexed, default, params.as_dict())
    accuracy["protocol"] = params.name
    accuracy.pop("sweep")
    progress("selfie times")
    return {
        "protocol": params.name,
        "parameters": params.as_dict(),
        "photos": len(ep.photos),
        "pasted_faces": sum(ep.faces_per_photo),
        "stored_rotated": sum(o != 1 for o in ep.orientations),
        "photo_mb_mean": round(statistics.fmean(len(p) for p in ep.photos) / 1e6, 2),
        "p6_backends": p6,
        "p1": {
            "backend": backend.providers()[0],
            "raw_before": before,
            "raw_after": after,
            "raw_photos_per_s": round(raw, 3),
            "cores": cores,
            "end_to_end": {
                "photos": indexed.photos,
                "indexed": len(indexed.indexed),
                "failed": len(indexed.failed),
                "wall_s": round(indexed.wall_s, 2),
                "photos_per_s": round(indexed.photos_per_s, 3),
                "cpu_s": round(cpu, 1),
            },
            "ratio": round(indexed.photos_per_s / (cores * raw), 3) if raw else None,
            "stages": stage_breakdown(indexed),
        },
        "a3": accuracy,
        "selfies": selfie_times(ep, dataset),
    }
