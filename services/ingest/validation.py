"""Checks on an upload before anything is stored: ids, size, image type and pixel count."""

from __future__ import annotations

from libs.common.events import is_valid_id
from libs.common.http.problems import ApiError
from libs.common.imaging import (
    ImageError,
    ImageInfo,
    ImageTooLargeError,
    UnsupportedImageError,
    probe_image,
)
from libs.common.metrics import PHOTOS_REJECTED
from libs.common.settings import FaceSettings

CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
}


def check_ids(**ids: str) -> None:
    """422 naming every id that is not 1-128 characters of `A-Za-z0-9._:-` (no `/`, no `..`)."""
    bad = [name for name, value in ids.items() if not is_valid_id(value)]
    if bad:
        PHOTOS_REJECTED.labels(reason="invalid_id").inc()
        raise ApiError(
            422,
            "invalid-id",
            f"invalid {', '.join(bad)}: use 1-128 characters of letters, digits and ._:- "
            "starting with a letter or digit",
            extra={"fields": bad},
        )


def check_image(data: bytes, face: FaceSettings) -> ImageInfo:
    """413 for too many bytes or pixels, 415 for what is not a supported image, 422 if corrupt;
    reads only the image header."""
    try:
        return probe_image(data, max_bytes=face.max_image_bytes, max_pixels=face.max_image_pixels)
    except ImageTooLargeError as exc:
        PHOTOS_REJECTED.labels(reason="too_large").inc()
        raise ApiError(413, "image-too-large", str(exc)) from exc
    except UnsupportedImageError as exc:
        PHOTOS_REJECTED.labels(reason="unsupported_image").inc()
        raise ApiError(415, "unsupported-image", str(exc)) from exc
    except ImageError as exc:
        PHOTOS_REJECTED.labels(reason="corrupt_image").inc()
        raise ApiError(422, "corrupt-image", str(exc)) from exc
