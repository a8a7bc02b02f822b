"""Crash: an embedder killed with SIGKILL in the middle of a batch loses nothing and duplicates
nothing. Every photo is indexed exactly once, with the faces a clean run finds, and nothing
lands in the DLQ.

"Mid-batch" is made certain rather than left to timing: the test holds the PostgreSQL advisory
lock of a few photos (the lock the embedder takes per photo, photo_transaction in
libs/common/db/photos.py), so the embedder blocks inside a batch after writing the photos before
the locked one. It is killed only when the database holds more written photos than the group has
committed offsets: photos written by a batch whose offsets were never committed. A second
embedder must replay that batch without duplicating a face.

A kill after the whole batch is written (every row committed in PostgreSQL) and before its
offsets are committed falls in a window of milliseconds, so the second test arms the
embedder's crash point (services/embedder/faults.py) there instead of relying on timing.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from libs.common.events import ObjectRef, PhotoUploaded
from libs.common.settings import Settings
from services.embedder.faults import FAULT_FILE_ENV, KILLED_STATUS
from tests.support.processes import ServerProcess, facepass_serve
from tests.support.reliability import (
    SmallPhoto,
    Topics,
    committed_total,
    db,
    expected_faces,
    faces_per_photo,
    list_objects,
    publish_many,
    put_object,
    read_json_values,
    small_photos,
    uid,
    wait_for,
)


def _publish(stack: Settings, topics: Topics, session: str, photos: list[SmallPhoto]) -> None:
    records = []
    for photo in photos:
        key = f"upstream/{session}/{photo.photo_id}.jpg"
        put_object(stack, key, photo.data)
        event = PhotoUploaded(
            photo_id=photo.photo_id,
            session_id=session,
            object=ObjectRef(bucket=stack.s3.bucket, key=key),
            source="crash-test",
        )
        records.append((event.model_dump_json().encode(), photo.photo_id.encode()))
    asyncio.run(publish_many(stack.kafka.bootstrap, topics.kafka.topic_uploaded, records))


def _written(conn: psycopg.Connection[Any], session: str) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT photo_id, indexed_at FROM photos WHERE session_id = %s AND status = 'indexed'",
        (session,),
    ).fetchall()
    return dict(rows)


def _count_written(stack: Settings, session: str) -> int:
    with db(stack) as conn:
        return len(_written(conn, session))


def _committed(stack: Settings, topics: Topics) -> int:
    """Offsets the embedder group has committed on the stream's topic, summed."""
    return asyncio.run(
        committed_total(
            stack.kafka.bootstrap,
            topics.kafka.consumer_group,
            topics.kafka.topic_uploaded,
            topics.kafka.partitions,
        )
    )


def _killed_at(
    point: str, stack: Settings, tmp_path: Path, env: dict[str, str], publish: Callable[[], None]
) -> None:
    """An embedder armed (once it serves, so the first batch is the one) to die at `point`,
    then `publish`: it must die there."""
    fault = Path(env[FAULT_FILE_ENV])
    with facepass_serve(stack, tmp_path, "embedder", **env) as first:
        fault.write_text(point)
        publish()
        assert first.process.wait(120) == KILLED_STATUS, first.log()[-2000:]


def _wait_all_written(
    stack: Settings, session: str, ids: list[str], embedder: ServerProcess
) -> None:
    """Until every photo of `ids` is indexed; on time-out, the embedder's stacks and log."""
    wait_for(
        lambda: _count_written(stack, session) >= len(ids),
        timeout=180,
        what=f"all {len(ids)} photos indexed",
        interval=1,
        explain=lambda: "the second embedder's stacks and log:\n" + embedder.stacks(),
    )


def _blocked_on(conn: psycopg.Connection[Any], candidates: list[str]) -> str | None:
    """The candidate whose advisory lock another session is waiting for, if any."""
    row = conn.execute(
        """
        SELECT c FROM unnest(%s::text[]) AS c
        JOIN pg_locks l ON l.locktype = 'advisory' AND NOT l.granted
            AND l.objid::bigint = (hashtext(c)::bigint & 4294967295)
        LIMIT 1
        """,
        (candidates,),
    ).fetchone()
    return row[0] if row else None


