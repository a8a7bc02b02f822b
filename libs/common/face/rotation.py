"""Quarter-turn rotations for selfies that arrive sideways or upside down.

Browsers and apps sometimes strip the EXIF orientation of a selfie, leaving the pixels on their
side; SCRFD does not find faces turned by 90 or 180 degrees. A selfie with no face upright is
therefore tried turned, and what is found is mapped back onto the photo as uploaded.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from libs.common.face.passes import FloatArray

# np.rot90 turns counter-clockwise; the order tries the likelier sideways cases first.
QUARTER_TURNS = (0, 1, 3, 2)


def turn(image: npt.NDArray[np.uint8], turns: int) -> npt.NDArray[np.uint8]:
    """The image turned counter-clockwise `turns` times (contiguous, as the detector wants)."""
    return image if turns == 0 else np.ascontiguousarray(np.rot90(image, turns))


def unturn_points(points: FloatArray, turns: int, width: int, height: int) -> FloatArray:
    """Map (N, 2) x, y points found in `turn(image, turns)` back onto the width x height image."""
    widths = [width if i % 2 == 0 else height for i in range(turns)]
    out = np.array(points, dtype=np.float32).reshape(-1, 2)
    for before in reversed(widths):
        # One counter-clockwise turn sends (x, y) to (y, before - x); this undoes it.
        out = np.stack([before - out[:, 1], out[:, 0]], axis=1)
    return out


def unturn_box(box: FloatArray, turns: int, width: int, height: int) -> FloatArray:
    """Map an x1, y1, x2, y2 box found in the turned image back; corners re-ordered."""
    corners = unturn_points(box.reshape(2, 2), turns, width, height)
    return np.concatenate([corners.min(axis=0), corners.max(axis=0)]).astype(np.float32)
