"""`python -m bench renditions`: what thumbnails and previews cost the embedder, per photo.

Issue 15's target: renditions add at most 10% to the embedder's CPU per photo. On one core
(CPU time of this process, one inference thread), for camera-size JPEGs: the embedder's decode
(reduced by DCT scaling, as it runs), the face engine on the decoded pixels (whole-photo and
detail passes), and `make_renditions` on the same pixels, each timed per photo; the share is
renditions / (decode + faces). The photos are insightface's t1.jpg (six people) pasted at a
different place on a grey canvas with sensor-like noise, so that they weigh what camera files
weigh (~3 MB at 12 MP); they need no dataset. The first photo of each size only warms up.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import cv2
import numpy as np
from PIL import Image

from bench.data import T1
from libs.common.face import FaceEngine
from libs.common.imaging import decode_reduced
from libs.common.renditions import make_renditions
from libs.common.settings import FaceSettings, RenditionSettings

T = TypeVar("T")
#: Camera sizes measured: 12 MP and 24 MP.
SIZES = ((4000, 3000), (6000, 4000))


def camera_photos(size: tuple[int, int], count: int, seed: int = 5) -> list[bytes]:
    """`count` JPEGs of `size`, each with t1.jpg's people somewhere on a noisy grey canvas."""
    width, height = size
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 7, (height, width, 3))
    with Image.open(T1) as im:
        side = round(width * 0.64)
        group = im.convert("RGB").resize((side, round(im.height * side / im.width)))
    photos = []
    for i in range(count):
        canvas = Image.new("RGB", size, (118 + i, 122, 128))
        canvas.paste(group, (60 + 40 * i, 90 + 35 * i))
        pixels = np.clip(np.asarray(canvas, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, "JPEG", quality=90)
        photos.append(out.getvalue())
    return photos


@dataclass
class PhotoCost:
    decode_ms: float
    faces_ms: float
    renditions_ms: float


def _cpu_ms(work: Callable[[], T]) -> tuple[T, float]:
    start = time.process_time()
    value = work()
    return value, (time.process_time() - start) * 1000


def photo_cost(
    data: bytes, engine: FaceEngine, face: FaceSettings, renditions: RenditionSettings
) -> PhotoCost:
    image, decode_ms = _cpu_ms(
        lambda: decode_reduced(data, **face.decode_limits, long_side=face.photo_decode_side)
    )
    _, faces_ms = _cpu_ms(lambda: engine.analyze(image.pixels))
    _, renditions_ms = _cpu_ms(lambda: make_renditions(image.pixels, renditions))
    return PhotoCost(decode_ms, faces_ms, renditions_ms)


def summary(costs: list[PhotoCost]) -> dict[str, float]:
    """Mean per photo and the renditions' share of the rest of the photo's work."""
    decode, faces, made = (
        float(np.mean([getattr(c, f) for c in costs]))
        for f in ("decode_ms", "faces_ms", "renditions_ms")
    )
    return {
        "decode_ms": round(decode, 1),
        "faces_ms": round(faces, 1),
        "renditions_ms": round(made, 1),
        "share": round(made / (decode + faces), 4),
    }


def run(photos_per_size: int = 6) -> dict[str, Any]:
    cv2.setNumThreads(1)  # one core, as one inference worker has
    face = FaceSettings(inference_workers=1, intra_op_threads=1)
    engine = FaceEngine.from_settings(face)
    rows = []
    for size in SIZES:
        photos = camera_photos(size, photos_per_size + 1)
        mb = float(np.mean([len(p) for p in photos])) / 1e6
        for fmt in ("jpeg", "webp"):
            settings = RenditionSettings(format=fmt)
            costs = [photo_cost(p, engine, face, settings) for p in photos]
            rows.append(
                {
                    "size": f"{size[0]}x{size[1]}",
                    "megapixels": round(size[0] * size[1] / 1e6),
                    "jpeg_mb": round(mb, 2),
                    "format": fmt,
                    "photos": len(costs) - 1,
                    **summary(costs[1:]),
                }
            )
    return {"rows": rows, "target_share": 0.10}
