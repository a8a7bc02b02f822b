"""Safe decoding of untrusted image bytes into the BGR arrays the face engine takes.

Every photo and selfie arrives from outside, so decoding is defensive: the byte cap is checked
before Pillow sees anything, the pixel cap is checked from the header (Pillow's `open` is lazy and
reads only the header) before the pixels are decoded, and only the formats FacePass accepts are
parsed at all. Failures raise one typed hierarchy whose `reason` is stable and machine-readable,
so services map them to 4xx answers without parsing messages.
"""

from __future__ import annotations

import functools
import io
import math
import re
from dataclasses import dataclass
from typing import Any, Final, Literal

import cv2
import numpy as np
import numpy.typing as npt
import pillow_heif
from PIL import Image, ImageFile, UnidentifiedImageError

ImageReason = Literal[
    "too_many_bytes",
    "too_many_pixels",
    "empty",
    "not_an_image",
    "unsupported_type",
    "corrupt",
    "truncated",
]

# The one Pillow parser each sniffed type may reach; no other decoder ever sees untrusted bytes.
# HEIF is pillow-heif's opener.
_PARSERS: Final = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "heic": "HEIF"}
_HEIC_BRANDS: Final = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


class ImageError(ValueError):
    """Bad image input. `reason` is a stable machine-readable code (see `ImageReason`)."""

    def __init__(self, message: str, *, reason: ImageReason) -> None:
        super().__init__(message)
        self.reason: ImageReason = reason


class ImageTooLargeError(ImageError):
    """Over the byte cap or the pixel cap (HTTP 413)."""


class UnsupportedImageError(ImageError):
    """Empty, not an image, or a type FacePass does not take (HTTP 415)."""


class CorruptImageError(ImageError):
    """A supported type whose data is truncated or broken (HTTP 422)."""