def crash_mid_batch_and_recover(
    stack: Settings, logs: Path, count: int, batch_size: int
) -> dict[str, Any]:
    topics = Topics(stack, partitions=4)
    session = uid("crash")
    photos = small_photos(count, session)
    ids = [p.photo_id for p in photos]
    expected = expected_faces(photos, stack)
    assert sum(expected.values()) >= count, f"generated photos lack faces: {expected}"
    _publish(stack, topics, session, photos)
    # Candidates to block on, spread over the second half of the stream.
    candidates = ids[count // 2 :: max(1, count // 20)][:8]
    env = {"EMBEDDER_BATCH_SIZE": str(batch_size), "EMBEDDER_RETRY_MAX_S": "2", **topics.env()}
    started = time.monotonic()
    with db(stack) as locks, db(stack) as probe:
        for photo in candidates:
            locks.execute("SELECT pg_advisory_lock(hashtext(%s))", (photo,))
        with facepass_serve(stack, logs, "embedder", **env) as first:
            while True:
                blocked = wait_for(
                    lambda: (
                        _blocked_on(probe, candidates)
                        or (len(_written(probe, session)) >= count and "all-written")
                    ),
                    timeout=180,
                    what="the embedder to block on a locked photo",
                    interval=0.1,
                )
                assert blocked != "all-written", "every photo was written: no lock was hit"
                written = _written(probe, session)
                committed = _committed(stack, topics)
                if len(written) > committed:
                    first.process.send_signal(signal.SIGKILL)
                    first.process.wait(30)
                    break
                # The locked photo opened its batch: nothing of that batch written yet. Let it
                # go and wait for the next candidate.
                locks.execute("SELECT pg_advisory_unlock(hashtext(%s))", (blocked,))
                candidates.remove(blocked)
                assert candidates, "no candidate left to block a batch on"
        killed_log = first.log()
        locks.execute("SELECT pg_advisory_unlock_all()")
    in_flight = len(written) - committed
    # A second embedder takes over the group and finishes the stream.
    with facepass_serve(stack, logs, "embedder", **env) as second:
        wait_for(
            lambda: _count_written(stack, session) >= count,
            timeout=max(180, count * 0.6),
            what=f"all {count} photos indexed",
            interval=1,
            explain=lambda: "the second embedder's stacks and log:\n" + second.stacks(),
        )
        indexed_events = read_json_values(stack.kafka.bootstrap, topics.kafka.topic_indexed)
        second_log = second.log()
    elapsed = time.monotonic() - started
    with db(stack) as conn:
        final = _written(conn, session)
        failed = conn.execute(
            "SELECT photo_id, error FROM photos WHERE session_id = %s AND status <> 'indexed'",
            (session,),
        ).fetchall()
    dlq = read_json_values(stack.kafka.bootstrap, topics.kafka.topic_dlq)

    # Every photo indexed, each with exactly the clean run's faces; no duplicate, no loss.
    assert failed == []
    assert sorted(final) == sorted(ids)
    faces = faces_per_photo(stack, ids)
    assert {p: faces.get(p, 0) for p in ids} == expected
    # The batch in flight was replayed over the rows it had written: re-written, not doubled.
    replayed = [p for p, at in written.items() if final[p] != at]
    assert in_flight > 0 and len(replayed) >= 1, (in_flight, replayed)
    # Every photo got its indexed event (the replay may repeat some), nothing went to the DLQ.
    per_photo = Counter(e["photo_id"] for e in indexed_events)
    assert set(per_photo) == set(ids)
    assert dlq == []
    assert "Traceback" not in second_log
    return {
        "photos": count,
        "faces": sum(expected.values()),
        "batch_size": batch_size,
        "committed_at_kill": committed,
        "written_at_kill": len(written),
        "in_flight_at_kill": in_flight,
        "rewritten_after_kill": len(replayed),
        "indexed_events": sum(per_photo.values()),
        "indexed_by_killed": killed_log.count('"photo indexed"'),
        "indexed_by_second": second_log.count('"photo indexed"'),
        "seconds": round(elapsed, 1),
    }


def test_kill_9_mid_batch_loses_and_duplicates_nothing(stack: Settings, tmp_path: Path) -> None:
    result = crash_mid_batch_and_recover(stack, tmp_path, count=40, batch_size=8)
    print(json.dumps(result))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_9_mid_batch_with_1000_photos(stack: Settings, tmp_path: Path) -> None:
    result = crash_mid_batch_and_recover(stack, tmp_path, count=1000, batch_size=16)
    print("CRASH-RESULT", json.dumps(result))
    Path(tmp_path / "crash-result.json").write_text(json.dumps(result))


@pytest.mark.parametrize("point", ["after-write", "after-publish"])
def test_a_crash_after_the_batch_is_committed_and_before_its_offsets_duplicates_nothing(
    stack: Settings, tmp_path: Path, point: str
) -> None:
    """The embedder dies right after a batch's rows are committed (or after its indexed events
    are out too), before the offset commit. The next embedder gets the whole batch again; every
    photo ends with the faces of a clean run, once."""
    topics = Topics(stack, partitions=2)
    session = uid("commit-crash")
    photos = small_photos(12, session)
    ids = [p.photo_id for p in photos]
    expected = expected_faces(photos, stack)
    fault = tmp_path / "fault"
    env = {"EMBEDDER_BATCH_SIZE": "4", FAULT_FILE_ENV: str(fault), **topics.env()}
    _killed_at(point, stack, tmp_path, env, lambda: _publish(stack, topics, session, photos))
    assert not fault.exists()  # it fired once: the next embedder runs clean
    with db(stack) as conn:
        written = _written(conn, session)
    committed = _committed(stack, topics)
    assert committed == 0 and len(written) >= 1, (committed, written)
    at_kill = faces_per_photo(stack, list(written))
    assert {p: at_kill.get(p, 0) for p in written} == {p: expected[p] for p in written}
    killed_events = read_json_values(stack.kafka.bootstrap, topics.kafka.topic_indexed)
    if point == "after-publish":
        assert {e["photo_id"] for e in killed_events} == set(written)
    else:
        assert killed_events == []

    with facepass_serve(stack, tmp_path, "embedder", **env) as second:
        _wait_all_written(stack, session, ids, second)
        events = read_json_values(stack.kafka.bootstrap, topics.kafka.topic_indexed)
    faces = faces_per_photo(stack, ids)
    assert {p: faces.get(p, 0) for p in ids} == expected  # the replayed batch: no face twice
    assert set(Counter(e["photo_id"] for e in events)) == set(ids)
    assert read_json_values(stack.kafka.bootstrap, topics.kafka.topic_dlq) == []


def test_a_crash_between_the_renditions_and_the_rows_leaves_every_result_its_thumbnail(
    stack: Settings, tmp_path: Path
) -> None:
    """The embedder dies after a batch's thumbnails and previews are in S3 and before any of
    its rows is written. No photo is searchable yet; the replay writes every row, and each
    row names copies that are in S3: exactly two per photo (named by content, the replay put
    the same objects again, never a second pair)."""
    topics = Topics(stack, partitions=2)
    session = uid("rendition-crash")
    photos = small_photos(8, session)
    ids = [p.photo_id for p in photos]
    fault = tmp_path / "fault"
    env = {"EMBEDDER_BATCH_SIZE": "4", FAULT_FILE_ENV: str(fault), **topics.env()}
    _killed_at(
        "after-renditions", stack, tmp_path, env, lambda: _publish(stack, topics, session, photos)
    )
    assert _count_written(stack, session) == 0
    made = list_objects(stack, f"sessions/{session}/")
    assert made and all("/renditions/" in key for key in made)  # copies, no row names them

    with facepass_serve(stack, tmp_path, "embedder", **env) as second:
        _wait_all_written(stack, session, ids, second)
    with db(stack) as conn:
        named = conn.execute(
            "SELECT photo_id, thumbnail_key, preview_key FROM photos WHERE session_id = %s",
            (session,),
        ).fetchall()
    in_s3 = set(list_objects(stack, f"sessions/{session}/"))
    assert len(named) == len(ids) and all(t and p for _, t, p in named)
    assert in_s3 == {key for _, t, p in named for key in (t, p)}
    assert set(made) <= in_s3  # the killed batch's copies are the ones named now
