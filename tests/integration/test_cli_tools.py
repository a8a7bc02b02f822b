"""Operator commands on the real stack: bulk `facepass index` (resumable), `facepass lag`,
`facepass dlq list|drain`."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from facepass.bulk_index import photo_id_for
from libs.common.events import ErrorKind, PhotoFailed, SourceRecord
from libs.common.settings import Settings
from tests.support.data import T1, TOM_HANKS
from tests.support.kafka import Topics, publish
from tests.support.processes import API_KEY, FACEPASS, ServerProcess, stack_env


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "event"
    (folder / "day 1").mkdir(parents=True)
    shutil.copy(T1, folder / "day 1" / "group shot.jpg")
    shutil.copy(TOM_HANKS, folder / "tom.png")
    (folder / "notes.jpg").write_text("not a photo")
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    return folder


def _run(stack: Settings, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = stack_env(stack, FACEPASS_STATE_DIR=str(state))
    return subprocess.run([FACEPASS, *args], env=env, capture_output=True, text=True, timeout=300)


def _wait_indexed(server: ServerProcess, photo_ids: list[str]) -> None:
    with server.client() as client:
        deadline = time.monotonic() + 90
        for photo_id in photo_ids:
            while (
                client.get(f"/api/v2/photos/{photo_id}", headers={"X-API-Key": API_KEY})
                .json()
                .get("status")
                != "indexed"
            ):
                assert time.monotonic() < deadline, photo_id
                time.sleep(0.3)


def test_photo_ids_are_valid_and_stable(tmp_path: Path) -> None:
    assert photo_id_for(tmp_path / "day 1" / "group shot.jpg", tmp_path) == "day_1_group_shot"
    assert photo_id_for(tmp_path / "../x/..y.jpg", tmp_path / "..") != ""
    long = photo_id_for(tmp_path / ("a" * 300 + ".jpg"), tmp_path)
    assert len(long) <= 128 and long == photo_id_for(tmp_path / ("a" * 300 + ".jpg"), tmp_path)


def test_index_folder_over_http_then_resume(
    server: ServerProcess, stack: Settings, photo_dir: Path, tmp_path: Path
) -> None:
    session = f"bulk-{uuid.uuid4().hex[:8]}"
    args = ("index", str(photo_dir), "--session", session, "--url", server.base_url)
    first = _run(stack, tmp_path / "state", *args, "--api-key", API_KEY)
    assert first.returncode == 1, first.stderr  # one file is not an image
    assert re.search(r"accepted:\s+2", first.stdout)
    assert re.search(r"1\s+415 /problems/unsupported-image", first.stdout)
    _wait_indexed(server, ["day_1_group_shot", "tom"])
    second = _run(stack, tmp_path / "state", *args, "--api-key", API_KEY)
    assert re.search(r"resumed:\s+2", second.stdout), second.stdout
    assert re.search(r"accepted:\s+0", second.stdout)


def test_index_folder_by_direct_publish(
    server: ServerProcess, stack: Settings, photo_dir: Path, tmp_path: Path
) -> None:
    (photo_dir / "notes.jpg").unlink()
    # Ids are global: another folder layout avoids the ids of the HTTP test.
    shutil.move(photo_dir / "day 1", photo_dir / "day 2")
    shutil.move(photo_dir / "tom.png", photo_dir / "tom 2.png")
    session = f"direct-{uuid.uuid4().hex[:8]}"
    result = _run(
        stack, tmp_path / "state", "index", str(photo_dir), "--session", session, "--direct"
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"accepted:\s+2", result.stdout)
    _wait_indexed(server, ["day_2_group_shot", "tom_2"])


def test_lag_lists_every_partition(server: ServerProcess, stack: Settings, tmp_path: Path) -> None:
    result = _run(stack, tmp_path / "state", "lag")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if re.match(r"\s+\d+\s", line)]
    assert len(rows) == stack.kafka.partitions
    assert "total" in result.stdout
    assert stack.kafka.consumer_group in result.stdout


def _dead_letter(topics: Topics, photo: str, kind: ErrorKind, offset: int) -> PhotoFailed:
    """A DLQ message as the embedder writes it: the original event in source.value."""
    original = {"photo_id": photo, "session_id": "s-dlq", "object": {"bucket": "b", "key": photo}}
    return PhotoFailed(
        photo_id=photo, session_id="s-dlq", error_kind=kind, error=f"{kind} for {photo}",
        attempts=3,
        source=SourceRecord(
            topic=topics.kafka.topic_uploaded, partition=0, offset=offset, key=photo,
            value=json.dumps(original),
        ),
    )  # fmt: skip


async def _read_keyed(bootstrap: str, topic: str, count: int) -> list[tuple[str, str]]:
    """The first `count` (key, value) pairs of `topic` (fewer if nothing more comes in 20 s)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"test-reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    pairs: list[tuple[str, str]] = []
    try:
        deadline = time.monotonic() + 20
        while len(pairs) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                pairs += [(r.key.decode(), r.value.decode()) for r in records]
        await asyncio.sleep(1)  # anything beyond `count` would show up now
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            pairs += [(r.key.decode(), r.value.decode()) for r in records]
        return pairs
    finally:
        await consumer.stop()


