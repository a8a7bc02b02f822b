"""A selfie from bytes to its embedded face: the one way the search path, the benchmarks and
the tools prepare a selfie, so what is measured is what is served.

Selfies are decoded reduced (libjpeg DCT scaling) to no less than `SELFIE_DECODE_SIDE` on each
side: the detector sees a few hundred pixels, and a 12 MP phone selfie decodes ~10x faster.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.common.face.engine import FaceEngine
from libs.common.face.results import SelfieResult
from libs.common.imaging import decode_image, probe_image
from libs.common.settings import FaceSettings

#: Selfies are decoded at no less than this long side (JPEG DCT scaling; see decode_image).
SELFIE_DECODE_SIDE = 1280


@dataclass(frozen=True)
class PreparedSelfie:
    """The selfie's face and the factor from decoded to original pixels (for its bbox)."""

    result: SelfieResult
    scale: float


def selfie_from_bytes(engine: FaceEngine, data: bytes, face: FaceSettings) -> PreparedSelfie:
    """Decode untrusted selfie bytes (within the configured caps) and find the selfie's face.

    CPU-bound: run it off the event loop. Raises `ImageError` for bad bytes and `NoFaceError`
    when no face is found.
    """
    limits = {"max_bytes": face.max_image_bytes, "max_pixels": face.max_image_pixels}
    original = probe_image(data, **limits)
    image = decode_image(data, **limits, reduce_to=SELFIE_DECODE_SIDE)
    # EXIF rotation may have swapped the sides; compare like with like.
    scale = max(original.width, original.height) / max(image.shape[0], image.shape[1])
    return PreparedSelfie(engine.selfie(image), scale)
