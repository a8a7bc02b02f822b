"""Safe decoding: every accepted format, orientation, colour modes, and every kind of bad input."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from libs.common.imaging import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
    decode_image,
    probe_image,
    sniff_image_type,
)

CAPS = {"max_bytes": 5_000_000, "max_pixels": 20_000_000}


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    if fmt == "HEIF":
        pillow_heif.register_heif_opener()
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height: a decompression bomb's calling card."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


RED = Image.new("RGB", (40, 30), (255, 0, 0))


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"), ("HEIF", "heic")],
)
def test_each_format_decodes_to_bgr(fmt: str, kind: str) -> None:
    data = encode(RED, fmt)
    assert sniff_image_type(data) == kind
    array = decode_image(data, **CAPS)
    assert array.shape == (30, 40, 3) and array.dtype == np.uint8
    blue, green, red = array[15, 20].astype(int)
    assert red > 240 and green < 15 and blue < 15  # BGR order, as insightface wants


def test_exif_orientation_is_applied() -> None:
    wide = Image.new("RGB", (60, 20), (0, 0, 0))
    wide.paste((255, 255, 255), (0, 0, 10, 20))  # white stripe on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers turn it 90 degrees clockwise
    array = decode_image(encode(wide, "JPEG", exif=exif), **CAPS)
    assert array.shape[:2] == (60, 20)
    assert array[:8].mean() > 200 and array[-8:].mean() < 50  # the stripe is now on top


def test_first_frame_of_an_animation() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(data, **CAPS)[8, 8].tolist() == [0, 255, 0]


def test_alpha_is_flattened_onto_white() -> None:
    transparent = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert decode_image(encode(transparent, "PNG"), **CAPS)[4, 4].tolist() == [255, 255, 255]


@pytest.mark.parametrize(
    ("image", "fmt"),
    [
        (Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG"),
        (Image.new("L", (8, 8), 255), "PNG"),
        (Image.new("P", (8, 8), 0), "PNG"),
    ],
)
def test_colour_modes_become_three_channels(image: Image.Image, fmt: str) -> None:
    array = decode_image(encode(image, fmt), **CAPS)
    assert array.shape == (8, 8, 3)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    grey16 = Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16))
    array = decode_image(encode(grey16, "PNG"), **CAPS)
    assert 120 <= int(array[0, 0, 0]) <= 135


def test_byte_cap_is_checked_first() -> None:
    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(b"x" * 2000, max_bytes=1000, max_pixels=10_000)
    assert caught.value.reason == "too_many_bytes"


# Pillow warns between its limit (= our cap) and twice it, just before our own check raises.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("size", [(50_000, 50_000), (5_000, 5_000)])
def test_pixel_bomb_rejected_from_the_header(size: tuple[int, int]) -> None:
    data = png_header_only(*size)
    assert len(data) < 100
    for check in (decode_image, probe_image):
        with pytest.raises(ImageTooLargeError) as caught:
            check(data, max_bytes=1_000_000, max_pixels=20_000_000)
        assert caught.value.reason == "too_many_pixels"
        # Our limit and the setting that sets it, not Pillow's (twice as high) guard.
        message = str(caught.value)
        assert "limit is 20000000 pixels (FACE_MAX_IMAGE_PIXELS)" in message, message
        assert str(size[0] * size[1]) in message or f"{size[0]}x{size[1]}" in message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_cap_applies_to_real_images() -> None:
    with pytest.raises(ImageTooLargeError):
        decode_image(
            encode(Image.new("RGB", (200, 200)), "PNG"), max_bytes=10**6, max_pixels=30_000
        )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, I am a text file\n", "not_an_image"),
        (b"%PDF-1.7\n", "not_an_image"),
    ],
)
def test_non_images_are_unsupported(data: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedImageError) as caught:
        decode_image(data, **CAPS)
    assert caught.value.reason == reason


def test_truncated_jpeg_is_corrupt() -> None:
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    data = encode(noisy, "JPEG")
    with pytest.raises(CorruptImageError) as caught:
        decode_image(data[: len(data) // 2], **CAPS)
    assert caught.value.reason in {"truncated", "corrupt"}


def test_damaged_png_is_corrupt() -> None:
    data = bytearray(encode(RED, "PNG"))
    data[40:60] = b"\x00" * 20
    with pytest.raises(CorruptImageError):
        decode_image(bytes(data), **CAPS)


def test_errors_share_one_value_error_base() -> None:
    for error in (ImageTooLargeError, UnsupportedImageError, CorruptImageError):
        assert issubclass(error, ImageError) and issubclass(error, ValueError)


#: Noise, so the scan data is long enough to be cut inside it.
NOISY = Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 400, 3), np.uint8))


def _exif_jpeg(**params: object) -> bytes:
    """A JPEG whose EXIF block carries a thumbnail JPEG (with its own scan and end marker)."""
    thumbnail = encode(RED.resize((32, 32)), "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6
    body = encode(NOISY, "JPEG", exif=exif, **params)
    # Splice the thumbnail into an APP1 segment just after SOI, as cameras store it.
    app1 = b"Exif\x00\x00" + thumbnail
    return body[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + body[2:]


@pytest.mark.parametrize(
    "complete",
    [
        encode(NOISY, "JPEG"),
        encode(NOISY, "JPEG", progressive=True),
        _exif_jpeg(),
        encode(NOISY, "PNG"),
        # A motion photo: the video is appended after the JPEG's end marker.
        encode(NOISY, "JPEG") + b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 512,
    ],
    ids=["baseline", "progressive", "exif-thumbnail", "png", "motion-photo"],
)
def test_probe_accepts_complete_images(complete: bytes) -> None:
    assert probe_image(complete, **CAPS).width > 0


@pytest.mark.parametrize(
    "truncated",
    [
        encode(NOISY, "JPEG")[:-40],
        encode(NOISY, "JPEG", progressive=True)[:-40],
        # Cut inside the main image: the thumbnail's end marker must not pass for its end.
        _exif_jpeg()[:-200],
        encode(NOISY, "PNG")[:-20],
    ],
    ids=["baseline", "progressive", "exif-thumbnail", "png"],
)
def test_probe_refuses_truncated_images_from_the_header_alone(truncated: bytes) -> None:
    """An upload cut off in transit keeps a valid header; the door must still refuse it."""
    with pytest.raises(CorruptImageError) as caught:
        probe_image(truncated, **CAPS)
    assert caught.value.reason == "truncated"