def sniff_image_type(data: bytes) -> str | None:
    """The image type from magic bytes: jpeg, png, webp, gif or heic; None for anything else.

    Cheap enough for the ingest service to reject non-images before storing them.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIC_BRANDS:
        return "heic"
    return None


@functools.cache
def _register_heif() -> None:
    pillow_heif.register_heif_opener()


def _checked_kind(data: bytes, max_bytes: int) -> str:
    """The byte cap and the type, checked before any parser sees the bytes."""
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"image is {len(data)} bytes, the limit is {max_bytes}", reason="too_many_bytes"
        )
    if not data:
        raise UnsupportedImageError("image is empty", reason="empty")
    kind = sniff_image_type(data)
    if kind is None:
        raise UnsupportedImageError(
            "not a JPEG, PNG, WebP, GIF or HEIC image", reason="not_an_image"
        )
    if kind == "heic":
        _register_heif()
    return kind


def _set_pillow_guard(max_pixels: int) -> None:
    """Keep Pillow's own bomb guard in step with ours.

    `Image.MAX_IMAGE_PIXELS` is process-wide; every caller passes the same configured cap, so
    the assignment is idempotent. Pillow raises `DecompressionBombError` above twice the value,
    which we map to `ImageTooLargeError`; our own header check rejects anything above the cap.
    """
    if max_pixels != Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


_ORIENTATION = 0x0112  # the EXIF tag


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """A decoded image and how much it was reduced: `scale` original pixels per decoded pixel
    (1.0 unless a JPEG was decoded reduced). Coordinates found on `pixels` times `scale` are in
    the original (EXIF-upright) image."""

    pixels: npt.NDArray[np.uint8]
    scale: float
    #: The whole image's upright (EXIF-applied) width and height, before any reduction.
    size: tuple[int, int] = (0, 0)


def decode_image(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    long_side: int | None = None,
    max_decoded_pixels: int | None = None,
) -> npt.NDArray[np.uint8]:
    """Decode untrusted bytes into a BGR uint8 array of shape (H, W, 3); see `decode_reduced`."""
    return decode_reduced(
        data,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        long_side=long_side,
        max_decoded_pixels=max_decoded_pixels,
    ).pixels


def decode_reduced(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    long_side: int | None = None,
    max_decoded_pixels: int | None = None,
) -> DecodedImage:
    """Decode untrusted bytes into BGR pixels, a JPEG reduced to what its consumer needs.

    `long_side` lets a JPEG decode at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) as long as
    its long side stays at least `long_side` pixels: a 24 MP photo whose largest detector pass
    is 2560 px decodes at half size (~5x faster), a 12 MP selfie for a 640 px pass at a
    quarter. Other formats decode whole.

    Two pixel caps guard against decompression bombs: `max_pixels` on the header (what the
    file claims), `max_decoded_pixels` (default: `max_pixels`) on what is actually decoded, so
    a 100 MP JPEG is accepted when it decodes reduced, and a 100 MP PNG is not.

    The first frame of an animation is used, EXIF orientation is applied, alpha is flattened
    onto white and any colour mode (CMYK, grey, palette, 16-bit) becomes 8-bit colour.

    Raises:
        ImageTooLargeError: more than `max_bytes` bytes, or over a pixel cap.
        UnsupportedImageError: empty, not an image, or not JPEG/PNG/WebP/GIF/HEIC.
        CorruptImageError: a supported image that cannot be decoded (truncated, damaged).
    """
    kind = _checked_kind(data, max_bytes)
    _set_pillow_guard(max_pixels)
    decoded_cap = max_decoded_pixels or max_pixels
    # Truncated files must fail, never decode half a picture; this is Pillow's default.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    try:
        with Image.open(io.BytesIO(data), formats=[_PARSERS[kind]]) as im:
            width, height = im.size
            _check_pixels(width, height, max_pixels)
            if long_side is not None and kind == "jpeg" and max(width, height) > long_side:
                ratio = long_side / max(width, height)
                im.draft("RGB", (math.ceil(width * ratio), math.ceil(height * ratio)))
            decoded_w, decoded_h = im.size
            if decoded_w * decoded_h > decoded_cap:
                raise ImageTooLargeError(
                    f"image is {width}x{height} pixels and would decode to "
                    f"{decoded_w}x{decoded_h}; the limit is {decoded_cap} decoded pixels "
                    "(FACE_MAX_DECODED_PIXELS)",
                    reason="too_many_pixels",
                )
            im.load()
            orientation = im.getexif().get(_ORIENTATION, 1)
            rgb = np.asarray(_to_rgb(im), dtype=np.uint8)
    except Image.DecompressionBombError as exc:
        raise _bomb_error(exc, max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise CorruptImageError(f"damaged {kind} image", reason="corrupt") from exc
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow signals truncation and damage with OSError/SyntaxError/ValueError/EOFError.
        reason: ImageReason = "truncated" if "truncated" in str(exc) else "corrupt"
        raise CorruptImageError(f"cannot decode {kind} image: {exc}", reason=reason) from exc
    array = upright_bgr(rgb, orientation)
    # Orientations 5-8 turn the picture a quarter: the upright size swaps.
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return DecodedImage(array, max(width, height) / max(decoded_w, decoded_h), upright)


# EXIF orientation -> the OpenCV operations that show the stored pixels upright, in order:
# ("flip", code) is cv2.flip, ("rotate", code) cv2.rotate, ("transpose", 0) cv2.transpose.
_UPRIGHT: Final[dict[int, tuple[tuple[str, int], ...]]] = {
    2: (("flip", 1),),
    3: (("rotate", cv2.ROTATE_180),),
    4: (("flip", 0),),
    5: (("transpose", 0),),
    6: (("rotate", cv2.ROTATE_90_CLOCKWISE),),
    7: (("transpose", 0), ("rotate", cv2.ROTATE_180)),
    8: (("rotate", cv2.ROTATE_90_COUNTERCLOCKWISE),),
}


def upright_bgr(rgb: npt.NDArray[np.uint8], orientation: object) -> npt.NDArray[np.uint8]:
    """RGB pixels as stored -> contiguous BGR pixels as shown (EXIF orientation applied).

    What `ImageOps.exif_transpose` and a channel flip give, in OpenCV's kernels: on a 12 MP
    photo decoded at half size they took ~40 ms (a numpy channel flip ~10 ms, Pillow's
    transpose more); these take ~2 ms. An unknown or missing orientation is left as stored.
    """
    bgr: npt.NDArray[Any] = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    steps = _UPRIGHT.get(orientation, ()) if isinstance(orientation, int) else ()
    for operation, code in steps:
        if operation == "flip":
            bgr = cv2.flip(bgr, code)
        elif operation == "rotate":
            bgr = cv2.rotate(bgr, code)
        else:
            bgr = cv2.transpose(bgr)
    return np.ascontiguousarray(bgr, dtype=np.uint8)


def _check_pixels(
    width: int, height: int, max_pixels: int, setting: str = "FACE_MAX_IMAGE_PIXELS"
) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} pixels, the limit is {max_pixels} pixels ({setting})",
            reason="too_many_pixels",
        )


def _bomb_error(exc: Image.DecompressionBombError, max_pixels: int) -> ImageTooLargeError:
    """Our limit, not Pillow's: Pillow refuses at twice `Image.MAX_IMAGE_PIXELS` and says so."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1))} pixels" if found else "too many pixels"
    return ImageTooLargeError(
        f"image is {size}, the limit is {max_pixels} pixels (FACE_MAX_IMAGE_PIXELS)",
        reason="too_many_pixels",
    )


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is composited onto white."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        im = _high_depth_to_l(im)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def _high_depth_to_l(im: Image.Image) -> Image.Image:
    """16-bit/32-bit grey to 8-bit grey; Pillow's own convert would clip instead of scale."""
    values = np.asarray(im, dtype=np.float64)
    peak = 65535.0 if values.max(initial=0.0) > 255.0 else 255.0
    scaled = np.clip(values * (255.0 / peak), 0.0, 255.0).astype(np.uint8)
    return Image.fromarray(scaled)


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: the sniffed type and the stored (pre-rotation) size."""

    kind: str
    width: int
    height: int


def probe_image(
    data: bytes, *, max_bytes: int, max_pixels: int, max_decoded_pixels: int | None = None
) -> ImageInfo:
    """Check bytes, type and pixel count from the header alone (no pixel is decoded).

    For the ingest service, which must refuse bad uploads before storing them without paying
    for a full decode; the embedder decodes later with `decode_image`. Same errors.
    """
    kind = _checked_kind(data, max_bytes)
    try:
        with Image.open(io.BytesIO(data), formats=[_PARSERS[kind]]) as im:
            width, height = im.size
    except Image.DecompressionBombError as exc:
        raise _bomb_error(exc, max_pixels) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImageError(f"damaged {kind} image", reason="corrupt") from exc
    if not _is_complete(kind, data):
        raise CorruptImageError(f"truncated {kind} image: its end is missing", reason="truncated")
    _check_pixels(width, height, max_pixels)
    if kind != "jpeg" and max_decoded_pixels is not None:
        # Only a JPEG can be decoded reduced: any other type decodes whole.
        _check_pixels(width, height, max_decoded_pixels, "FACE_MAX_DECODED_PIXELS")
    return ImageInfo(kind=kind, width=width, height=height)


#: JPEG markers that stand alone (no length field): TEM, RST0-7, SOI.
_STANDALONE_MARKERS: Final = frozenset({0x01, *range(0xD0, 0xD8), 0xD8})


def _jpeg_scan_start(data: bytes) -> int | None:
    """Offset of the first start-of-scan (SOS) of the main image, walking the header's
    segments by their lengths (so an EXIF thumbnail's own markers are skipped); None if the
    header ends first."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == 0xDA:
            return pos
        if marker in _STANDALONE_MARKERS:
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return None


def _is_complete(kind: str, data: bytes) -> bool:
    """Whether the file ends where its format says, checked without decoding a pixel.

    A cut-off upload still has a valid header, so the header probe alone would accept it and
    the embedder would fail on it later. A JPEG must have its end-of-image marker (FFD9) after
    the main image's first scan (entropy-coded data cannot contain one; bytes appended after
    it, such as a motion photo's video, are allowed); a PNG its IEND chunk. Other types are
    checked when the embedder decodes them.
    """
    if kind == "jpeg":
        scan = _jpeg_scan_start(data)
        return scan is not None and data.find(b"\xff\xd9", scan) != -1
    if kind == "png":
        return data.rfind(b"IEND") != -1
    return True
