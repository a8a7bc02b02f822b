"""Small faces of a photo decoded reduced are aligned from the photo decoded larger
(libs/common/face/photo.py): the embedding of a 40 px face then matches its owner, the sharper
decode happens once per photo and only when a face needs it, and the minimum face size counts
in the photo's own pixels."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
from PIL import Image

from libs.common.face import FaceEngine, PhotoFaces
from libs.common.face.photo import PhotoInput, decode_photo
from libs.common.imaging import decode_reduced
from libs.common.settings import FaceSettings

from .conftest import INSIGHTFACE_IMAGES

pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

CAPS = {"max_image_bytes": 200_000_000}


@cache
def crowd_jpeg(face_scale: float) -> bytes:
    """A 6000x4000 (24 MP) JPEG holding t1 shrunk so its six faces are ~100 px x face_scale."""
    canvas = Image.new("RGB", (6000, 4000), (96, 110, 90))
    with Image.open(INSIGHTFACE_IMAGES / "t1.jpg") as t1:
        small = t1.convert("RGB").resize((round(1280 * face_scale), round(886 * face_scale)))
    canvas.paste(small, (2500, 1800))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=95)
    return out.getvalue()


def same_faces(found: PhotoFaces, reference: PhotoFaces) -> list[float]:
    """Cosine of each face's embedding to that of the reference face nearest to its box."""
    cosines = []
    for face in found.faces:
        box = np.array(face.bbox)
        twin = min(reference.faces, key=lambda f: float(np.abs(np.array(f.bbox) - box).sum()))
        cosines.append(float(face.embedding @ twin.embedding))
    return cosines


def test_a_small_face_is_embedded_from_the_sharper_decode(engine: FaceEngine) -> None:
    """t1's faces at ~40 px in a 24 MP photo are ~20 px in its half-size decode: embedded from
    the sharper decode they match the embeddings from the whole photo (measured: cosine
    0.96-1.00), from the half-size pixels they do not (0.83-0.91)."""
    settings = engine.settings
    data = crowd_jpeg(0.42)
    decoded, photo = decode_photo(data, settings)
    assert decoded.scale == 2.0 and photo.sharper is not None
    whole = engine.analyze(decode_reduced(data, **settings.decode_limits).pixels)

    calls = []
    counted = PhotoInput(photo.pixels, photo.scale, lambda: calls.append(1) or photo.sharper())
    sharp = engine.analyze(counted).scaled(2.0)
    blurred = FaceEngine(settings.model_copy(update={"sharper_crop_below": 0}), engine.pack)
    blurred.detector, blurred.embedder = engine.detector, engine.embedder
    reduced = blurred.analyze(photo).scaled(2.0)
    assert calls == [1]  # decoded again once, for all six faces
    assert len(sharp.faces) == len(reduced.faces) == len(whole.faces) == 6
    assert min(same_faces(sharp, whole)) >= 0.95
    assert float(np.mean(same_faces(reduced, whole))) <= 0.9


def test_large_faces_never_decode_again(engine: FaceEngine) -> None:
    _, photo = decode_photo(crowd_jpeg(2.0), engine.settings)  # faces ~200 px, ~100 decoded
    calls: list[int] = []
    engine.analyze(PhotoInput(photo.pixels, photo.scale, lambda: calls.append(1) or None))
    assert calls == []


@pytest.mark.parametrize(
    ("size", "decoded_side", "sharper_side"),
    [((4000, 3000), 2000, 4000), ((12000, 8400), 3000, 6000), ((1200, 900), 1200, None)],
    ids=["12MP", "100MP-within-the-cap", "not-reduced"],
)
def test_the_sharper_decode_is_the_next_dct_scale_within_the_cap(
    size: tuple[int, int], decoded_side: int, sharper_side: int | None
) -> None:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 140, 200)).save(out, "JPEG", quality=50)
    decoded, photo = decode_photo(out.getvalue(), FaceSettings(_env_file=None, **CAPS))
    assert max(decoded.pixels.shape[:2]) == decoded_side
    if sharper_side is None:
        assert photo.sharper is None
        return
    assert photo.sharper is not None
    got = photo.sharper()
    assert got is not None
    pixels, factor = got
    assert max(pixels.shape[:2]) == sharper_side and factor == sharper_side / decoded_side


def test_the_cap_on_decoded_pixels_stops_the_sharper_decode() -> None:
    out = io.BytesIO()
    Image.new("RGB", (4000, 3000)).save(out, "JPEG", quality=50)
    face = FaceSettings(_env_file=None, max_decoded_pixels=5_000_000)  # 2000x1500 fits, 4000 not
    _, photo = decode_photo(out.getvalue(), face)
    assert photo.sharper is not None and photo.sharper() is None


def test_the_minimum_face_size_counts_in_the_photos_own_pixels(engine: FaceEngine) -> None:
    """t1's faces (97-112 px wide) against a 110 px minimum: too small as they are, kept when
    the given pixels are a half-size decode of a photo in which they are twice that."""
    with Image.open(INSIGHTFACE_IMAGES / "t1.jpg") as t1:
        pixels = np.asarray(t1.convert("RGB"))[:, :, ::-1].copy()
    tiny = engine.settings.model_copy(update={"min_face_size": 110})
    strict = FaceEngine(tiny, engine.pack)
    strict.detector, strict.embedder = engine.detector, engine.embedder
    as_is = strict.analyze(PhotoInput(pixels, 1.0))
    assert {r.reason for r in as_is.rejected} >= {"too_small"}
    assert len(strict.analyze(PhotoInput(pixels, 2.0)).faces) == 6  # the photo is twice that
