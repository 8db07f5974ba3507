"""Instruments for load tests against the fake Discord: event-loop lag, gateway heartbeats, latencies.

    async with LoopLagMonitor() as lag, HeartbeatPump(w.fake, w.bot) as beats:
        ...  # the load
    assert lag.max_lag < 0.25 and beats.bot_heartbeats >= 5

`LoopLagMonitor` runs in the event loop it measures (the test's loop, which is also the bot's and the fake
server's): a task sleeps 10 ms at a time and records how late it wakes up. A watchdog thread notices a
stall while it is happening and records the loop thread's stack, so a failure says *what* blocked.

`HeartbeatPump` makes heartbeats flow during a short test. The fake's HELLO says 41.25 s (Discord's
value), so discord.py's keep-alive thread would not beat during a 10 s run; Discord may also ask for a
heartbeat at any time (op 1 from the server), and discord.py answers from its gateway reader, in the
event loop. The pump asks every `period` seconds and records, with timestamps, the op-1 frames the bot
sends back (the fake ACKs each with op 11, so `bot.latency` is refreshed too).
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from .server import FakeDiscord


def _schedstat(native_id: int) -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable but waiting for a CPU) of one thread of this process (Linux), or None."""
    try:
        with open(f"/proc/self/task/{native_id}/schedstat") as f:
            ran, waited = f.read().split()[:2]
        return int(ran) / 1e9, int(waited) / 1e9
    except (OSError, ValueError):
        return None


