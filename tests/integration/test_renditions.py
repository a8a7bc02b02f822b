"""Thumbnails and previews on the real stack: made by the embedder beside the faces, linked by
search, replaced with new bytes, gone with the photo (S3 scanned), not brought back by a
replay, and made afterwards by `facepass renditions backfill`."""

from __future__ import annotations

import asyncio
import io
import subprocess

import httpx
from PIL import Image

from libs.common.settings import Settings
from tests.support.api import KEY, index_and_wait
from tests.support.data import T1, jpeg_bytes
from tests.support.processes import FACEPASS, ServerProcess, stack_env
from tests.support.reliability import (
    db,
    list_objects,
    publish_many,
    s3_client,
    uid,
    upstream_photo,
    wait_for,
)

#: The left third of t1.jpg: one attendee (as tests/integration/test_search.py).
T1_LEFT = (0, 0, 1280 // 3, 886)


def _camera_jpeg(width: int = 4000) -> bytes:
    """t1.jpg enlarged to camera size and stored on its side with EXIF orientation 6 (view:
    rotate 90° clockwise), a GPS position and a camera serial, as phones and cameras do."""
    with Image.open(T1) as im:
        upright = im.convert("RGB").resize((width, round(im.height * width / im.width)))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # undone by orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0xA431] = "CAMERA-SERIAL-778"
    exif.get_ifd(0x8825)[2] = (55.0, 45.0, 0.0)
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=88, exif=exif)
    return out.getvalue()


def _search(server: ServerProcess, session: str) -> list[dict[str, object]]:
    response = httpx.post(
        f"{server.base_url}/api/v2/search",
        data={"session_id": session},
        files={"file": ("selfie.jpg", jpeg_bytes(T1, crop=T1_LEFT), "image/jpeg")},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, object]] = response.json()["results"]
    return results


def _row(stack: Settings, photo_id: str) -> tuple[str | None, str | None]:
    with db(stack) as conn:
        found = conn.execute(
            "SELECT thumbnail_key, preview_key FROM photos WHERE photo_id = %s", (photo_id,)
        ).fetchone()
    return (found[0], found[1]) if found else (None, None)


def _renditions(stack: Settings, session: str, photo_id: str) -> list[str]:
    return sorted(list_objects(stack, f"sessions/{session}/photos/{photo_id}/renditions/"))


def test_a_camera_photo_gets_an_upright_thumbnail_and_preview_without_its_metadata(
    server: ServerProcess, stack: Settings
) -> None:
    session = uid("rend")
    photo = f"{session}-p"
    original = _camera_jpeg()
    index_and_wait(server, session, {photo: original})
    [result] = _search(server, session)
    assert (result["width"], result["height"]) == (4000, 2769)  # upright, not as stored
    thumbnail = httpx.get(str(result["thumbnail_url"]), timeout=30).content
    preview = httpx.get(str(result["preview_url"]), timeout=30).content
    assert httpx.get(str(result["original_url"]), timeout=30).content == original
    assert result["url"] == result["original_url"]
    for data, side in ((thumbnail, 400), (preview, 1600)):
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG" and image.size == (side, round(side * 2769 / 4000))
        assert not image.getexif() and b"CAMERA-SERIAL-778" not in data
    assert len(thumbnail) < 60_000 and len(preview) < 600_000 < len(original)
    # The matched face's box is in the photo's upright pixels: inside its size.
    x1, y1, x2, y2 = result["face"]["bbox"]  # type: ignore[index]
    assert 0 <= x1 < x2 <= 4000 and 0 <= y1 < y2 <= 2769
    assert sorted(_row(stack, photo)) == _renditions(stack, session, photo)


