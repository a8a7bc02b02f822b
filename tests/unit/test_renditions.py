"""Thumbnails and previews (libs/common/renditions.py): sizes, upright, no metadata, the
watermark where the settings put it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from libs.common.imaging import decode_reduced
from libs.common.renditions import make_renditions
from libs.common.settings import FaceSettings, RenditionSettings


def _decoded(image: Image.Image, **save: object) -> np.ndarray:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **save)
    return decode_reduced(out.getvalue(), **FaceSettings().decode_limits).pixels


def _opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    return Image.fromarray(np.stack([x, x[::-1, ::-1], np.full_like(x, 90)], axis=2))


def test_a_camera_photo_gets_a_400_px_thumbnail_and_a_1600_px_preview() -> None:
    pixels = _decoded(_gradient(3000, 2000))
    thumbnail, preview = make_renditions(pixels, RenditionSettings())
    assert (thumbnail.kind, thumbnail.width, thumbnail.height) == ("thumbnail", 400, 267)
    assert (preview.kind, preview.width, preview.height) == ("preview", 1600, 1067)
    assert _opened(preview.data).size == (1600, 1067) and _opened(preview.data).format == "JPEG"
    assert preview.content_type == "image/jpeg" and preview.extension == "jpg"
    assert len(thumbnail.data) < len(preview.data) < 600_000


def test_a_small_photo_is_never_enlarged() -> None:
    thumbnail, preview = make_renditions(_decoded(_gradient(300, 200)), RenditionSettings())
    assert (thumbnail.width, thumbnail.height) == (preview.width, preview.height) == (300, 200)


def test_webp_when_asked() -> None:
    settings = RenditionSettings(format="webp", preview_side=800)
    thumbnail, preview = make_renditions(_decoded(_gradient(1200, 900)), settings)
    assert _opened(preview.data).format == "WEBP" and preview.content_type == "image/webp"
    assert (preview.width, thumbnail.width) == (800, 400)


def test_the_copies_are_upright_and_carry_no_metadata() -> None:
    """A photo stored on its side with EXIF orientation 6 (and GPS, a camera serial) comes out
    upright, with none of its metadata."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    exif[0xA431] = "SERIAL-12345"  # BodySerialNumber
    exif.get_ifd(0x8825)[2] = (55.0, 45.0, 0.0)  # GPSLatitude
    stored = _gradient(1200, 800)  # landscape as stored; portrait when viewed
    thumbnail, preview = make_renditions(_decoded(stored, exif=exif), RenditionSettings())
    assert (preview.width, preview.height) == (800, 1200)
    for rendition in (thumbnail, preview):
        image = _opened(rendition.data)
        assert not image.getexif() and "exif" not in image.info and "icc_profile" not in image.info
        assert b"SERIAL-12345" not in rendition.data


def _watermark(tmp_path: Path) -> Path:
    path = tmp_path / "mark.png"
    Image.new("RGBA", (100, 40), (255, 0, 0, 255)).save(path)
    return path


@pytest.mark.parametrize(
    ("position", "corner"),
    [("bottom-right", (1500, 1150)), ("top-left", (100, 50)), ("center", (800, 600))],
)
def test_the_watermark_sits_where_the_settings_put_it_on_previews_only(
    tmp_path: Path, position: str, corner: tuple[int, int]
) -> None:
    grey = np.full((1200, 1600, 3), 128, np.uint8)
    settings = RenditionSettings(
        watermark_path=_watermark(tmp_path), watermark_position=position, watermark_opacity=0.8
    )
    thumbnail, preview = make_renditions(grey, settings)
    marked = np.asarray(_opened(preview.data).convert("RGB")).astype(int)
    x, y = corner
    red, green, _ = marked[y, x]
    assert red > 200 and green < 80  # 80% red over grey
    assert abs(marked[600, 20] - 128).max() < 8 or position == "center"  # elsewhere: untouched
    plain = np.asarray(_opened(thumbnail.data).convert("RGB")).astype(int)
    assert abs(plain - 128).max() < 8  # thumbnails stay unmarked


def test_a_missing_watermark_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        RenditionSettings(watermark_path=tmp_path / "nope.png")
