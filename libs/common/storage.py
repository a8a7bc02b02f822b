"""S3 object storage: photos live here under keys derived from session and photo ids.

Async access goes through aiobotocore (the services); the one synchronous helper is for the
command line, which creates buckets before any service starts.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from aiobotocore.session import get_session as get_aio_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from botocore.session import get_session

from libs.common.renditions import Rendition
from libs.common.settings import S3Settings

_CLIENT_CONFIG = Config(
    signature_version="s3v4",
    s3={"addressing_style": "path"},
    retries={"max_attempts": 3, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
)


def client_kwargs(s3: S3Settings, endpoint: str | None = None) -> dict[str, Any]:
    """Arguments for botocore/aiobotocore `create_client("s3", **kwargs)`."""
    return {
        "endpoint_url": endpoint or s3.endpoint,
        "region_name": s3.region,
        "aws_access_key_id": s3.access_key.get_secret_value(),
        "aws_secret_access_key": s3.secret_key.get_secret_value(),
        "config": _CLIENT_CONFIG,
    }


def ensure_buckets_sync(s3: S3Settings, buckets: Iterable[str]) -> None:
    """Create each bucket that does not exist yet (idempotent)."""
    client = get_session().create_client("s3", **client_kwargs(s3))
    try:
        for bucket in buckets:
            try:
                client.head_bucket(Bucket=bucket)
            except ClientError:
                try:
                    client.create_bucket(Bucket=bucket)
                except ClientError as exc:
                    # Created in between (SeaweedFS creates its -bucket= buckets shortly after
                    # it starts answering; seen as a failed stack start on a busy machine).
                    code = exc.response.get("Error", {}).get("Code", "")
                    if code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
    finally:
        client.close()


# The key layout of the photo bucket, in one place: sessions/{session}/photos/{photo}/{digest}
# for the photo, .../renditions/{digest}-{kind}.{ext} for its thumbnail and preview. Erasure
# deletes by these prefixes, so every object of a photo or session lives under them.


def session_prefix(session_id: str) -> str:
    """Every object of a session."""
    return f"sessions/{session_id}/"


def photo_prefix(session_id: str, photo_id: str) -> str:
    """Every object of one photo (its uploads)."""
    return f"{session_prefix(session_id)}photos/{photo_id}/"


def photo_object_key(session_id: str, photo_id: str, content_sha256: str) -> str:
    """Key of a photo FacePass stores: under its session, named by its content.

    Naming by content means re-uploading different bytes never overwrites the object that the
    indexed faces still point at; ids are validated (no `/`, no `..`) before they get here.
    """
    return f"{photo_prefix(session_id, photo_id)}{content_sha256[:32]}"


def upload_digest(data: bytes, known: str | None = None) -> str:
    """The SHA-256 (hex) that names an upload's objects: `known` when the uploader gave it
    (ingest computes it; an upstream event may carry it), else that of the bytes."""
    return known or hashlib.sha256(data).hexdigest()


def rendition_key(
    session_id: str, photo_id: str, content_sha256: str, kind: str, extension: str
) -> str:
    """Key of a thumbnail or preview of one upload of a photo, named by the upload's content
    like the photo itself: a replayed event of replaced bytes writes its own keys, never over
    the current copies (the database says which keys are current)."""
    digest = content_sha256[:32]
    return f"{photo_prefix(session_id, photo_id)}renditions/{digest}-{kind}.{extension}"


#: S3 error codes that reject the object reference itself (bucket or key), not the service.
_INVALID_REFERENCE_CODES = frozenset(
    {"InvalidRequest", "InvalidArgument", "InvalidBucketName", "KeyTooLongError", "InvalidURI"}
)


class ObjectNotFoundError(LookupError):
    """The referenced object does not exist (a permanent failure for that photo)."""


class StorageUnavailableError(ConnectionError):
    """S3 did not answer or failed in a way that may pass (retry later)."""


class ObjectStore:
    """The S3 operations FacePass needs, over one long-lived aiobotocore client."""

    def __init__(self, s3: S3Settings) -> None:
        self.settings = s3
        self.bucket = s3.bucket
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._link_client: Any = None

    async def open(self) -> ObjectStore:
        session = get_aio_session()
        self._client = await self._stack.enter_async_context(
            session.create_client("s3", **client_kwargs(self.settings))
        )
        # Links are signed for the host browsers use (the signature covers the host).
        self._link_client = self._client
        if self.settings.public_endpoint:
            self._link_client = await self._stack.enter_async_context(
                session.create_client(
                    "s3", **client_kwargs(self.settings, self.settings.link_endpoint)
                )
            )
        return self

    async def close(self) -> None:
        await self._stack.aclose()

    @asynccontextmanager
    async def _errors(self, bucket: str, key: str = "") -> AsyncIterator[None]:
        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"NoSuchKey", "404", "NoSuchBucket", "NotFound"}:
                raise ObjectNotFoundError(f"s3://{bucket}/{key} does not exist") from exc
            if code in _INVALID_REFERENCE_CODES:
                # The reference itself is refused (SeaweedFS answers InvalidRequest for a key
                # with `..`): permanent, so an event carrying it goes to the DLQ instead of
                # being retried forever as "S3 down" and blocking its partition.
                raise ObjectNotFoundError(
                    f"s3://{bucket}/{key} is not a valid object reference ({code})"
                ) from exc
            raise StorageUnavailableError(f"S3 error {code or 'unknown'}") from exc
        except ParamValidationError as exc:
            # botocore refused the bucket or key before sending anything (e.g. a bucket name
            # with `!`): as permanent as the case above, never a reason to retry.
            raise ObjectNotFoundError(
                f"s3://{bucket}/{key} is not a valid object reference"
            ) from exc
        except (BotoCoreError, OSError, TimeoutError) as exc:
            raise StorageUnavailableError(f"S3 unreachable: {type(exc).__name__}") from exc

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        async with self._errors(self.bucket, key):
            await self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )

    async def get(self, key: str, bucket: str | None = None) -> bytes:
        bucket = bucket or self.bucket
        async with self._errors(bucket, key):
            response = await self._client.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as stream:
                data: bytes = await stream.read()
                return data

    async def delete(self, keys: list[str]) -> None:
        """Delete objects of our bucket (missing ones are fine)."""
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            async with self._errors(self.bucket):
                await self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                )

    async def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        async with self._errors(self.bucket, prefix):
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    async def presigned_url(self, key: str, expires_s: int, bucket: str | None = None) -> str:
        bucket = bucket or self.bucket
        async with self._errors(bucket, key):
            url: str = await self._link_client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
            )
            return url

    async def ping(self) -> None:
        async with self._errors(self.bucket):
            await self._client.head_bucket(Bucket=self.bucket)


async def put_renditions(
    store: ObjectStore,
    session_id: str,
    photo_id: str,
    content_sha256: str,
    renditions: Sequence[Rendition],
) -> dict[str, str]:
    """Put a photo's renditions in our bucket under the photo's prefix; their keys by kind."""
    keys: dict[str, str] = {
        r.kind: rendition_key(session_id, photo_id, content_sha256, r.kind, r.extension)
        for r in renditions
    }
    await asyncio.gather(*(store.put(keys[r.kind], r.data, r.content_type) for r in renditions))
    return keys
