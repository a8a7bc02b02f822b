"""`python -m bench faces`: raw face-engine speed on given photos (no servers, no I/O timed).

Photos are decoded once up front; then every photo is analysed `rounds` times in a plain loop,
and every photo is also run through `selfie` (its main face), so the figures are model time plus
the engine's own overhead, at the thread count of FACE_INTRA_OP_THREADS.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.protocols.lfw_events import decode
from libs.common.face import FaceEngine, NoFaceError


def bench(engine: FaceEngine, paths: list[Path], *, rounds: int) -> dict[str, Any]:
    images = [decode(path.read_bytes()) for path in paths]
    engine.load()
    engine.analyze(images[0])  # warm-up: first runs allocate
    faces = 0
    per_photo_ms: list[float] = []
    start = time.perf_counter()
    for _ in range(rounds):
        for image in images:
            t0 = time.perf_counter()
            faces += len(engine.analyze(image).faces)
            per_photo_ms.append((time.perf_counter() - t0) * 1000.0)
    elapsed = time.perf_counter() - start
    selfie_ms: list[float] = []
    for _ in range(rounds):
        for image in images:
            t0 = time.perf_counter()
            try:
                engine.selfie(image)
            except NoFaceError:
                continue
            selfie_ms.append((time.perf_counter() - t0) * 1000.0)
    photos = rounds * len(images)
    return {
        "pack": engine.pack.id,
        "providers": engine.detector.providers(),
        "intra_op_threads": engine.settings.intra_op_threads,
        "images": [str(p) for p in paths],
        "rounds": rounds,
        "photos": photos,
        "faces": faces,
        "photos_per_s": photos / elapsed,
        "faces_per_s": faces / elapsed,
        "ms_per_photo_median": statistics.median(per_photo_ms),
        "ms_per_selfie_median": statistics.median(selfie_ms) if selfie_ms else None,
    }
