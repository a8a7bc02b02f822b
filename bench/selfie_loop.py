"""`python -m bench.selfie_loop DIR` (from the repository root): the selfie model on every file
of DIR in a plain loop (one process, one thread), printing selfies/s. P2 starts one per core at
the same time to measure how many selfies/s the machine really gives right now: on a shared
machine that can be well below cores ÷ model time."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from libs.common.face import FaceEngine, NoFaceError
from libs.common.face.selfie import selfie_from_bytes
from libs.common.settings import FaceSettings


def main(folder: Path) -> None:
    settings = FaceSettings(intra_op_threads=1)
    engine = FaceEngine.from_settings(settings)
    engine.load()
    files = [p.read_bytes() for p in sorted(folder.iterdir())]

    def one(data: bytes) -> None:
        with contextlib.suppress(NoFaceError):
            selfie_from_bytes(engine, data, settings)

    one(files[0])  # warm-up
    print("ready", flush=True)
    sys.stdin.readline()  # all loops start together
    start = time.perf_counter()
    for data in files:
        one(data)
    print(f"{len(files) / (time.perf_counter() - start):.3f}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
