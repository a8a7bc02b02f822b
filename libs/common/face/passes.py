"""Geometry for multi-scale detection: detector input sizes, pass scales, NMS across passes.

A 640-pixel detector pass over a 24 MP event photo shrinks a 40-70 px face to 4-7 px, which no
detector sees. So a large photo gets two passes over the whole photo: a coarse one (large
faces: SCRFD's anchors reach ~300 px faces) and a detail one at a higher scale (small faces);
NMS merges them.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

# SCRFD's feature strides go up to 32: input sides must be multiples of it.
_STRIDE = 32


def detector_input_size(width: int, height: int) -> tuple[int, int]:
    """The detector input (width, height) for an image: its own size rounded up to stride."""
    return (
        max(_STRIDE, math.ceil(width / _STRIDE) * _STRIDE),
        max(_STRIDE, math.ceil(height / _STRIDE) * _STRIDE),
    )


def pass_scale(width: int, height: int, long_side: int) -> float:
    """Scale that brings the image's long side down to `long_side` (never up)."""
    return min(1.0, long_side / max(width, height))


def nms(boxes: FloatArray, scores: FloatArray, iou_threshold: float) -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression; indices of the kept boxes, best score first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum(0.0, boxes[:, 2] - boxes[:, 0]) * np.maximum(0.0, boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        xx1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.maximum(0.0, xx2 - xx1) * np.maximum(0.0, yy2 - yy1)
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-6)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.intp)
