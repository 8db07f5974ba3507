"""The load tests' loop-lag monitor must still see a blocked event loop after it leaves out the time the OS
kept this process off the CPU. Each case blocks the loop for 0.4 s in a different way the bot could."""
from __future__ import annotations

import asyncio
import sys
import threading
import time

import pytest

from fakediscord.load import LoopLagMonitor, _schedstat

BLOCK_S = 0.4
CAUGHT_S = 0.25  # the load tests' MAX_LOOP_LAG_S

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or _schedstat(threading.get_native_id()) is None,
    reason="needs Linux schedstat")


async def _measure(block) -> LoopLagMonitor:
    async with LoopLagMonitor() as lag:
        await asyncio.sleep(0.05)
        result = block()
        if asyncio.iscoroutine(result):
            await result
        await asyncio.sleep(0.05)
    return lag


def _spin(seconds: float) -> None:
    """Work on the calling thread for `seconds` of its own CPU time (however busy the machine is)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def test_work_on_the_loop_is_caught():
    lag = await _measure(lambda: _spin(BLOCK_S))  # e.g. an encode() called on the loop
    assert lag.max_self_lag >= CAUGHT_S, lag.report()
    assert lag.worst["loop_on_cpu_ms"] >= CAUGHT_S * 1000, lag.worst


async def test_work_on_the_loop_is_caught_while_a_worker_competes_for_the_cpu():
    """The loop's work counts in full even while a worker thread (an encode, GIL released) waits for the
    same CPU: on one CPU the worker's run-queue wait is as long as the loop's work."""
    import hashlib
    import os

    saved = os.sched_getaffinity(0)
    stop = threading.Event()

    def encode_like():  # hashlib releases the GIL on large buffers, as torch does in a forward pass
        data = bytes(8 << 20)
        while not stop.is_set():
            hashlib.sha256(data).digest()

    os.sched_setaffinity(0, {min(saved)})  # this thread, and the worker it starts, share one CPU
    worker = threading.Thread(target=encode_like, name="encode-like")
    try:
        worker.start()
        lag = await _measure(lambda: _spin(BLOCK_S))
    finally:
        stop.set()
        worker.join()
        os.sched_setaffinity(0, saved)
    assert lag.worst["other_threads_runqueue_ms"] > 50, lag.worst  # the competition really happened
    assert lag.max_self_lag >= CAUGHT_S, lag.report()


async def test_a_blocking_call_on_the_loop_is_caught():
    lag = await _measure(lambda: time.sleep(BLOCK_S))  # e.g. a synchronous file or HTTP call
    assert lag.max_self_lag >= CAUGHT_S, lag.report()


async def test_a_worker_thread_holding_the_gil_is_caught():
    """A worker running one long C call that keeps the GIL starves the loop, though the loop itself only
    awaits: the bot's doing, so it counts."""
    def timed(k: int) -> float:
        t0 = time.perf_counter()
        sum(range(k))
        return time.perf_counter() - t0

    per_item = min(timed(2_000_000) for _ in range(3)) / 2_000_000  # warm, fastest: the call is at least BLOCK_S
    n = int(BLOCK_S / max(per_item, 1e-12))

    async def block():
        worker = threading.Thread(target=lambda: sum(range(n)), name="gil-holder")
        worker.start()
        while worker.is_alive():
            await asyncio.sleep(0.005)

    lag = await _measure(block)
    assert lag.max_self_lag >= CAUGHT_S, lag.report()
    assert lag.worst["loop_on_cpu_ms"] < CAUGHT_S * 1000, lag.worst  # caught as a wait, not as loop work


async def test_an_idle_loop_is_not_reported():
    lag = await _measure(lambda: None)
    assert lag.max_self_lag < 0.1, lag.report()
    assert len(lag.lags) >= 5
