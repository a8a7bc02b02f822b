"""Calling a running FacePass the way clients do."""

from __future__ import annotations

import time

from tests.support.processes import API_KEY, ServerProcess

KEY = {"X-API-Key": API_KEY}


def index_and_wait(
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
                assert status.get("status") != "failed", status
                if status.get("status") == "indexed":
                    pending.discard(photo_id)
            time.sleep(0.3)
    assert not pending, f"not indexed: {sorted(pending)}"