class LoopLagMonitor:
    """Measures how late the event loop wakes a 10 ms sleeper.

    `max_lag` is the raw figure. `max_own_lag` leaves out the time the loop thread was runnable but the
    operating system ran something else (Linux schedstat run-queue wait): on a shared, oversubscribed
    machine that part is other processes' doing, not the bot's. `max_self_lag` also leaves out the time another
    Python thread of this process spent waiting for a CPU in the same interval: the loop thread may be waiting
    for the GIL while the thread that holds it is pushed off the CPU by other processes. What is never left out:
    the time the loop thread itself spent running (work done on the loop without yielding), and the GIL wait
    behind a worker thread that was running (the bot's Python in a worker thread starving the loop)."""

    def __init__(self, interval: float = 0.010, stall: float = 0.100, stack_depth: int = 8):
        self.interval = interval
        self.stack_depth = stack_depth  # innermost frames kept per recorded stall
        self.stall = stall  # a wake-up this late makes the watchdog record the loop thread's stack
        self.lags: list[float] = []
        self.max_lag = 0.0
        self.own_lags: list[float] = []
        self.max_own_lag = 0.0
        self.runqueue_wait = 0.0  # total seconds the loop thread waited for a CPU while monitored
        self.max_self_lag = 0.0
        self.worst: dict[str, float] = {}  # the breakdown of the sample with the largest max_self_lag
        self.stalls: list[tuple[float, str]] = []  # (seconds stalled when seen, loop thread stack)
        self._task: asyncio.Task | None = None
        self._last_tick = time.perf_counter()
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._loop_thread = threading.get_ident()
        self.started = self.stopped = 0.0
        self.gc_pauses: list[float] = []  # seconds of each collection on the loop thread while monitored
        self.other_gc_pauses: list[tuple[float, str]] = []  # (seconds, thread name): collections on other threads
        self._gc_t0: dict[int, float] = {}

    def _python_threads(self) -> dict[int, tuple[float, float]]:
        """schedstat of every Python thread but the loop's and the watchdog's, by native id."""
        out = {}
        for t in threading.enumerate():
            if t.native_id is None or t.ident in (self._loop_thread, getattr(self._watchdog, "ident", None)):
                continue
            stat = _schedstat(t.native_id)
            if stat is not None:
                out[t.native_id] = stat
        return out

    async def _run(self) -> None:
        me = threading.get_native_id()
        use_sched = _schedstat(me) is not None
        while True:
            loop0 = _schedstat(me) if use_sched else None
            others0 = self._python_threads() if use_sched else {}
            t = time.perf_counter()
            self._last_tick = t
            await asyncio.sleep(self.interval)
            lag = time.perf_counter() - t - self.interval
            loop1 = _schedstat(me) if use_sched else None
            ran, waited = ((loop1[0] - loop0[0]), (loop1[1] - loop0[1])) if loop0 and loop1 else (0.0, 0.0)
            others1 = self._python_threads() if use_sched else {}
            others_waited = max((others1[n][1] - others0[n][1] for n in others1.keys() & others0.keys()), default=0.0)
            self.runqueue_wait += waited
            own = max(0.0, lag - waited)
            # work on the loop counts in full; waiting counts less what the OS made this process's threads wait
            self_lag = max(0.0, min(ran, lag), lag - waited - others_waited)
            self.lags.append(lag)
            self.own_lags.append(own)
            self.max_lag = max(self.max_lag, lag)
            self.max_own_lag = max(self.max_own_lag, own)
            if self_lag >= self.max_self_lag:
                self.max_self_lag = self_lag
                self.worst = {"lag_ms": lag * 1000, "loop_on_cpu_ms": ran * 1000, "loop_runqueue_ms": waited * 1000,
                              "other_threads_runqueue_ms": others_waited * 1000}

    def _watch(self) -> None:
        reported_tick = None
        while not self._stop.wait(self.interval / 2):
            since = time.perf_counter() - self._last_tick
            if since > self.stall + self.interval and reported_tick != self._last_tick:
                reported_tick = self._last_tick
                frames = sys._current_frames()
                frame = frames.get(self._loop_thread)
                stack = "".join(traceback.format_stack(frame, limit=self.stack_depth)) if frame is not None else "(no frame)"
                # the loop may be waiting for the GIL: what the other threads were running says who held it
                names = {t.ident: t.name for t in threading.enumerate()}
                others = [f"  [{names.get(ident, ident)}] " + traceback.format_stack(f, limit=1)[-1].strip().replace("\n", " | ")
                          for ident, f in frames.items() if ident not in (self._loop_thread, threading.get_ident())]
                self.stalls.append((since, stack + "  other threads:\n" + "\n".join(others)))

    def _on_gc(self, phase: str, info: dict) -> None:
        # a collection holds the GIL, so one on a worker thread stalls the loop as surely as one on the loop
        ident = threading.get_ident()
        if phase == "start":
            self._gc_t0[ident] = time.perf_counter()
            return
        t0 = self._gc_t0.pop(ident, 0.0)
        if not t0:
            return
        pause = time.perf_counter() - t0
        if ident == self._loop_thread:
            self.gc_pauses.append(pause)
        else:
            self.other_gc_pauses.append((pause, f"{threading.current_thread().name} gen{info.get('generation')}"))

    @property
    def max_gc_pause(self) -> float:
        return max(self.gc_pauses, default=0.0)

    @property
    def max_other_gc_pause(self) -> float:
        return max((p for p, _ in self.other_gc_pauses), default=0.0)

    async def __aenter__(self) -> "LoopLagMonitor":
        self._loop_thread = threading.get_ident()
        gc.callbacks.append(self._on_gc)
        self.started = time.perf_counter()
        self._last_tick = self.started
        self._task = asyncio.create_task(self._run(), name="loop-lag-monitor")
        self._watchdog = threading.Thread(target=self._watch, name="loop-lag-watchdog", daemon=True)
        self._watchdog.start()
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc) -> None:
        self.stopped = time.perf_counter()
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._watchdog is not None:
            self._watchdog.join(1)

    def percentile(self, p: float) -> float:
        return percentile(self.lags, p)

    def report(self, max_stalls: int = 3) -> str:
        lines = [f"max loop lag {self.max_lag * 1000:.1f} ms over {len(self.lags)} samples "
                 f"(p99 {self.percentile(99) * 1000:.1f} ms); without CPU run-queue waits (other processes) "
                 f"{self.max_own_lag * 1000:.1f} ms; also without other threads' run-queue waits {self.max_self_lag * 1000:.1f} ms "
                 f"({', '.join(f'{k} {v:.1f}' for k, v in self.worst.items())}); run-queue wait in total {self.runqueue_wait * 1000:.0f} ms; "
                 f"{len(self.gc_pauses)} garbage collections on the loop thread, longest {self.max_gc_pause * 1000:.1f} ms; "
                 f"{len(self.other_gc_pauses)} on other threads, longest {self.max_other_gc_pause * 1000:.1f} ms"]
        for since, stack in self.stalls[:max_stalls]:
            lines.append(f"--- loop stalled for >= {since * 1000:.0f} ms in:\n{stack}")
        return "\n".join(lines)


class TimedLog(list):
    """A list that also records when each item was appended (perf_counter), for `FakeDiscord.gateway_log`."""

    def __init__(self, items=()):
        super().__init__(items)
        self.times = [0.0] * len(self)

    def append(self, item) -> None:  # noqa: D401
        self.times.append(time.perf_counter())
        super().append(item)


