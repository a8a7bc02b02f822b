"""Poison images, completing tests/integration (which covers corrupt/truncated/zero-byte/text
uploads and a header-only PNG bomb): real-pixel and header-only bombs of every type, unusual but
valid images (alpha, CMYK, animated, EXIF-rotated, no face, 200 faces). Each gets its documented
4xx or its faces, nothing is stored for a refused upload, and the same images sent as selfies
get 4xx (or 200 where they are valid), never 5xx."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from libs.common.settings import Settings
from tests.support import bad_images as images
from tests.support.data import TOM_HANKS, jpeg_bytes
from tests.support.processes import ServerProcess
from tests.support.reliability import (
    KEY,
    faces_per_photo,
    http_client,
    index,
    list_objects,
    photo_rows,
    search,
    uid,
    wait_indexed,
)

TOO_LARGE = "/problems/image-too-large"
VALID_ID = "^[A-Za-z0-9][A-Za-z0-9._:-]*$"

#: name → (bytes, status, problem type) for uploads refused before anything is stored.
REFUSED: dict[str, tuple[Callable[[], bytes], int, str]] = {
    "png-100-megapixel-real-pixels": (images.png_bomb, 413, TOO_LARGE),
    "gif-65535x65535-header": (images.gif_header_only, 413, TOO_LARGE),
    "jpeg-65000x65000-header": (images.jpeg_header_only, 413, TOO_LARGE),
    "webp-16384x16384-header": (images.webp_header_only, 413, TOO_LARGE),
    "png-9000x9000-header": (lambda: images.png_header_only(9000, 9000), 413, TOO_LARGE),
}

#: name → (bytes, faces the photo must end up with) for odd but valid photos.
ACCEPTED: dict[str, tuple[Callable[[], bytes], int]] = {
    "png-with-alpha": (images.png_with_alpha, 1),
    "cmyk-jpeg": (images.cmyk_jpeg, 1),
    "animated-gif": (lambda: images.animated("GIF"), 1),
    "animated-webp": (lambda: images.animated("WEBP"), 1),
    "exif-rotated": (images.exif_rotated, 1),
    "no-face": (images.no_face, 0),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bombs_are_refused_and_store_nothing(
    server: ServerProcess, stack: Settings, name: str
) -> None:
    build, status, problem = REFUSED[name]
    session, photo = uid("bomb"), uid(name[:20])
    with http_client(server) as client:
        response = index(client, photo, session, build())
        assert response.status_code == status, response.text
        assert response.json()["type"] == problem
        assert client.get(f"/api/v2/photos/{photo}", headers=KEY).status_code == 404
        selfie = search(client, session, build())
        assert selfie.status_code == status, selfie.text
        assert selfie.json()["type"] == problem
    assert list_objects(stack, f"sessions/{session}/") == []
    assert photo_rows(stack, [photo]) == {}


def test_odd_but_valid_photos_are_indexed_with_their_faces(
    server: ServerProcess, stack: Settings
) -> None:
    assert images.mode_of(images.cmyk_jpeg()) == "CMYK"
    session = uid("odd")
    photos = {f"{name}-{session}": (build(), faces) for name, (build, faces) in ACCEPTED.items()}
    # The control: the same rotated pixels without their EXIF orientation show no face, so a
    # face found in the EXIF-rotated photo proves the orientation was applied.
    photos[f"exif-stripped-{session}"] = (images.exif_rotated_stripped(), 0)
    with http_client(server) as client:
        for photo, (data, _) in photos.items():
            response = index(client, photo, session, data)
            assert response.status_code == 202, (photo, response.text)
    wait_indexed(server, list(photos))
    rows = photo_rows(stack, list(photos))
    assert {p: rows[p][0] for p in photos} == dict.fromkeys(photos, "indexed")
    faces = faces_per_photo(stack, list(photos))
    assert {p: faces.get(p, 0) for p in photos} == {p: n for p, (_, n) in photos.items()}


def test_two_hundred_faces_index_the_cap_and_report_the_rest(
    server: ServerProcess, stack: Settings
) -> None:
    session, photo = uid("crowd"), uid("crowd")
    with http_client(server) as client:
        assert index(client, photo, session, images.two_hundred_faces()).status_code == 202
        wait_indexed(server, [photo])
        status = client.get(f"/api/v2/photos/{photo}", headers=KEY).json()
        # As a selfie, a crowd is still a valid query: the main face is searched.
        selfie = search(client, session, images.two_hundred_faces())
    assert status["status"] == "indexed"
    assert status["faces_indexed"] == 100  # MAX_FACES_PER_PHOTO
    over = [r for r in status["faces_rejected"] if r["reason"] == "over_limit"]
    assert len(over) >= 90, status["faces_rejected"][:5]
    assert faces_per_photo(stack, [photo]) == {photo: 100}
    assert selfie.status_code == 200, selfie.text
    assert selfie.json()["query_face"]["faces_in_selfie"] >= 150
    assert selfie.json()["results"][0]["photo_id"] == photo


SELFIES: dict[str, tuple[Callable[[], bytes], int, str | None]] = {
    "zero-byte": (lambda: b"", 415, "/problems/unsupported-image"),
    "text-renamed-jpg": (images.text_as_jpeg, 415, "/problems/unsupported-image"),
    "truncated-jpeg": (images.truncated_jpeg, 422, "/problems/corrupt-image"),
    "no-face": (images.no_face, 422, "/problems/no-face"),
    "png-with-alpha": (images.png_with_alpha, 200, None),
    "cmyk-jpeg": (images.cmyk_jpeg, 200, None),
    "animated-gif": (lambda: images.animated("GIF"), 200, None),
    "animated-webp": (lambda: images.animated("WEBP"), 200, None),
    "exif-rotated": (images.exif_rotated, 200, None),
}


def test_poison_selfies_get_4xx_never_5xx(server: ServerProcess) -> None:
    session = uid("selfies")
    with http_client(server) as client:
        for name, (build, status, problem) in SELFIES.items():
            response = search(client, session, build())
            assert response.status_code == status, (name, response.text)
            if problem:
                assert response.json()["type"] == problem, name
                assert response.headers["content-type"].startswith("application/problem+json")
        missing_file = client.post("/api/v2/search", data={"session_id": session})
        assert missing_file.status_code in (400, 422), missing_file.text
        for form in (
            {"threshold": "abc"},
            {"limit": "1e9"},
            {"threshold": "nan"},
            {"limit": "-1"},
            {"threshold": "2"},
        ):
            response = client.post(
                "/api/v2/search",
                data={"session_id": session, **form},
                files={"file": ("s.jpg", jpeg_bytes(TOM_HANKS), "image/jpeg")},
            )
            assert response.status_code in (400, 422), (form, response.text)
        no_multipart = client.post(
            "/api/v2/search",
            content=b"\x00" * 100,
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert 400 <= no_multipart.status_code < 500, no_multipart.text
