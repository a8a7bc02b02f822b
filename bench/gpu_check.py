"""`python -m bench.gpu_check`: faces/s and photos/s of the face engine on an NVIDIA GPU, on an
EP-12 draw (../shared/BENCHMARKS.md), beside the same photos on the CPU backend; for a machine
with a GPU and the `gpu` extra (`make install-gpu`). Prints one JSON document.

    python -m bench.gpu_check --photos 48 --batch 16

On the GPU the engine runs onnxruntime with CUDAExecutionProvider first and one inference
worker taking whole batches across photos (`analyze_batch`), as an embedder does with
FACE_PROVIDERS=CUDAExecutionProvider,CPUExecutionProvider. The photos are decoded first (the
decode is the CPU's work in both runs and is timed apart).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import onnxruntime as ort

from bench.protocols.event_photos import EpParams, build
from libs.common.cpu import cpu_cores
from libs.common.face import FaceEngine
from libs.common.imaging import decode_reduced
from libs.common.settings import FaceSettings

GPU = ["CUDAExecutionProvider", "CPUExecutionProvider"]


def measure(settings: FaceSettings, images: list[Any], batch: int, rounds: int) -> dict[str, Any]:
    engine = FaceEngine.from_settings(settings)
    engine.load()
    engine.analyze_batch(images[:batch])  # warm-up: kernels, allocations
    faces = 0
    start = time.perf_counter()
    for _ in range(rounds):
        for i in range(0, len(images), batch):
            faces += sum(len(r.faces) for r in engine.analyze_batch(images[i : i + batch]))
    wall = time.perf_counter() - start
    photos = len(images) * rounds
    return {
        "providers": engine.providers(),
        "photos": photos,
        "faces": faces,
        "wall_s": round(wall, 2),
        "photos_per_s": round(photos / wall, 2),
        "faces_per_s": round(faces / wall, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("../shared/datasets/lfw-dev"))
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--providers", default=",".join(GPU))
    parser.add_argument("--no-cpu", action="store_true", help="Skip the CPU comparison.")
    args = parser.parse_args(argv)
    ep = build(args.dataset, EpParams(attendees=40, distractors=150), limit=args.photos)
    face = FaceSettings()
    start = time.perf_counter()
    images = [
        decode_reduced(p, **face.decode_limits, long_side=face.photo_decode_side).pixels
        for p in ep.photos
    ]
    decode_s = time.perf_counter() - start
    gpu = FaceSettings(backend="onnxruntime", providers=args.providers.split(","),
                       inference_workers=1, intra_op_threads=0)  # fmt: skip
    report: dict[str, Any] = {
        "protocol": "EP-12",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": cpu_cores()},
        "onnxruntime": ort.__version__,
        "available_providers": ort.get_available_providers(),
        "decode_ms_per_photo": round(decode_s * 1000 / len(images), 1),
        "gpu": measure(gpu, images, args.batch, args.rounds),
    }
    if not args.no_cpu:
        cpu = FaceSettings(intra_op_threads=0)  # the default CPU backend, every core
        report["cpu"] = measure(cpu, images, args.batch, 1)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
