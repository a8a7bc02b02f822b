"""InferenceLanes: photos analysed as soon as they are decoded, shared fairly between lanes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from services.embedder.lanes import InferenceLanes, Job

Image = npt.NDArray[np.uint8]


def image(value: int) -> Image:
    return np.full((2, 2, 3), value, np.uint8)


class Recorder:
    """An `analyze` that records each call's photos (by pixel value) and how many ran at once."""

    def __init__(self, hold: asyncio.Event | None = None) -> None:
        self.calls: list[list[int]] = []
        self.running = 0
        self.most_at_once = 0
        self.hold = hold

    async def __call__(self, images: list[Image]) -> list[int]:
        values = [int(i[0, 0, 0]) for i in images]
        self.calls.append(values)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.hold is not None:
                await self.hold.wait()
            await asyncio.sleep(0)
            return [v * 10 for v in values]
        finally:
            self.running -= 1


def decoded(
    value: int, after: asyncio.Event | None = None, submit_it: bool = True
) -> Job[Image, str]:
    """A job that submits the image `value` (after `after`, if given) and returns a label."""

    async def job(submit: Callable[[Image], None]) -> str:
        if after is not None:
            await after.wait()
        if submit_it:
            submit(image(value))
        await asyncio.sleep(0)  # the job goes on after its submit (renditions, uploads)
        return f"photo {value}"

    return job


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_every_photo_is_analysed_once_and_answers_come_in_order() -> None:
    analyze = Recorder()
    results = await InferenceLanes(2, analyze).run([decoded(v) for v in range(9)])
    assert results == [(f"photo {v}", v * 10) for v in range(9)]
    assert sorted(v for call in analyze.calls for v in call) == list(range(9))
    assert analyze.most_at_once <= 2


async def test_the_first_photo_is_analysed_before_the_last_is_decoded() -> None:
    last_decoded = asyncio.Event()
    analyze = Recorder()
    lanes = InferenceLanes(2, analyze)
    run = asyncio.create_task(lanes.run([decoded(1), decoded(2, after=last_decoded)]))
    await settle()
    assert analyze.calls == [[1]] and not run.done()  # photo 1 done while photo 2 decodes
    last_decoded.set()
    assert await run == [("photo 1", 10), ("photo 2", 20)]
    assert analyze.calls == [[1], [2]]


async def test_a_lane_takes_a_fair_share_of_what_waits() -> None:
    """8 photos waiting for 2 lanes: the first lane takes 4 (half), the second half of the rest,
    and so on, so the last photos are spread over both lanes; one lane (a GPU) takes all."""
    hold = asyncio.Event()
    analyze = Recorder(hold)
    run = asyncio.create_task(InferenceLanes(2, analyze).run([decoded(v) for v in range(8)]))
    await settle()
    assert analyze.calls == [[0, 1, 2, 3], [4, 5]]  # both lanes busy, 2 photos still waiting
    hold.set()
    await run
    assert sorted(map(len, analyze.calls)) == [1, 1, 2, 4]

    alone = Recorder()
    await InferenceLanes(1, alone).run([decoded(v) for v in range(8)])
    assert alone.calls == [[0, 1, 2, 3, 4, 5, 6, 7]]


async def test_jobs_that_submit_nothing_are_not_analysed() -> None:
    analyze = Recorder()
    results = await InferenceLanes(2, analyze).run(
        [decoded(v, submit_it=bool(v % 2)) for v in range(4)]
    )
    assert results == [("photo 0", None), ("photo 1", 10), ("photo 2", None), ("photo 3", 30)]
    assert sorted(v for call in analyze.calls for v in call) == [1, 3]


async def test_a_job_that_fails_fails_the_run_after_the_lanes_finish() -> None:
    analyze = Recorder()

    async def broken(submit: Callable[[Image], None]) -> str:
        await asyncio.sleep(0)
        raise ConnectionError("S3 is down")

    with pytest.raises(ConnectionError):
        await InferenceLanes(2, analyze).run([decoded(1), broken, decoded(3)])
    assert analyze.running == 0  # nothing left analysing behind the error
