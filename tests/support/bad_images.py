"""Hostile and unusual images, built in memory (nothing is shipped)."""

from __future__ import annotations

import functools
import io
import struct
import zlib

from PIL import Image

from tests.support.data import T1, TOM_HANKS
from tests.support.reliability import encode


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@functools.cache
def png_bomb(side: int = 10_000) -> bytes:
    """A real side x side grey PNG (100 megapixels at 10,000): every pixel is there, and it
    compresses to ~120 kB. Decoding it would take 100 MB for the pixels alone."""
    row = b"\x00" + b"\x80" * side
    packer = zlib.compressobj(6)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b"")


def gif_header_only(width: int = 65_535, height: int = 65_535) -> bytes:
    """A GIF whose screen and one image claim 65535 x 65535 pixels, in 40 bytes."""
    screen = b"GIF89a" + struct.pack("<HH", width, height) + b"\x80\x00\x00" + b"\x00" * 6
    image = b"\x2c" + struct.pack("<HHHH", 0, 0, width, height) + b"\x00" + b"\x02\x02\x44\x01\x00"
    return screen + image + b"\x3b"


def jpeg_header_only(width: int = 65_000, height: int = 65_000) -> bytes:
    """A real small JPEG whose frame header (SOF0) is patched to claim huge dimensions."""
    data = bytearray(encode(Image.new("RGB", (16, 16), (90, 90, 90))))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_header_only(width: int = 16_384, height: int = 16_384) -> bytes:
    """A WebP (VP8X) whose canvas claims width x height, around a tiny real frame."""
    small = encode(Image.new("RGB", (16, 16), (90, 90, 90)), "WEBP")
    frame = small[12:]  # the VP8/VP8L chunk of a simple WebP
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + frame
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _canvas() -> Image.Image:
    """One clear face (Tom Hanks) on a plain 260 x 200 canvas."""
    canvas = Image.new("RGB", (260, 200), (180, 200, 220))
    with Image.open(TOM_HANKS) as tom:
        canvas.paste(tom.convert("RGB").resize((140, 140)), (60, 30))
    return canvas


def one_face_jpeg() -> bytes:
    return encode(_canvas())


def png_with_alpha() -> bytes:
    """RGBA: the face opaque, a transparent band on the left."""
    rgba = _canvas().convert("RGBA")
    alpha = Image.new("L", rgba.size, 255)
    alpha.paste(0, (0, 0, 50, rgba.height))
    rgba.putalpha(alpha)
    return encode(rgba, "PNG")


def cmyk_jpeg() -> bytes:
    return encode(_canvas().convert("CMYK"), "JPEG")


def animated(fmt: str) -> bytes:
    """A three-frame GIF or WebP: the face in the first frame, blank frames after it."""
    blank = Image.new("RGB", (260, 200), (10, 10, 10))
    return encode(_canvas(), fmt, save_all=True, append_images=[blank, blank], duration=100, loop=0)


def exif_rotated() -> bytes:
    """The pixels stored turned a quarter (Orientation 6 asks viewers to turn them back):
    without the EXIF rotation the face engine finds no face in this photo."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(_canvas().transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif.tobytes())


def exif_rotated_stripped() -> bytes:
    return encode(_canvas().transpose(Image.Transpose.ROTATE_90), "JPEG")


def no_face() -> bytes:
    return encode(Image.new("RGB", (320, 240), (120, 160, 90)))


@functools.cache
def two_hundred_faces() -> bytes:
    """The same face tiled 20 x 10 times: more than MAX_FACES_PER_PHOTO (100)."""
    with Image.open(TOM_HANKS) as tom:
        face = tom.convert("RGB").resize((64, 64))
    grid = Image.new("RGB", (20 * 64, 10 * 64), (200, 200, 200))
    for i in range(200):
        grid.paste(face, ((i % 20) * 64, (i // 20) * 64))
    return encode(grid, quality=92)


def truncated_jpeg() -> bytes:
    data = T1.read_bytes()
    return data[: len(data) // 3]


def text_as_jpeg() -> bytes:
    return b"Dear FacePass, this is not a photo.\n" * 20


def mode_of(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as im:
        return im.mode
