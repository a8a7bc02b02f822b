"""S3 object storage: photos live here under keys derived from session and photo ids.

Async access goes through aiobotocore (the services); the one synchronous helper is for the
command line, which creates buckets before any service starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.session import get_session

from libs.common.settings import S3Settings

_CLIENT_CONFIG = Config(
    signature_version="s3v4",
    s3={"addressing_style": "path"},
    retries={"max_attempts": 3, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
)


def client_kwargs(s3: S3Settings) -> dict[str, Any]:
    """Arguments for botocore/aiobotocore `create_client("s3", **kwargs)`."""
    return {
        "endpoint_url": s3.endpoint,
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
                client.create_bucket(Bucket=bucket)
    finally:
        client.close()