def test_dlq_list_changes_nothing_and_drain_replays_the_chosen_kinds(
    stack: Settings, tmp_path: Path
) -> None:
    topics = Topics(stack)
    env = stack_env(stack, **topics.env())

    def dlq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FACEPASS, "dlq", *args], env=env, capture_output=True, text=True, timeout=120
        )

    letters = [
        _dead_letter(topics, "p-missing-1", "missing_object", 0),
        _dead_letter(topics, "p-corrupt", "corrupt_image", 1),
        _dead_letter(topics, "p-missing-2", "missing_object", 2),
    ]
    for letter in letters:
        asyncio.run(
            publish(
                stack.kafka.bootstrap, topics.kafka.topic_dlq,
                letter.model_dump_json().encode(), key=str(letter.photo_id).encode(),
            )
        )  # fmt: skip

    missing = subprocess.run(
        [FACEPASS, "dlq", "list"], env={**env, "KAFKA_TOPIC_DLQ": f"{topics.kafka.topic_dlq}-x"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 1 and "no topic" in missing.stderr, missing.stderr

    for _ in range(2):  # `list` reads and commits nothing: the second one sees the same
        listed = dlq("list")
        assert listed.returncode == 0, listed.stderr
        assert "3 DLQ messages after group facepass-dlq-drain's offsets." in listed.stdout
        for letter in letters:
            assert re.search(
                rf"^\d+/\d+ photo={letter.photo_id} session=s-dlq kind={letter.error_kind} "
                rf"attempts=3 error={letter.error_kind} for {letter.photo_id}$",
                listed.stdout,
                re.MULTILINE,
            ), listed.stdout

    typo = dlq("drain", "--replay", "missing-object")
    assert typo.returncode == 2 and "unknown --replay missing-object" in typo.stderr
    assert "3 DLQ messages" in dlq("list").stdout  # the refused drain changed nothing

    drained = dlq("drain", "--replay", "missing_object")
    assert drained.returncode == 0, drained.stderr
    assert (
        f"3 DLQ messages after group facepass-dlq-drain's offsets. replayed 2 to "
        f"{topics.kafka.topic_uploaded}, offsets committed"
    ) in drained.stdout
    replayed = asyncio.run(_read_keyed(stack.kafka.bootstrap, topics.kafka.topic_uploaded, 2))
    # source.value, keyed by source.key, of the chosen kind only
    assert sorted(replayed) == sorted(
        (letter.source.key, letter.source.value)
        for letter in letters
        if letter.error_kind == "missing_object"
    )

    after = dlq("list")
    assert after.returncode == 0, after.stderr
    assert "0 DLQ messages after group facepass-dlq-drain's offsets." in after.stdout
    lag = subprocess.run(
        [FACEPASS, "lag", "--group", "facepass-dlq-drain", "--topic", topics.kafka.topic_dlq],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # The drain group committed past all 3: committed == end on every partition, lag 0.
    rows = re.findall(r"^\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)$", lag.stdout, re.MULTILINE)
    assert rows and sum(int(committed) for committed, _, _ in rows) == len(letters), lag.stdout
    assert all(done == end and left == "0" for done, end, left in rows), lag.stdout
