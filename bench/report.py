"""Benchmark results: each suite writes `docs/bench/<suite>.json`; `python -m bench report` turns
them into `docs/benchmarks.md`. Every result records the machine and the command that made it."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path("docs/bench")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        # Load when the result was saved (this run's own work included): a shared machine's
        # other users show here.
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def command_line() -> str:
    """This process's command line as typed: `python -m bench all`, not `__main__.py all`."""
    program = Path(sys.argv[0])
    as_module = program.name == "__main__.py"
    head = ["python", "-m", program.parent.name] if as_module else [program.name]
    return shlex.join([*head, *sys.argv[1:]])


#: Commands older results recorded, and what runs the same today.
_RENAMED = {"facepass bench": "python -m bench", "facepass eval": "python -m bench eval"}


def rerun_command(recorded: str) -> str | None:
    """Today's command for a recorded one that no longer exists (`facepass bench all` ->
    `python -m bench all`); None when the recorded command is current."""
    for old, new in _RENAMED.items():
        if recorded == old or recorded.startswith(f"{old} ") or recorded.startswith(f"{old}-"):
            return new + recorded[len(old) :]
    return None


def save(suite: str, result: dict[str, Any], folder: Path = BENCH_DIR) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "suite": suite,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": command_line(),
        **result,
    }
    path = folder / f"{suite}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def load_all(folder: Path = BENCH_DIR) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def headline(suite: str, result: dict[str, Any]) -> str:
    """One line per suite for the terminal: its goals, measured, and the verdicts."""
    from bench import goals

    # An unsaved result was measured here, now: the goals read this machine's core count.
    measured = {"machine": machine(), **result}
    checks = [goals.check(goal, {suite: measured}) for goal in goals.for_suite(suite)]
    return "; ".join(f"{c.id} {c.measured} ({c.verdict.strip('*')})" for c in checks) or "done"
