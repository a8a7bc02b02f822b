"""Camera-size photos over HTTP on the real stack: a 61 MP (Sony a7R V) and a 100 MP (Fuji GFX)
JPEG, one stored rotated with an EXIF tag, are accepted, indexed with their faces in the
photo's own upright pixels, and found by a selfie."""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image

from libs.common.settings import Settings
from tests.support.data import T1
from tests.support.processes import API_KEY, ServerProcess

KEY = {"X-API-Key": API_KEY}
SCALE = 4  # t1 (1280x886, faces of ~60-100 px) upscaled: faces of ~250-400 px
SELFIE = (1050, 200, 1280, 480)  # a box of t1 holding one face alone


def camera_jpeg(size: tuple[int, int], orientation: int) -> tuple[bytes, tuple[int, int]]:
    """A JPEG of `size` as shown, holding t1 upscaled at (600, 500); stored turned and tagged
    for orientation 6 (as a camera held upright writes it). Also t1's place as shown."""
    canvas = Image.new("RGB", size, (96, 110, 90))
    with Image.open(T1) as t1:
        big = t1.convert("RGB").resize((t1.width * SCALE, t1.height * SCALE))
    canvas.paste(big, (600, 500))
    exif = Image.Exif()
    if orientation == 6:
        canvas = canvas.transpose(Image.Transpose.ROTATE_90)
        exif[0x0112] = 6
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=70, exif=exif.tobytes())
    return out.getvalue(), (600, 500)


def _status(server: ServerProcess, photo_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    with server.client() as client:
        while time.monotonic() < deadline:
            body = client.get(f"/api/v2/photos/{photo_id}", headers=KEY).json()
            if body.get("status") in ("indexed", "failed"):
                return body
            time.sleep(0.5)
    raise AssertionError(f"{photo_id} was not indexed: {body}")


@pytest.mark.parametrize(
    ("size", "orientation"),
    [((9504, 6336), 1), ((8400, 12000), 6)],
    ids=["61MP-upright", "100MP-stored-rotated"],
)
def test_a_camera_size_jpeg_is_indexed_with_its_faces_and_found_by_a_selfie(
    server: ServerProcess, stack: Settings, size: tuple[int, int], orientation: int
) -> None:
    data, (left, top) = camera_jpeg(size, orientation)
    assert len(data) < 25 * 1024 * 1024  # under FACE_MAX_IMAGE_BYTES: the pixels are the test
    photo, session = f"big-{uuid.uuid4().hex[:8]}", f"s-{uuid.uuid4().hex[:8]}"
    with server.client() as client:
        response = client.post(
            "/api/v2/index",
            headers=KEY,
            data={"photo_id": photo, "session_id": session},
            files={"file": ("camera.jpg", data, "image/jpeg")},
            timeout=60,
        )
    assert response.status_code == 202, response.text
    status = _status(server, photo)
    assert status["status"] == "indexed", status
    assert status["faces_indexed"] == 6

    with Image.open(T1) as t1:  # the rightmost face of t1 (x 1130-1227), cropped as a selfie
        selfie = io.BytesIO()
        t1.convert("RGB").crop(SELFIE).save(selfie, "JPEG", quality=92)
    found = httpx.post(
        f"{server.base_url}/api/v2/search",
        data={"session_id": session},
        files={"file": ("selfie.jpg", selfie.getvalue(), "image/jpeg")},
        timeout=60,
    )
    assert found.status_code == 200, found.text
    results = found.json()["results"]
    assert [r["photo_id"] for r in results] == [photo]
    hit = results[0]
    assert (hit["width"], hit["height"]) == size  # the photo as shown, not as stored
    x1, y1, x2, y2 = hit["face"]["bbox"]  # in the photo's own pixels: where the selfie was
    assert left + SELFIE[0] * SCALE < x1 < x2 < left + SELFIE[2] * SCALE
    assert top + SELFIE[1] * SCALE < y1 < y2 < top + SELFIE[3] * SCALE
