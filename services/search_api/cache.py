"""Search results cached in Redis, keyed without ever storing the selfies.

The key is a keyed hash (HMAC-SHA256) of the selfies' digests (in any order) with the session,
the threshold, the limit, the model pack, the switches that change the answer
(FACE_SELFIE_FLIP, query expansion and its lending rule, SEARCH_ORIGINALS,
SEARCH_SELFIES_FUSION) and the session's `changed_at`: indexing or erasing any photo of the
session moves `changed_at` (in the same transaction), so a stale entry is never read again and
simply expires. The HMAC key is SEARCH_CACHE_SECRET, or one generated once and shared by every
process through Redis. Redis being down only means no cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from libs.common.db.faces import Lending, SessionVersion
from libs.common.log import get_logger
from libs.common.metrics import CACHE_REQUESTS
from services.search_api.schemas import SearchResponse

log = get_logger(__name__)

_SECRET_KEY = "facepass:search-cache:secret"  # noqa: S105 - a Redis key name
_PREFIX = "facepass:search-cache:v4:"  # v4: answers link thumbnails, previews, originals


@dataclass(frozen=True)
class CacheKeyParts:
    session_id: str
    session_version: SessionVersion | None
    threshold: float
    limit: int
    model_id: str
    selfie_flip: bool
    lending: Lending | None  # query expansion's rule for this search; None: off
    originals: bool = True  # SEARCH_ORIGINALS: whether answers link the originals
    fusion: str = "mean"  # SEARCH_SELFIES_FUSION (matters with several selfies)


class SearchCache:
    def __init__(self, redis: Redis, ttl_s: int, secret: bytes | None) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._secret = secret

    async def _key_secret(self) -> bytes:
        if self._secret is None:
            await self.redis.set(_SECRET_KEY, secrets.token_hex(32), nx=True)
            shared = await self.redis.get(_SECRET_KEY)
            self._secret = shared if isinstance(shared, bytes) else str(shared).encode()
        return self._secret

    async def key(self, selfies: Sequence[bytes], parts: CacheKeyParts) -> str | None:
        """The entry of these selfies (in any order: the answer does not depend on it) and
        parts; None without a cache."""
        if self.ttl_s <= 0:
            return None
        try:
            secret = await self._key_secret()
        except (RedisError, OSError):
            return None
        mac = hmac.new(secret, digestmod=hashlib.sha256)
        for digest in sorted(hashlib.sha256(selfie).digest() for selfie in selfies):
            mac.update(digest)
        stands = parts.session_version
        version = stands.changed_at.isoformat() if stands else "none"
        lending = parts.lending
        expansion = f"{lending.threshold:.4f}x{lending.faces}" if lending else "off"
        mac.update(
            f"|{parts.session_id}|{version}|{parts.threshold:.4f}|{parts.limit}|{parts.model_id}"
            f"|flip={int(parts.selfie_flip)}|expansion={expansion}"
            f"|originals={int(parts.originals)}|fusion={parts.fusion}".encode()
        )
        return _PREFIX + mac.hexdigest()

    async def get(self, key: str | None) -> SearchResponse | None:
        if key is None:
            return None
        try:
            raw = await self.redis.get(key)
        except (RedisError, OSError) as exc:
            log.warning("search cache unavailable", error=type(exc).__name__)
            CACHE_REQUESTS.labels(result="error").inc()
            return None
        found = None
        if raw is not None:
            with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
                found = msgspec.json.decode(raw, type=SearchResponse)
        CACHE_REQUESTS.labels(result="hit" if found is not None else "miss").inc()
        return found

    async def put(self, key: str | None, value: SearchResponse) -> None:
        if key is None:
            return
        try:
            await self.redis.set(key, msgspec.json.encode(value), ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            log.warning("search cache unavailable", error=type(exc).__name__)
