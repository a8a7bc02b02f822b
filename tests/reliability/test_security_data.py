"""Security of the data: no selfie (bytes or embedding) anywhere after searches, CORS only for
CORS_ORIGINS, and the pixel cap enforced before decoding."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import redis
from PIL import Image, ImageOps

from libs.common.settings import Settings
from libs.stack.servers import PostgresServer
from tests.reliability.conftest import ALLOWED_ORIGIN
from tests.support import bad_images as images
from tests.support.data import T1, TOM_HANKS
from tests.support.processes import ServerProcess
from tests.support.reliability import (
    db,
    encode,
    index,
    list_objects,
    list_topics,
    photo_rows,
    read_topic,
    s3_client,
    search,
    uid,
    wait_indexed,
)

# --- selfies are never persisted ------------------------------------------------------------


def _distinctive_selfie() -> bytes:
    """A selfie no test indexes: Tom Hanks mirrored, upscaled, on a noise background."""
    rng = np.random.default_rng(uuid.uuid4().int % 2**32)
    noise = rng.integers(0, 255, (240, 220, 3), dtype=np.uint8)
    canvas = Image.fromarray(noise)
    with Image.open(TOM_HANKS) as tom:
        canvas.paste(ImageOps.mirror(tom.convert("RGB")).resize((150, 150)), (35, 45))
    return encode(canvas, quality=95)


def _selfie_embedding(data: bytes, settings: Settings) -> np.ndarray:
    from libs.common.face.engine import FaceEngine
    from libs.common.imaging import decode_image

    engine = FaceEngine.from_settings(settings.face)
    engine.load()
    image = decode_image(data, max_bytes=10**8, max_pixels=10**8)
    return np.asarray(engine.selfie(image).face.embedding, dtype=np.float32)


def _needles(selfie: bytes, embedding: np.ndarray) -> dict[str, bytes]:
    """Byte strings that appear wherever the selfie or its embedding was stored, in any of the
    encodings a careless write would use."""
    middle = len(selfie) // 2
    chunk = selfie[middle : middle + 48]
    b64 = base64.b64encode(selfie)
    at = (len(b64) // 2) // 4 * 4
    f32 = embedding.astype("<f4").tobytes()[:64]
    f64 = embedding.astype("<f8").tobytes()[:64]
    shortest = [np.format_float_positional(x, unique=True, trim="-") for x in embedding[:4]]
    return {
        "selfie bytes": chunk,
        "selfie hex": chunk.hex().encode(),
        "selfie base64": b64[at : at + 64],
        "embedding float32": f32,
        "embedding float32 hex": f32.hex().encode(),
        "embedding float32 base64": base64.b64encode(embedding.astype("<f4").tobytes())[:64],
        "embedding float64": f64,
        "embedding text": ",".join(shortest).encode(),
        "embedding text spaced": ", ".join(shortest).encode(),
    }


def _found(blob: bytes, needles: dict[str, bytes]) -> list[str]:
    return [name for name, needle in needles.items() if needle in blob]


def _pg_dump(settings: Settings) -> bytes:
    pg = settings.postgres
    binary = PostgresServer(settings, settings.stack.state_dir).bin_dir / "pg_dump"
    env = {**os.environ, "PGPASSWORD": pg.password.get_secret_value()}
    args = [str(binary), "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", pg.db]
    return subprocess.run([*args, "--data-only"], env=env, capture_output=True, check=True).stdout


def _s3_blobs(settings: Settings) -> Iterator[tuple[str, bytes]]:
    client = s3_client(settings)
    try:
        for bucket in (b["Name"] for b in client.list_buckets()["Buckets"]):
            for key in list_objects(settings, bucket=bucket):
                body = client.get_object(Bucket=bucket, Key=key)["Body"]
                yield f"s3://{bucket}/{key}", body.read()
    finally:
        client.close()


def _kafka_blobs(settings: Settings) -> Iterator[tuple[str, bytes]]:
    bootstrap = settings.kafka.bootstrap
    for topic in asyncio.run(list_topics(bootstrap)):
        yield topic, b"\n".join(asyncio.run(read_topic(bootstrap, topic)))


def _redis_blobs(settings: Settings) -> Iterator[tuple[str, bytes]]:
    client = redis.Redis(host=settings.redis.host, port=settings.redis.port)
    try:
        for key in client.scan_iter(count=500):
            kind = client.type(key)
            if kind == b"string":
                yield key.decode(), key + b"=" + (client.get(key) or b"")
            else:
                yield key.decode(), key + b"=" + repr(client.dump(key)).encode()
    finally:
        client.close()


def test_selfies_are_never_stored_anywhere(server: ServerProcess, stack: Settings) -> None:
    session, photo = uid("privacy"), uid("privacy")
    group = T1.read_bytes()
    with server.client() as client:
        assert index(client, photo, session, group).status_code == 202
        wait_indexed(server, [photo])
        selfie = _distinctive_selfie()
        for _ in range(3):  # the second and third are answered from the cache
            response = search(client, session, selfie)
            assert response.status_code == 200, response.text
        assert search(client, uid("other"), selfie).status_code == 200
    embedding = _selfie_embedding(selfie, stack)
    needles = _needles(selfie, embedding)

    # PostgreSQL: no stored vector is the selfie's, and no column holds its bytes or values.
    with db(stack) as conn:
        closest = conn.execute(
            "SELECT max(1 - (embedding <=> %s::vector)) FROM face_embeddings",
            ("[" + ",".join(map(str, embedding.tolist())) + "]",),
        ).fetchone()[0]
    assert closest < 0.9999, closest
    dump = _pg_dump(stack)
    assert photo.encode() in dump  # the dump does hold the indexed photo's rows
    assert _found(dump, needles) == []

    # S3, every object of every bucket (the Kafka broker's log included).
    positive = group[len(group) // 2 : len(group) // 2 + 48]
    seen_photo = False
    for where, blob in _s3_blobs(stack):
        assert _found(blob, needles) == [], where
        seen_photo |= positive in blob
    assert seen_photo, "the scan did not see the indexed photo's bytes in S3"

    # Kafka, every topic from offset 0; Redis, every key; the server's log.
    kafka = dict(_kafka_blobs(stack))
    assert any(photo.encode() in blob for blob in kafka.values())
    for topic, blob in kafka.items():
        assert _found(blob, needles) == [], topic
    for key, blob in _redis_blobs(stack):
        assert _found(blob, needles) == [], key
    log = server.log().encode()
    assert _found(log, needles) == []


# --- CORS -----------------------------------------------------------------------------------


def test_cors_only_for_the_configured_origins(server: ServerProcess) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    with server.client() as client:
        allowed = client.options("/api/v2/search", headers={"Origin": ALLOWED_ORIGIN, **preflight})
        assert allowed.status_code in (200, 204)
        assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "POST" in allowed.headers["access-control-allow-methods"]
        for origin in (
            "https://evil.example",
            "https://photos.allowed.example.evil.example",
            "http://photos.allowed.example",
            "null",
        ):
            refused = client.options("/api/v2/search", headers={"Origin": origin, **preflight})
            assert refused.status_code < 500
            assert "access-control-allow-origin" not in refused.headers, origin
            simple = client.get("/api/v2/health/live", headers={"Origin": origin})
            assert "access-control-allow-origin" not in simple.headers, origin
        simple = client.get("/api/v2/health/live", headers={"Origin": ALLOWED_ORIGIN})
        assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


# --- caps before decode ---------------------------------------------------------------------


def _peak_rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def test_pixel_cap_is_enforced_before_decoding(server: ServerProcess, stack: Settings) -> None:
    """A 100-megapixel PNG (real pixels, 120 kB of upload) is refused on both routes without
    being decoded: the server's peak memory does not grow by the 100+ MB a decode needs. The
    control, a 49-megapixel PNG under the cap sent as a selfie, is decoded and does grow it."""
    pid = server.process.pid
    session, photo = uid("cap"), uid("cap")
    bomb = images.png_bomb()
    with server.client() as client:
        search(client, session, images.one_face_jpeg())  # warm: first-request allocations
        _reset_peak(pid)
        before = _peak_rss_kb(pid)
        assert index(client, photo, session, bomb).status_code == 413
        assert search(client, session, bomb).status_code == 413
        refused_growth_mb = (_peak_rss_kb(pid) - before) / 1024
        _reset_peak(pid)
        before = _peak_rss_kb(pid)
        control = search(client, session, images.png_bomb(7000))
        assert control.status_code == 422, control.text  # decoded: no face in it
        decoded_growth_mb = (_peak_rss_kb(pid) - before) / 1024
    assert decoded_growth_mb > 100, decoded_growth_mb
    assert refused_growth_mb < 40, refused_growth_mb
    assert photo_rows(stack, [photo]) == {}
    assert list_objects(stack, f"sessions/{session}/") == []
