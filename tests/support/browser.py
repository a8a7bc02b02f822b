"""Helpers of the page's tests: the test server's rate limit, and indexing photos through the
public API, as a photo platform does."""

from __future__ import annotations

import uuid

from tests.support.api import index_and_wait

#: Searches per client per minute on the test server. Each test's browser gets an address of
#: its own (X-Forwarded-For through a trusted proxy), so only the rate-limit test reaches it.
RATE_LIMIT = 3
#: The left third of insightface's t1.jpg: its left-most person (the largest face there).
T1_LEFT = (0, 0, 1280 // 3, 886)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


#: Index photos through the public API and wait until they are searchable.
index_photos = index_and_wait
