"""Photos decoded at the size their passes need: JPEG DCT scaling, EXIF rotation, the pixel
caps, and faces found on the reduced image stored in the photo's own pixels."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
from PIL import Image, ImageOps

from libs.common.face import FaceEngine
from libs.common.imaging import ImageTooLargeError, decode_reduced, probe_image
from libs.common.settings import FaceSettings
from services.embedder import steps

from .conftest import INSIGHTFACE_IMAGES

pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

CAPS = {"max_bytes": 200_000_000, "max_pixels": 120_000_000, "max_decoded_pixels": 60_000_000}


def jpeg(width: int, height: int, orientation: int | None = None, quality: int = 80) -> bytes:
    image = Image.new("RGB", (width, height), (90, 140, 200))
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    image.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize(
    ("size", "long_side", "decoded", "scale"),
    [
        ((4032, 3024), 640, (1008, 756), 4.0),  # a phone selfie for the 640 px pass
        ((6000, 4000), 2560, (3000, 2000), 2.0),  # 24 MP for the 2560 px detail pass
        ((4000, 3000), 2560, (4000, 3000), 1.0),  # half would be under 2560: whole
        ((500, 500), 2560, (500, 500), 1.0),
    ],
)
def test_a_jpeg_decodes_as_small_as_its_largest_pass_allows(
    size: tuple[int, int], long_side: int, decoded: tuple[int, int], scale: float
) -> None:
    image = decode_reduced(jpeg(*size), **CAPS, long_side=long_side)
    assert image.pixels.shape[1::-1] == decoded
    assert image.scale == scale


def test_exif_rotation_is_applied_after_the_reduction() -> None:
    image = decode_reduced(jpeg(4032, 3024, orientation=6), **CAPS, long_side=640)
    assert image.pixels.shape[:2] == (1008, 756)  # upright: portrait
    assert image.scale == 4.0


@cache
def big_jpeg(width: int, height: int) -> bytes:
    return jpeg(width, height, quality=50)


@pytest.mark.parametrize("size", [(9504, 6336), (12000, 8400)], ids=["61MP", "100MP"])
def test_61_and_100_megapixel_jpegs_are_accepted_and_decoded_reduced(
    size: tuple[int, int],
) -> None:
    face = FaceSettings(_env_file=None, max_image_bytes=200_000_000)
    data = big_jpeg(*size)
    assert probe_image(data, **face.decode_limits).width == size[0]
    image, _, _ = steps.decode(data, face)
    assert max(image.pixels.shape[:2]) >= face.photo_decode_side
    assert image.pixels.shape[0] * image.pixels.shape[1] <= face.max_decoded_pixels
    assert image.scale in (2.0, 4.0)


def test_the_decoded_pixel_cap_is_the_bomb_guard() -> None:
    caps = {"max_bytes": 10**8, "max_pixels": 10**8, "max_decoded_pixels": 100_000}
    with pytest.raises(ImageTooLargeError, match="would decode to 1000x1000"):
        decode_reduced(jpeg(1000, 1000), **caps)  # no reduction asked: too many to decode
    assert decode_reduced(jpeg(1000, 1000), **caps, long_side=200).pixels.shape[:2] == (250, 250)
    png = io.BytesIO()
    Image.new("RGB", (1000, 1000)).save(png, "PNG")
    with pytest.raises(ImageTooLargeError):  # only a JPEG decodes reduced
        probe_image(png.getvalue(), **caps)
    with pytest.raises(ImageTooLargeError):
        decode_reduced(png.getvalue(), **caps, long_side=300)


def test_faces_found_on_a_reduced_decode_land_on_the_original_pixels(
    engine: FaceEngine,
) -> None:
    """t1 upscaled 4x (5120 px) decodes at half size for the 2560 px pass; the faces, scaled
    back, are where they are in the upscaled photo."""
    with Image.open(INSIGHTFACE_IMAGES / "t1.jpg") as im:
        small = im.convert("RGB")
    out = io.BytesIO()
    small.resize((small.width * 4, small.height * 4), Image.Resampling.LANCZOS).save(
        out, "JPEG", quality=92
    )
    decoded, _, _ = steps.decode(out.getvalue(), engine.settings)
    assert decoded.scale == 2.0
    faces = engine.analyze(decoded.pixels).scaled(decoded.scale)
    reference = engine.analyze(np.asarray(small)[:, :, ::-1].copy())
    assert (faces.width, faces.height) == (small.width * 4, small.height * 4)
    assert len(faces.faces) == len(reference.faces) == 6
    found = sorted(f.bbox for f in faces.faces)
    expected = sorted(tuple(v * 4 for v in f.bbox) for f in reference.faces)
    for got, want in zip(found, expected, strict=True):
        assert _iou(got, want) > 0.9, (got, want)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


@pytest.mark.parametrize("orientation", range(10))
def test_every_exif_orientation_is_shown_as_pillow_shows_it(orientation: int) -> None:
    """OpenCV's kernels turn the pixels (fast); Pillow's exif_transpose is the reference."""
    rng = np.random.default_rng(orientation)
    stored = Image.fromarray(rng.integers(0, 256, (48, 64, 3), np.uint8))
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation  # 0 and 9: no or an unknown orientation, left as stored
    out = io.BytesIO()
    stored.save(out, "PNG", exif=exif.tobytes())
    decoded = decode_reduced(out.getvalue(), **CAPS)
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(out.getvalue()))).convert("RGB")
    assert np.array_equal(decoded.pixels, np.asarray(shown)[:, :, ::-1])
    assert decoded.pixels.flags["C_CONTIGUOUS"]
    assert decoded.size == shown.size