def test_new_bytes_replace_the_renditions_and_erasure_removes_every_object(
    server: ServerProcess, stack: Settings
) -> None:
    session = uid("rend")
    photo = f"{session}-p"
    index_and_wait(server, session, {photo: jpeg_bytes(T1)})
    first = _row(stack, photo)
    index_and_wait(server, session, {photo: jpeg_bytes(T1, scale=0.8)})
    wait_for(lambda: _row(stack, photo) != first, timeout=60, what="new renditions named")
    second = _row(stack, photo)
    assert _renditions(stack, session, photo) == sorted(second)  # the first ones are gone
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        response = client.delete(f"/api/v2/photos/{photo}", headers=KEY)
    assert response.status_code == 200 and response.json()["objects_deleted"] == 3
    assert list_objects(stack, f"sessions/{session}/") == []


def test_a_replay_after_the_erasure_leaves_no_rendition_behind(
    server: ServerProcess, stack: Settings
) -> None:
    """An upstream photo (its bytes in the upstream's own key, which erasure leaves alone) is
    indexed, erased, and its old event replayed: the embedder makes the copies again, finds
    the tombstone and deletes them."""
    session = uid("rend")
    photo = f"{session}-p"
    record = upstream_photo(stack, session, photo, jpeg_bytes(T1))
    topic = stack.kafka.topic_uploaded
    asyncio.run(publish_many(stack.kafka.bootstrap, topic, record))
    wait_for(lambda: _row(stack, photo)[0] is not None, timeout=120, what="indexed")
    assert len(_renditions(stack, session, photo)) == 2
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        assert client.delete(f"/api/v2/sessions/{session}", headers=KEY).status_code == 200
    assert list_objects(stack, f"sessions/{session}/") == []

    asyncio.run(publish_many(stack.kafka.bootstrap, topic, record))  # the replay
    wait_for(
        lambda: any('"skipped"' in line and photo in line for line in server.log().splitlines()),
        timeout=120,
        what="the replay skipped",
    )
    assert list_objects(stack, f"sessions/{session}/") == []
    assert _row(stack, photo) == (None, None)


def test_the_backfill_makes_renditions_for_photos_indexed_before_they_existed(
    server: ServerProcess, stack: Settings
) -> None:
    session, other = uid("rend"), uid("rend-other")
    photo, untouched = f"{session}-p", f"{other}-p"
    index_and_wait(server, session, {photo: jpeg_bytes(T1)})
    index_and_wait(server, other, {untouched: jpeg_bytes(T1, scale=0.9)})
    with db(stack) as conn:  # as a photo indexed by an earlier version looks
        conn.execute(
            "UPDATE photos SET thumbnail_key = NULL, preview_key = NULL, width = NULL, "
            "height = NULL WHERE photo_id = ANY(%s)",
            ([photo, untouched],),
        )
    for session_id, photo_id in ((session, photo), (other, untouched)):
        keys = _renditions(stack, session_id, photo_id)
        assert len(keys) == 2  # both had renditions before they were forgotten
        _delete(stack, keys)
    assert _search(server, session)[0]["thumbnail_url"] is None

    done = _backfill(stack, session)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "renditions made for 1 photos" in done.stdout, done.stdout
    [result] = _search(server, session)
    assert result["thumbnail_url"] and result["width"] == 1280
    thumbnail = httpx.get(str(result["thumbnail_url"]), timeout=30).content
    assert Image.open(io.BytesIO(thumbnail)).size[0] == 400
    assert sorted(_row(stack, photo)) == _renditions(stack, session, photo)
    assert _row(stack, untouched) == (None, None)  # another session: not asked for
    again = _backfill(stack, session)  # nothing left to do
    assert "renditions made for 0 photos" in again.stdout, again.stderr[-2000:]


def _backfill(stack: Settings, session: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FACEPASS, "renditions", "backfill", "--session", session],
        env=stack_env(stack),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _delete(stack: Settings, keys: list[str]) -> None:
    client = s3_client(stack)
    try:
        client.delete_objects(
            Bucket=stack.s3.bucket, Delete={"Objects": [{"Key": k} for k in keys]}
        )
    finally:
        client.close()
