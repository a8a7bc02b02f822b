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
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pillow_heif
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

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


def decode_image(
    data: bytes, *, max_bytes: int, max_pixels: int, reduce_to: int | None = None
) -> npt.NDArray[np.uint8]:
    """Decode untrusted bytes into a BGR uint8 array of shape (H, W, 3).

    `reduce_to` lets a JPEG decode at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) while both
    sides stay at least `reduce_to` pixels: a 12 MP selfie decodes ~10x faster. Callers that
    need coordinates in the original image scale them by the width ratio.

    The first frame of an animation is used, EXIF orientation is applied, alpha is flattened
    onto white and any colour mode (CMYK, grey, palette, 16-bit) becomes 8-bit colour.

    Raises:
        ImageTooLargeError: more than `max_bytes` bytes or `max_pixels` pixels.
        UnsupportedImageError: empty, not an image, or not JPEG/PNG/WebP/GIF/HEIC.
        CorruptImageError: a supported image that cannot be decoded (truncated, damaged).
    """
    kind = _checked_kind(data, max_bytes)
    _set_pillow_guard(max_pixels)
    # Truncated files must fail, never decode half a picture; this is Pillow's default.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    try:
        with Image.open(io.BytesIO(data), formats=[_PARSERS[kind]]) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise ImageTooLargeError(
                    f"image is {width}x{height} pixels, the limit is {max_pixels} pixels",
                    reason="too_many_pixels",
                )
            if reduce_to is not None and kind == "jpeg":
                im.draft("RGB", (reduce_to, reduce_to))
            im.load()
            rgb = _to_rgb(ImageOps.exif_transpose(im))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(str(exc), reason="too_many_pixels") from exc
    except UnidentifiedImageError as exc:
        raise CorruptImageError(f"damaged {kind} image", reason="corrupt") from exc
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow signals truncation and damage with OSError/SyntaxError/ValueError/EOFError.
        reason: ImageReason = "truncated" if "truncated" in str(exc) else "corrupt"
        raise CorruptImageError(f"cannot decode {kind} image: {exc}", reason=reason) from exc
    array = np.asarray(rgb, dtype=np.uint8)
    return np.ascontiguousarray(array[:, :, ::-1])


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


def probe_image(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Check bytes, type and pixel count from the header alone (no pixel is decoded).

    For the ingest service, which must refuse bad uploads before storing them without paying
    for a full decode; the embedder decodes later with `decode_image`. Same errors.
    """
    kind = _checked_kind(data, max_bytes)
    try:
        with Image.open(io.BytesIO(data), formats=[_PARSERS[kind]]) as im:
            width, height = im.size
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(str(exc), reason="too_many_pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImageError(f"damaged {kind} image", reason="corrupt") from exc
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} pixels, the limit is {max_pixels} pixels",
            reason="too_many_pixels",
        )
    return ImageInfo(kind=kind, width=width, height=height)
