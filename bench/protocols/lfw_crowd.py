"""LFW-Crowd: small faces in a 24 MP event photo (../shared/BENCHMARKS.md, target A2).

LFW images resized to T x T are pasted on a gray 6000 x 4000 canvas in a jittered grid (T = 160
gives faces of about 65 px, T = 100 about 40 px). Detection recall is the share of tile centres
inside a detected face box; identification searches a different image of each pasted identity
that has one and checks that the crowd photo comes back, and that the best face is the right one.
"""

from __future__ import annotations

import io
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from bench.protocols.lfw_events import GRAY, JPEG_QUALITY, decode, read_labels
from libs.common.face import FaceEngine, NoFaceError
from libs.common.face.photo import decode_photo

CANVAS = (6000, 4000)


@dataclass(frozen=True, slots=True)
class Crowd:
    photo: bytes  # JPEG
    centres: dict[str, tuple[float, float]]  # identity -> centre of its pasted tile
    selfies: dict[str, Path]  # identity -> another image of it (identities with >= 2)


def build_crowd(dataset_dir: Path, *, face_size: int, seed: int) -> Crowd:
    labels = read_labels(dataset_dir)
    rng = random.Random(seed)  # noqa: S311 - a reproducible draw, not a secret
    names = sorted(labels)
    rng.shuffle(names)
    cell = face_size + face_size // 2
    cols, rows = CANVAS[0] // cell, CANVAS[1] // cell
    jitter = face_size // 4
    canvas = Image.new("RGB", CANVAS, GRAY)
    centres: dict[str, tuple[float, float]] = {}
    for index, name in enumerate(names[: cols * rows]):
        row, col = divmod(index, cols)
        x = col * cell + (cell - face_size) // 2 + rng.randint(-jitter, jitter)
        y = row * cell + (cell - face_size) // 2 + rng.randint(-jitter, jitter)
        x = min(max(x, 0), CANVAS[0] - face_size)
        y = min(max(y, 0), CANVAS[1] - face_size)
        with Image.open(labels[name][0]) as tile:
            canvas.paste(tile.convert("RGB").resize((face_size, face_size)), (x, y))
        centres[name] = (x + face_size / 2, y + face_size / 2)
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=JPEG_QUALITY)
    selfies = {name: labels[name][1] for name in centres if len(labels[name]) >= 2}
    return Crowd(out.getvalue(), centres, selfies)


def _inside(boxes: npt.NDArray[np.float32], point: tuple[float, float]) -> npt.NDArray[np.bool_]:
    x, y = point
    return (boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])


def evaluate(engine: FaceEngine, crowd: Crowd) -> dict[str, Any]:
    """Detection recall and identification on the crowd photo, decoded as the embedder decodes
    it (`decode_photo`: half size for a 24 MP photo, small faces aligned from the photo decoded
    again larger), boxes back in the photo's own pixels."""
    start = time.perf_counter()
    decoded, photo = decode_photo(crowd.photo, engine.settings)
    result = engine.analyze(photo).scaled(decoded.scale)
    analyze_ms = (time.perf_counter() - start) * 1000.0
    detected = [f.bbox for f in result.faces] + [
        r.bbox for r in result.rejected if r.reason != "low_score"
    ]
    boxes = np.array(detected, np.float32).reshape(-1, 4)
    found = sum(bool(_inside(boxes, c).any()) for c in crowd.centres.values())
    face_boxes = np.array([f.bbox for f in result.faces], np.float32).reshape(-1, 4)
    vectors = np.stack([f.embedding for f in result.faces]) if result.faces else None
    returned = correct = searched = 0
    for name, path in crowd.selfies.items():
        try:
            query = engine.selfie(decode(path.read_bytes())).face.embedding
        except NoFaceError:
            continue
        searched += 1
        if vectors is None:
            continue
        similarity = vectors @ query
        best = int(np.argmax(similarity))
        if similarity[best] >= engine.threshold:
            returned += 1
            correct += bool(_inside(face_boxes[best : best + 1], crowd.centres[name])[0])
    pasted = len(crowd.centres)
    return {
        "protocol": "LFW-Crowd",
        "pack": engine.pack.id,
        "canvas": list(CANVAS),
        "faces_pasted": pasted,
        "detected": found,
        "detection_recall": found / pasted,
        "boxes": len(detected),
        "faces_indexed": len(result.faces),
        "rejected": {
            reason: sum(r.reason == reason for r in result.rejected)
            for reason in sorted({r.reason for r in result.rejected})
        },
        "timings_ms": {**result.timings_ms, "analyze_total": analyze_ms},
        "selfies": len(crowd.selfies),
        "selfies_searched": searched,
        "photo_returned": returned / searched if searched else 0.0,
        "best_face_correct": correct / searched if searched else 0.0,
        "threshold": engine.threshold,
    }
