"""A selfie from bytes to its embedded face: the one way the search path, the benchmarks and
the tools prepare a selfie, so what is measured is what is served.

Selfies are decoded reduced (libjpeg DCT scaling) to no less than the selfie detector pass
(FACE_SELFIE_DETECTION_SIZE) on the long side: a 12 MP phone selfie decodes at a quarter of its
size, ~12x faster than whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.common.face.engine import FaceEngine
from libs.common.face.results import SelfieResult
from libs.common.imaging import decode_reduced
from libs.common.settings import FaceSettings


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
    decoded = decode_reduced(data, **face.decode_limits, long_side=face.selfie_detection_size)
    return PreparedSelfie(engine.selfie(decoded.pixels), decoded.scale)
