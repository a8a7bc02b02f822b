"""A selfie from bytes to its embedded face: the one way the search path, the benchmarks and
the tools prepare a selfie, so what is measured is what is served.

Selfies are decoded reduced (libjpeg DCT scaling) to no less than the selfie detector pass
(FACE_SELFIE_DETECTION_SIZE, 480) on the long side: a 12 MP phone selfie decodes at an eighth of
its size. A selfie in which that finds no face is looked at once more at twice the size, so a
group photo of small faces still works as a selfie.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.common.face.engine import FaceEngine
from libs.common.face.errors import NoFaceError
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
    size = face.selfie_detection_size
    decoded = decode_reduced(data, **face.decode_limits, long_side=size)
    try:
        return PreparedSelfie(engine.selfie(decoded.pixels), decoded.scale)
    except NoFaceError:
        if decoded.scale == 1.0 and max(decoded.pixels.shape[:2]) <= size:
            raise  # the pass saw every pixel there is: nothing sharper to look at
    # A group photo sent as the selfie: its faces are too small at the selfie pass. One more
    # look at twice the size (a selfie without any face pays it too, as an error).
    decoded = decode_reduced(data, **face.decode_limits, long_side=2 * size)
    return PreparedSelfie(engine.selfie(decoded.pixels, size=2 * size), decoded.scale)
