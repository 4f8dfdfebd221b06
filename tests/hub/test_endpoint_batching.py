"""The endpoint batcher's one wait: right after a forward pass, the next batch waits (boundedly) for as many inputs
as that pass held; an idle batcher runs a lone request at once; a bad input still fails only its own request.

The batcher runs its real inference thread; `run_batch` is a plain function that records each batch it is given.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from hub.endpoints.batching import Batcher, BatchLimits


class Recorder:
    """A `run_batch` that takes `seconds` per pass, records each batch's inputs, and fails on the input 'bad'."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.batches: list[list[Any]] = []
        self.lock = threading.Lock()

    def __call__(self, inputs: list[Any]) -> list[Any]:
        """Answer each input with itself, upper-cased."""
        if "bad" in inputs:
            raise ValueError("a bad input")
        time.sleep(self.seconds)
        with self.lock:
            self.batches.append(list(inputs))
        return [str(x).upper() for x in inputs]


async def _send(batcher: Batcher, text: str) -> Any:
    work = batcher.submit([text], [1], timeout_s=30)
    return (await work.future)[0]


async def _closed_loop(batcher: Batcher, clients: int, rounds: int, think_s: float) -> list[Any]:
    """`clients` callers, caller i sending again (i + 1) x `think_s` after its answer, `rounds` times."""
    async def client(i: int) -> list[Any]:
        got = []
        for n in range(rounds):
            got.append(await _send(batcher, f"c{i}-{n}"))
            await asyncio.sleep((i + 1) * think_s)
        return got

    return [x for xs in await asyncio.gather(*(client(i) for i in range(clients))) for x in xs]


def test_callers_coming_back_after_a_pass_go_together() -> None:
    run = Recorder(0.03)
    batcher = Batcher(run, BatchLimits(max_batch=8, fill_wait_s=0.25))
    try:
        answers = asyncio.run(_closed_loop(batcher, clients=8, rounds=5, think_s=0.004))
    finally:
        batcher.close()
    assert sorted(answers) == sorted(f"C{i}-{n}" for i in range(8) for n in range(5))
    # The callers are back 4 to 32 ms after their answers; with the wait the passes hold all eight once the first
    # two (the start may split the eight: the thread takes the first one as soon as it is queued) are done.
    sizes = [len(b) for b in run.batches]
    assert sum(sizes) == 40 and sizes[-3:] == [8, 8, 8], sizes


def test_without_the_wait_the_first_caller_back_runs_alone() -> None:
    run = Recorder(0.03)
    batcher = Batcher(run, BatchLimits(max_batch=8, fill_wait_s=0.0))
    try:
        asyncio.run(_closed_loop(batcher, clients=8, rounds=5, think_s=0.004))
    finally:
        batcher.close()
    sizes = [len(b) for b in run.batches]
    assert sum(sizes) == 40 and any(size < 8 for size in sizes[2:]), sizes


def test_an_idle_batcher_runs_a_lone_request_at_once() -> None:
    run = Recorder(0.0)
    batcher = Batcher(run, BatchLimits(max_batch=8, fill_wait_s=5.0))
    try:
        asyncio.run(_send(batcher, "warm"))  # one pass of one input: the next batch may wait for one input only
        time.sleep(0.05)
        started = time.perf_counter()
        assert asyncio.run(_send(batcher, "alone")) == "ALONE"
        assert time.perf_counter() - started < 1.0
        # A pass of eight, then one caller: it waits at most `fill_wait_s` after that pass, never longer.
        batcher2 = Batcher(run, BatchLimits(max_batch=8, fill_wait_s=0.3))
        try:
            async def eight_then_one() -> float:
                await asyncio.gather(*(_send(batcher2, f"x{i}") for i in range(8)))
                started = time.perf_counter()
                await _send(batcher2, "late")
                return time.perf_counter() - started

            waited = asyncio.run(eight_then_one())
            assert 0.1 < waited < 2.0, waited
        finally:
            batcher2.close()
    finally:
        batcher.close()


def test_a_bad_input_fails_only_its_own_request() -> None:
    run = Recorder(0.01)
    batcher = Batcher(run, BatchLimits(max_batch=8, fill_wait_s=0.05))

    async def mixed() -> list[Any]:
        return await asyncio.gather(*(_send(batcher, t) for t in ("a", "bad", "c")), return_exceptions=True)

    try:
        out = asyncio.run(mixed())
    finally:
        batcher.close()
    assert out[0] == "A" and out[2] == "C"
    assert isinstance(out[1], ValueError)


def test_close_during_the_wait_finishes_what_is_queued() -> None:
    run = Recorder(0.01)
    batcher = Batcher(run, BatchLimits(max_batch=8, fill_wait_s=30.0))

    async def go() -> Any:
        await asyncio.gather(*(_send(batcher, f"x{i}") for i in range(8)))
        work = batcher.submit(["last"], [1], timeout_s=60)  # waits for seven more that never come...
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(None, batcher.close)  # ...until the batcher closes
        return (await work.future)[0], time.perf_counter() - started

    answer, took = asyncio.run(go())
    assert answer == "LAST" and took < 5.0


@pytest.mark.parametrize("wait_s", [0.0, 0.2])
def test_the_token_budget_still_splits_batches(wait_s: float) -> None:
    run = Recorder(0.0)
    batcher = Batcher(run, BatchLimits(max_batch=8, max_batch_tokens=40, fill_wait_s=wait_s))

    async def go() -> None:
        works = [batcher.submit([f"t{i}"], [10], timeout_s=30) for i in range(8)]
        await asyncio.gather(*(w.future for w in works))

    try:
        asyncio.run(go())
    finally:
        batcher.close()
    assert all(len(b) <= 4 for b in run.batches) and sum(len(b) for b in run.batches) == 8, run.batches
