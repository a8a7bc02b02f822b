"""A2 — LFW-Crowd (small faces in 24 MP photos) on the library, as `python -m bench eval-crowd`,
for both face sizes of BENCHMARKS.md, saved with the other suites' results. No servers: it
measures the face engine's detection and identification; the HTTP path is A1's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.protocols import lfw_crowd
from libs.common.face import FaceEngine
from libs.common.settings import FaceSettings

FACE_SIZES = (160, 100)  # ~65 px and ~40 px faces


def run(
    dataset: Path,
    *,
    face_sizes: tuple[int, ...] = FACE_SIZES,
    seed: int = 7,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    # Every pasted face must be indexed for the identification check (as eval-crowd does).
    settings = FaceSettings(intra_op_threads=1).model_copy(update={"max_faces_per_photo": 5000})
    engine = FaceEngine.from_settings(settings)
    runs = []
    for size in face_sizes:
        progress(f"A2: LFW-Crowd T={size}")
        crowd = lfw_crowd.build_crowd(dataset, face_size=size, seed=seed)
        runs.append({"face_size": size, "seed": seed, **lfw_crowd.evaluate(engine, crowd)})
    return {"intra_op_threads": 1, "runs": runs}
