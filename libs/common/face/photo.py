"""An event photo from bytes to what the engine analyses: decoded as small as the detector
allows, with the way back to sharper pixels for the faces too small to embed from those.

A 24 MP photo decodes at half size for the 2560 px detail pass (~4x faster than whole), where a
40 px face of the photo is 20 px: the detector still finds it, but an embedding of a 20 px face
blown up to the recogniser's 112 px is noise (LFW-Crowd, T = 100, 4 crowd photos: 1,164 of
1,221 attendees identified from the whole photo, 239 from the half-size one). So such a face
is aligned from the photo decoded again at twice the size, once per photo and only when it
has such a face (FACE_SHARPER_CROP_BELOW).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt

from libs.common.imaging import DecodedImage, ImageError, decode_reduced
from libs.common.settings import FaceSettings

ImageArray = npt.NDArray[np.uint8]
#: The photo decoded larger: its pixels, and how many of them one analysed pixel is.
Sharper = tuple[ImageArray, float]


@dataclass(frozen=True, slots=True, eq=False)
class PhotoInput:
    """A photo for `FaceEngine.analyze_batch`: the pixels the detector sees, how many of the
    photo's own pixels one of them is (`scale`: the minimum face size counts in the photo's
    pixels), and `sharper`, which decodes the photo larger (or gives None where it cannot);
    the engine calls it at most once, and only for a face too small to embed from `pixels`."""

    pixels: ImageArray
    scale: float = 1.0
    sharper: Callable[[], Sharper | None] | None = None


def decode_photo(data: bytes, face: FaceSettings) -> tuple[DecodedImage, PhotoInput]:
    """Decode untrusted photo bytes reduced to the largest detector pass (`decode_reduced`,
    same errors) and the engine's input for them."""
    decoded = decode_reduced(data, **face.decode_limits, long_side=face.photo_decode_side)
    sharper = partial(_decode_sharper, data, decoded, face) if decoded.scale > 1.0 else None
    return decoded, PhotoInput(decoded.pixels, decoded.scale, sharper)


def _decode_sharper(data: bytes, decoded: DecodedImage, face: FaceSettings) -> Sharper | None:
    """The photo at twice the decoded size (a JPEG's next DCT scale), within the decoded-pixel
    cap; None where the cap does not allow it."""
    long_side = math.ceil(max(decoded.pixels.shape[:2]) * 2)
    try:
        sharper = decode_reduced(data, **face.decode_limits, long_side=long_side)
    except ImageError:
        return None
    factor = decoded.scale / sharper.scale
    return (sharper.pixels, factor) if factor > 1.0 else None
