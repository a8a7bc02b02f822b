"""Inference lanes: a batch's photos analysed as they are decoded, on every inference worker.

Fetching, decoding and rendering a photo costs ~40 ms of CPU and S3 on a 12 MP photo; the face
engine ~200 ms more. When the whole batch had to be decoded before the first photo reached the
engine, and each worker's share was fixed up front, the inference threads stood idle about half
of the time while EP-12 photos were indexed over HTTP (py-spy, 2 cores; docs/pipeline.md).

Here every photo joins a queue as soon as it is decoded (its renditions are made and uploaded
meanwhile), and each of `lanes` workers (FACE_INFERENCE_WORKERS)
loops: take the first photo waiting, plus a fair share of the others (what waits ÷ lanes, so
the share shrinks as the batch runs out and the last photos spread over every lane), analyse
them in one batched engine call, repeat. With one lane (a GPU) that is everything decoded so
far: one batch across photos.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
P = TypeVar("P")  # a photo as the lanes pass it to `analyze`
R = TypeVar("R")

_DONE = -1  # no more photos: each lane puts it back for the next

#: A job of the batch: it is given `submit`, to hand its photo to the lanes (at most once, as
#: soon as it is decoded), and returns whatever the caller needs afterwards.
Job = Callable[[Callable[[P], None]], Awaitable[T]]


class InferenceLanes(Generic[P, R]):
    def __init__(self, lanes: int, analyze: Callable[[list[P]], Awaitable[list[R]]]) -> None:
        self.lanes = max(1, lanes)
        self._analyze = analyze

    async def run(self, jobs: Sequence[Job[P, T]]) -> list[tuple[T, R | None]]:
        """Run every job (concurrently); the photo a job hands to its `submit` is analysed
        as soon as it does, while the job goes on. Returns (what each job returned, the
        analysis of what it submitted, or None) in the jobs' order, once all are done.

        A job that raises makes `run` raise, after the lanes have finished what they hold.
        """
        results: list[R | None] = [None] * len(jobs)
        photos: dict[int, P] = {}
        ready: asyncio.Queue[int] = asyncio.Queue()

        def submitter(index: int) -> Callable[[P], None]:
            def submit(photo: P) -> None:
                photos[index] = photo
                ready.put_nowait(index)

            return submit

        async def lane() -> None:
            while (first := await ready.get()) != _DONE:
                chunk = [first, *self._fair_share(ready, len(photos))]
                found = await self._analyze([photos.pop(i) for i in chunk])
                for index, result in zip(chunk, found, strict=True):
                    results[index] = result
            ready.put_nowait(_DONE)

        workers = [asyncio.create_task(lane()) for _ in range(self.lanes)]
        try:
            values = await asyncio.gather(*(job(submitter(i)) for i, job in enumerate(jobs)))
        finally:
            ready.put_nowait(_DONE)
            await asyncio.gather(*workers)
        return list(zip(values, results, strict=True))

    def _fair_share(self, ready: asyncio.Queue[int], waiting: int) -> list[int]:
        """Besides the photo a lane already took (one of the `waiting` decoded and not yet
        taken): ceil(waiting ÷ lanes) - 1 more, never the end marker (put back for the lanes
        still looping)."""
        taken: list[int] = []
        wanted = math.ceil(waiting / self.lanes) - 1
        while len(taken) < wanted and not ready.empty():
            index = ready.get_nowait()
            if index == _DONE:
                ready.put_nowait(_DONE)
                break
            taken.append(index)
        return taken
