"""HTTP routes of the ingest service: index a photo, read its status, erase photos/sessions.

Thin on purpose: parse, validate, call the function that does the work, shape the answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, route
from litestar.di import NamedDependency
from litestar.enums import HttpMethod, RequestEncodingType
from litestar.params import Body
from litestar.status_codes import HTTP_202_ACCEPTED

from libs.common.db import photos
from libs.common.http.auth import API_KEY_HEADER, api_key_guard, key_id
from libs.common.http.openapi import ID, ProblemOperation, problem_responses
from libs.common.http.problems import ApiError
from libs.common.http.ratelimit import api_key_rate_limit
from libs.common.runtime import Runtime
from services.ingest.accept import accept_photo
from services.ingest.erasure import erase_photo, erase_session
from services.ingest.schemas import (
    IndexAccepted,
    IndexForm,
    PhotoErased,
    PhotoStatusOut,
    RejectedFaceOut,
    SessionErased,
)
from services.ingest.validation import check_ids, read_upload

STATUS_PATH = "/api/v2/photos/{photo_id}"
#: What OPTIONS on a photo answers in Allow: the methods of its two routes below.
PHOTO_METHODS = "DELETE, GET, OPTIONS"

#: Problems every keyed route can answer: no key, over the key's rate, a dependency down.
_KEYED = (401, 429, 503)


class IngestController(Controller):
    path = "/api/v2"
    guards = [api_key_guard, api_key_rate_limit]
    tags = ["ingest"]
    security = [{"apiKey": []}]

    @post(
        "/index",
        status_code=HTTP_202_ACCEPTED,
        summary="Queue a photo for indexing",
        description=(
            "Stores the photo and queues it; its faces become searchable once the embedder has "
            "indexed it (see the status URL). The same photo_id with the same bytes is a no-op; "
            "with different bytes it replaces the photo's faces. 413: over the byte or pixel "
            "cap; 415: not a JPEG/PNG/WebP/GIF/HEIC image; 409: the photo_id belongs to another "
            "session; 503: storage or broker unavailable (retry after Retry-After)."
        ),
        responses=problem_responses(*_KEYED, 409, 413, 415),
        operation_class=ProblemOperation,
    )
    async def index(
        self,
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Runtime],
        data: Annotated[IndexForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response[IndexAccepted]:
        request_id = request.scope["state"].get("request_id", "")
        owner = key_id(request.headers[API_KEY_HEADER])  # the guard checked it
        upload = await read_upload(data, runtime.settings.face, request_id, owner)
        accepted = await accept_photo(runtime, upload)
        status_url = STATUS_PATH.format(photo_id=upload.photo_id)
        body = IndexAccepted(
            photo_id=upload.photo_id,
            session_id=upload.session_id,
            status=accepted.status,  # type: ignore[arg-type]
            status_url=status_url,
            duplicate=accepted.duplicate,
        )
        return Response(body, status_code=HTTP_202_ACCEPTED, headers={"Location": status_url})

    @get(
        "/photos/{photo_id:str}",
        summary="A photo's indexing status",
        responses=problem_responses(*_KEYED, 404),
        operation_class=ProblemOperation,
    )
    async def status(self, runtime: NamedDependency[Runtime], photo_id: ID) -> PhotoStatusOut:
        check_ids(photo_id=photo_id)
        async with runtime.pool().acquire() as conn:
            record = await photos.get_photo(conn, photo_id)
        if record is None:
            raise ApiError(404, "photo-not-found", f"no photo {photo_id!r}")
        return PhotoStatusOut(
            photo_id=record.photo_id,
            session_id=record.session_id,
            status=record.status,  # type: ignore[arg-type]
            faces_indexed=record.faces_count,
            faces_rejected=[
                RejectedFaceOut(reason=r["reason"], bbox=r["bbox"]) for r in record.faces_rejected
            ],
            model=record.model_id,
            error=record.error,
            indexed_at=record.indexed_at,
        )

    @delete(
        "/photos/{photo_id:str}",
        status_code=200,
        summary="Erase a photo",
        responses=problem_responses(*_KEYED, 404),
        operation_class=ProblemOperation,
    )
    async def delete_photo(self, runtime: NamedDependency[Runtime], photo_id: ID) -> PhotoErased:
        check_ids(photo_id=photo_id)
        result = await erase_photo(runtime, photo_id)
        if result is None:
            raise ApiError(404, "photo-not-found", f"no photo {photo_id!r}")
        return PhotoErased(photo_id, result.session_id, result.objects_deleted)

    @delete(
        "/sessions/{session_id:str}",
        status_code=200,
        summary="Erase a whole session",
        responses=problem_responses(*_KEYED),
        operation_class=ProblemOperation,
    )
    async def delete_session(
        self, runtime: NamedDependency[Runtime], session_id: ID
    ) -> SessionErased:
        check_ids(session_id=session_id)
        result = await erase_session(runtime, session_id)
        return SessionErased(session_id, result.photos_erased, result.objects_deleted)

    @route("/photos/{photo_id:str}", http_method=HttpMethod.OPTIONS, include_in_schema=False)
    async def allow_photo_methods(self) -> Response[None]:
        """OPTIONS on a photo. Litestar 2's own answer lists only the methods of the first
        handler registered on the path (litestar issue #4169, fixed in 3.0): DELETE, not GET.
        A controller registers its handlers in name order, so this one, named to sort first,
        is the path's OPTIONS handler before Litestar would add its own."""
        return Response(None, status_code=204, headers={"Allow": PHOTO_METHODS})
