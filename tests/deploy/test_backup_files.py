"""facepass.backup without a server: archive names, retention, finding the client tools; and
the shell scripts are strict bash. The real dump/wipe/restore runs in
tests/integration/test_backup.py."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from facepass.backup import BackupError, backup_name, pg_tool, prune_backups
from tests.deploy.support import DEPLOY, need_tool

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
    if script.name != "pg_common.sh":  # sourced by the other two, which set the options
        assert "set -euo pipefail" in text
        assert os.access(script, os.X_OK)
    tool = need_tool("shellcheck")
    result = subprocess.run(
        [tool, "-x", str(script)], capture_output=True, text=True, cwd=DEPLOY.parent, timeout=60
    )
    assert result.returncode == 0, result.stdout


def test_scripts_refuse_bad_arguments(tmp_path: Path) -> None:
    scripts = DEPLOY / "scripts"
    bad = subprocess.run(
        ["bash", str(scripts / "backup_database.sh"), "--keep-days", "soon"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert bad.returncode != 0 and "whole number" in bad.stderr
    missing = subprocess.run(
        ["bash", str(scripts / "restore_database.sh"), "--yes", str(tmp_path / "nope.dump")],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert missing.returncode != 0 and "no backup file" in missing.stderr


def test_cli_has_the_operator_commands() -> None:
    from tests.support.processes import FACEPASS

    out = subprocess.run([FACEPASS, "--help"], capture_output=True, text=True, timeout=60).stdout
    for command in ("init", "backup", "restore"):
        assert f" {command} " in out
