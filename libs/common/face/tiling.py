"""Geometry for multi-scale, tiled detection: pass sizes, tile grids and NMS across tiles.

A 640-pixel detector pass over a 24 MP event photo shrinks a 40-70 px face to 4-7 px, which no
detector sees. So a large photo gets two passes: a coarse pass of the whole photo (large faces,
and faces that a tile would cut) and a detail pass at a higher scale, cut into fixed-size tiles
that overlap by more than the largest face the detail pass is meant for. Detections from tiles
that touch a cut edge are dropped (the overlapping neighbour holds the whole face), then NMS
merges everything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Tile:
    """A window of the scaled image: pixel box x0, y0, x1, y1 and which edges are cuts."""

    x0: int
    y0: int
    x1: int
    y1: int
    cut_left: bool
    cut_top: bool
    cut_right: bool
    cut_bottom: bool


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / stride) + 1
    step = (length - tile) / (count - 1)
    return [round(i * step) for i in range(count)]


def plan_tiles(width: int, height: int, tile: int, overlap: int) -> list[Tile]:
    """Cover a width x height image with tiles of at most `tile` px overlapping by >= `overlap`."""
    stride = tile - overlap
    if stride <= 0:
        raise ValueError("tile overlap must be smaller than the tile")
    xs = _starts(width, tile, stride)
    ys = _starts(height, tile, stride)
    return [
        Tile(
            x0=x,
            y0=y,
            x1=min(width, x + tile),
            y1=min(height, y + tile),
            cut_left=x > 0,
            cut_top=y > 0,
            cut_right=x + tile < width,
            cut_bottom=y + tile < height,
        )
        for y in ys
        for x in xs
    ]


def off_cut_edges(boxes: FloatArray, tile: Tile, margin: float) -> npt.NDArray[np.bool_]:
    """Mask of boxes (tile coordinates) that stay `margin` px away from every cut edge."""
    w, h = tile.x1 - tile.x0, tile.y1 - tile.y0
    keep = np.ones(len(boxes), dtype=bool)
    if tile.cut_left:
        keep &= boxes[:, 0] > margin
    if tile.cut_top:
        keep &= boxes[:, 1] > margin
    if tile.cut_right:
        keep &= boxes[:, 2] < w - margin
    if tile.cut_bottom:
        keep &= boxes[:, 3] < h - margin
    return keep


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