@dataclass
class HeartbeatPump:
    fake: FakeDiscord
    bot: object
    period: float = 0.25
    requests: int = 0
    latencies: list = field(default_factory=list)  # bot.latency sampled after each request (s)
    _task: asyncio.Task | None = None
    _start: float = 0.0
    _end: float = 0.0
    _log: TimedLog | None = None

    async def __aenter__(self) -> "HeartbeatPump":
        log = self.fake.gateway_log
        if not isinstance(log, TimedLog):
            log = TimedLog(log)
            self.fake.gateway_log = log  # the server appends to whatever list this attribute holds
        self._log = log
        self._start = time.perf_counter()
        self._task = asyncio.create_task(self._run(), name="heartbeat-pump")
        return self

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            for s in list(self.fake.sessions.values()):
                if s.ws is not None and not s.ws.closed:
                    await s.ws.send_str(json.dumps({"op": 1, "d": None}))
                    self.requests += 1
            lat = getattr(self.bot, "latency", float("inf"))
            self.latencies.append(lat)

    async def __aexit__(self, *exc) -> None:
        self._end = time.perf_counter()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def heartbeat_times(self) -> list[float]:
        """When the server received each op-1 frame from the bot during the pump's run."""
        assert self._log is not None
        end = self._end or time.perf_counter()
        return [t for item, t in zip(self._log, self._log.times) if item.get("op") == 1 and self._start <= t <= end]

    @property
    def bot_heartbeats(self) -> int:
        return len(self.heartbeat_times())

    def max_gap(self) -> float:
        """The longest time without a heartbeat from the bot (including from the start and to the end)."""
        end = self._end or time.perf_counter()
        times = [self._start, *self.heartbeat_times(), end]
        return max(b - a for a, b in zip(times, times[1:]))

    def max_latency(self) -> float:
        return max(self.latencies, default=float("inf"))

    def latency_always_defined(self) -> bool:
        return bool(self.latencies) and all(math.isfinite(x) for x in self.latencies)


def percentile(values, p: float) -> float:
    """Nearest-rank percentile (p in 0..100); nan for no values."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, math.ceil(p / 100 * len(xs)) - 1))
    return xs[k]




class CallbackTimer:
    """Times every callback the event loop runs (asyncio.Handle._run), to tell a single blocking callback
    (a synchronous call on the loop) from many short ones queued up. Diagnostics only; restored on exit."""

    def __init__(self, keep: int = 10):
        self.keep = keep
        self.slowest: list[tuple[float, str]] = []
        self._orig = None

    @staticmethod
    def _describe(handle) -> str:
        cb = getattr(handle, "_callback", None)
        owner = getattr(cb, "__self__", None)
        if isinstance(owner, asyncio.Task):
            coro = owner.get_coro()
            return f"task {getattr(coro, '__qualname__', coro)!s}"
        return getattr(cb, "__qualname__", repr(cb))

    def __enter__(self) -> "CallbackTimer":
        import asyncio.events as events

        self._orig = events.Handle._run
        timer = self

        def _run(handle):
            t = time.perf_counter()
            try:
                return timer._orig(handle)
            finally:
                dt = time.perf_counter() - t
                if len(timer.slowest) < timer.keep or dt > timer.slowest[-1][0]:
                    timer.slowest.append((dt, timer._describe(handle)))
                    timer.slowest.sort(key=lambda x: -x[0])
                    del timer.slowest[timer.keep:]

        events.Handle._run = _run
        return self

    def __exit__(self, *exc) -> None:
        import asyncio.events as events

        events.Handle._run = self._orig

    @property
    def max_callback(self) -> float:
        return self.slowest[0][0] if self.slowest else 0.0


def track(interactions, started: dict, finished) -> tuple[dict, dict, "Callable[[], bool]"]:
    """One predicate for `FakeDiscord.until` that follows many interactions at once (50 separate waiters
    would each wake on every change and add their own load to the loop being measured).

    Returns (ack seconds by id, done seconds by id, predicate); `finished(ix)` says an answer is complete."""
    acks: dict[str, float] = {}
    dones: dict[str, float] = {}

    def check() -> bool:
        now = time.perf_counter()
        for ix in interactions:
            if ix.id not in acks and ix.acked:
                acks[ix.id] = now - started[ix.id]
            if ix.id not in dones and finished(ix):
                dones[ix.id] = now - started[ix.id]
        return len(dones) == len(interactions)

    return acks, dones, check


__all__ = ["LoopLagMonitor", "HeartbeatPump", "TimedLog", "CallbackTimer", "track", "percentile"]
