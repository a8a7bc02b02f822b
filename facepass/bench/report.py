"""Benchmark results: each suite writes `docs/bench/<suite>.json`; `facepass bench report` turns
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
    args = [Path(sys.argv[0]).name, *sys.argv[1:]]
    return shlex.join(args)


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
    """One line per suite for the terminal: its targets, measured, met or missed."""
    from facepass.bench import targets

    ids = targets.BY_SUITE.get(suite, [])
    checks = [c for c in targets.evaluate({suite: result}) if c.id in ids]
    return "; ".join(f"{c.id} {c.measured} ({targets.verdict(c)})" for c in checks) or "done"
