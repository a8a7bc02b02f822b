"""Checks on an upload before anything is stored: ids, size, image type and pixel count."""

from __future__ import annotations

from libs.common.events import is_valid_id
from libs.common.http.problems import ApiError, image_problem
from libs.common.imaging import (
    ImageError,
    ImageInfo,
    ImageTooLargeError,
    UnsupportedImageError,
    probe_image,
)
from libs.common.metrics import PHOTOS_REJECTED
from libs.common.settings import FaceSettings
from services.ingest.accept import Upload
from services.ingest.schemas import IndexForm

CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
}

#: The PHOTOS_REJECTED reason of each image error.
_REJECTION_REASONS: dict[type[ImageError], str] = {
    ImageTooLargeError: "too_large",
    UnsupportedImageError: "unsupported_image",
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
        return probe_image(data, **face.decode_limits)
    except ImageError as exc:
        PHOTOS_REJECTED.labels(reason=_REJECTION_REASONS.get(type(exc), "corrupt_image")).inc()
        raise image_problem(exc) from exc


async def read_upload(
    form: IndexForm, face: FaceSettings, request_id: str, key_id: str | None = None
) -> Upload:
    """The whole check of POST /index, in the order that costs least: ids, then the bytes."""
    check_ids(photo_id=form.photo_id, session_id=form.session_id)
    payload = await form.file.read()
    info = check_image(payload, face)
    return Upload(
        photo_id=form.photo_id,
        session_id=form.session_id,
        data=payload,
        content_type=CONTENT_TYPES[info.kind],
        request_id=request_id,
        key_id=key_id,
    )
