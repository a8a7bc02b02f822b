"""In-memory stand-ins for the unit tests of the services (tests/unit/services): an object
store, a face engine and a runtime around them (the database's is in fake_db.py). They keep the
contracts the services rely on (what each call returns or raises), so a unit test can check a
service's own logic without servers; tests/integration checks the same paths on the real ones.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PIL import Image

from libs.common.broker_gate import BrokerGate
from libs.common.events import ObjectRef, PhotoUploaded
from libs.common.face.errors import NoFaceError
from libs.common.face.photo import PhotoInput
from libs.common.face.results import Face, PhotoFaces, SelfieResult
from libs.common.runtime import Need, Runtime
from libs.common.settings import Settings
from libs.common.storage import ObjectNotFoundError, StorageUnavailableError


class FakeObjectStore:
    """ObjectStore's interface over a dict; `down = True` makes every call fail as S3 down."""

    def __init__(self, bucket: str = "facepass-images") -> None:
        self.bucket = bucket
        self.objects: dict[tuple[str, str], bytes] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StorageUnavailableError("S3 unreachable: fake")

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self._check()
        self.objects[(self.bucket, key)] = data

    async def get(self, key: str, bucket: str | None = None) -> bytes:
        self._check()
        bucket = bucket or self.bucket
        try:
            return self.objects[(bucket, key)]
        except KeyError:
            raise ObjectNotFoundError(f"s3://{bucket}/{key} does not exist") from None

    async def delete(self, keys: list[str]) -> None:
        self._check()
        for key in keys:
            self.objects.pop((self.bucket, key), None)

    async def list_keys(self, prefix: str) -> list[str]:
        self._check()
        return sorted(k for b, k in self.objects if b == self.bucket and k.startswith(prefix))

    async def presigned_url(self, key: str, expires_s: int, bucket: str | None = None) -> str:
        self._check()
        return f"http://s3.test/{bucket or self.bucket}/{key}?expires={expires_s}"

    def keys(self) -> list[str]:
        return sorted(k for _, k in self.objects)


@dataclass(frozen=True)
class FakePack:
    id: str = "fake-pack@1"
    threshold: float = 0.5


def unit_face(seed: int, bbox: tuple[float, float, float, float] = (10, 10, 60, 60)) -> Face:
    vector = np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    keypoints = ((20.0, 20.0),) * 5
    return Face(bbox, keypoints, 0.9, vector / np.linalg.norm(vector))


EngineInput = np.ndarray[Any, Any] | PhotoInput


class FakeEngine:
    """The FaceEngine interface the services use: one face per image (none for an all-black
    image); `fail_on` pixel sums make analyze raise, as a broken model would."""

    def __init__(self) -> None:
        self.pack = FakePack()
        self.threshold = self.pack.threshold
        self.fail_on: set[int] = set()
        self.batches: list[int] = []
        self.selfies = 0

    def _faces(self, photo: EngineInput) -> PhotoFaces:
        image = photo.pixels if isinstance(photo, PhotoInput) else photo
        if int(image.sum()) in self.fail_on:
            raise RuntimeError("model exploded")
        found = () if not image.any() else (unit_face(int(image.sum()) % 1000),)
        height, width = image.shape[:2]
        return PhotoFaces(found, (), width, height, {"detect": 1.0, "embed": 2.0, "align": 0.5})

    def analyze(self, image: EngineInput) -> PhotoFaces:
        return self._faces(image)

    def analyze_batch(self, images: Sequence[EngineInput]) -> list[PhotoFaces]:
        self.batches.append(len(images))
        return [self._faces(image) for image in images]

    def selfie(self, image: np.ndarray[Any, Any], size: int | None = None) -> SelfieResult:
        self.selfies += 1
        if not image.any():
            raise NoFaceError("no face found in the selfie")
        height, width = image.shape[:2]
        face = replace(unit_face(1), bbox=(width * 0.25, height * 0.25, width * 0.5, height * 0.5))
        return SelfieResult(face, 1, {})


class FakePool:
    """Stands in for the asyncpg pool: the fake db functions ignore the connection."""

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[object]:
        yield object()


def fake_runtime(
    *,
    store: FakeObjectStore | None = None,
    engine: FakeEngine | None = None,
    broker: Any = None,
    settings: Settings | None = None,
) -> Runtime:
    """A Runtime whose servers are fakes (install a FakePhotoDb for the database calls)."""
    return Runtime(
        settings=settings or Settings(),
        needs=frozenset(Need),
        db=FakePool(),  # type: ignore[arg-type]
        store=store or FakeObjectStore(),  # type: ignore[arg-type]
        broker=broker,
        broker_gate=BrokerGate(broker) if broker is not None else None,
        engine=engine or FakeEngine(),  # type: ignore[arg-type]
    )


def plain_jpeg(
    width: int = 64, height: int = 48, colour: tuple[int, int, int] = (200, 120, 40)
) -> bytes:
    """A one-colour JPEG (black: the fake engine finds no face in it)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG", quality=90)
    return out.getvalue()


def uploaded(photo_id: str, session_id: str = "s1", key: str | None = None) -> PhotoUploaded:
    """A `photos.uploaded` event as ingest would publish it."""
    return PhotoUploaded(
        photo_id=photo_id,
        session_id=session_id,
        object=ObjectRef(bucket="facepass-images", key=key or f"up/{photo_id}"),
        content_sha256=uuid.uuid4().hex * 2,
        content_type="image/jpeg",
        size_bytes=100,
        uploaded_at=datetime.now(UTC),
        source="http",
    )
