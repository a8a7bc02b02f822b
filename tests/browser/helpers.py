"""Helpers of the page's tests: the test server's rate limit, and indexing photos through the
public API, as a photo platform does."""

from __future__ import annotations

import time
import uuid

from tests.support.processes import API_KEY, ServerProcess

KEY = {"X-API-Key": API_KEY}
#: Searches per client per minute on the test server. Each test's browser gets an address of
#: its own (X-Forwarded-For through a trusted proxy), so only the rate-limit test reaches it.
RATE_LIMIT = 3
#: A crop of insightface's t1.jpg (6 people) holding its left-most person only.
T1_LEFT = (0, 0, 1280 // 3, 886)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def index_photos(
    server: ServerProcess, session: str, photos: dict[str, bytes], timeout_s: float = 120
) -> None:
    """POST each photo to /api/v2/index, then wait until every one is indexed."""
    with server.client() as client:
        for photo_id, data in photos.items():
            response = client.post(
                "/api/v2/index",
                headers=KEY,
                data={"photo_id": photo_id, "session_id": session},
                files={"file": (f"{photo_id}.jpg", data, "image/jpeg")},
            )
            assert response.status_code == 202, response.text
        pending = set(photos)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for photo_id in sorted(pending):
                status = client.get(f"/api/v2/photos/{photo_id}", headers=KEY).json()
                assert status["status"] != "failed", status
                if status["status"] == "indexed":
                    pending.discard(photo_id)
            time.sleep(0.2)
    assert not pending, f"not indexed in {timeout_s} s: {sorted(pending)}"
