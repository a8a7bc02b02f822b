"""The demo session `make run` indexes: what the README promises is what a fresh clone gets."""

from __future__ import annotations

import re
from pathlib import Path

from facepass.demo import demo_photos

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_counts_the_demo_photos_a_fresh_clone_has(tmp_path: Path) -> None:
    """Outside testers, whose clone is not beside ../shared, saw 5 photos where it said 13."""
    banner = re.search(r"\((\d+) sample photos in session 'demo'", (REPO / "README.md").read_text())
    assert banner is not None
    packaged = demo_photos(shared=tmp_path / "absent")
    assert int(banner.group(1)) == len(packaged) == 5
    assert all(photo.is_file() for photo in packaged)


def test_the_shared_group_photos_are_added_when_present(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.jpg").write_bytes(b"y")
    assert len(demo_photos(shared=tmp_path)) == len(demo_photos(shared=tmp_path / "absent")) + 2
