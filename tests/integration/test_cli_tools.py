"""Operator commands on the real stack: bulk `facepass index` (resumable), `facepass lag`."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from facepass.bulk_index import photo_id_for
from libs.common.settings import Settings
from tests.support.data import T1, TOM_HANKS
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
