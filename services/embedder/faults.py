"""A crash point for the crash tests: the embedder dies at an exact step, as kill -9 would.

Timing cannot put a kill between a batch's database commit and its offset commit (the window is
a few milliseconds), so tests/reliability/test_crash.py arms this point instead. Unarmed, it
costs one environment lookup per batch. Armed, FACEPASS_FAULT_FILE names a file; the first time
the embedder reaches the point the file names, it removes the file (so the next process runs
clean) and exits with os._exit: no cleanup, no offset commit, no flushed producer.
"""

from __future__ import annotations

import os
from pathlib import Path

FAULT_FILE_ENV = "FACEPASS_FAULT_FILE"
#: The exit status of a process killed with SIGKILL, as a shell reports it.
KILLED_STATUS = 137


def crash_point(name: str) -> None:
    """Exit the process now if FACEPASS_FAULT_FILE names a file that holds `name`."""
    armed = os.environ.get(FAULT_FILE_ENV)
    if not armed:
        return
    path = Path(armed)
    try:
        point = path.read_text().strip()
    except FileNotFoundError:
        return
    if point == name:
        path.unlink(missing_ok=True)
        os._exit(KILLED_STATUS)
