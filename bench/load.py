"""HTTP load generation: closed loop (fixed concurrency) and open loop (fixed rate).

The load runs in separate generator processes, so that one Python interpreter is never the
hidden ceiling, and so that their CPU can be read from /proc and reported next to the
server's: on a small machine the generator competes for the same cores.

Latency in the open loop is measured from each request's scheduled send time, not from
when it was actually sent, so a stalled server (or generator) is charged for the requests
it delayed instead of hiding them (coordinated omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

import httpx
import uvloop

from bench.meters import CpuMeter

# How long the processes wait for each other before the first request: all must be running.
_START_DELAY = 0.5
# Sequence numbers stay unique across the phases of a run: each phase gets its own range.
_PHASE_SEQ_RANGE = 1_000_000_000
_phases = itertools.count()


def reserve_seq_range() -> int:
    """The first of a range of _PHASE_SEQ_RANGE sequence numbers no other phase gets."""
    return next(_phases) * _PHASE_SEQ_RANGE


@dataclass(frozen=True)
class Target:
    """What to send. Every field must pickle: generators are separate processes."""

    urls: tuple[str, ...]  # spread round-robin, as a Service spreads over replicas
    headers: tuple[tuple[str, str], ...]
    body: Callable[[int], bytes]  # a module-level function of a run-unique sequence number
    ok_status: int = 202
    timeout: float = 30.0


@dataclass(frozen=True)
class ClosedLoop:
    concurrency: int

    def share(self, index: int, count: int) -> ClosedLoop:
        base, extra = divmod(self.concurrency, count)
        return ClosedLoop(base + (1 if index < extra else 0))


@dataclass(frozen=True)
class OpenLoop:
    rate: float
    connections: int = 64


Shape = ClosedLoop | OpenLoop


class Observer(Protocol):
    """Told when the measured window opens and closes, to take its own samples then."""

    def window_start(self) -> None: ...

    def window_end(self) -> None: ...


@dataclass
class PhaseResult:
    shape: Shape
    warmup: float
    duration: float
    generators: int
    ok: int = 0
    sent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, accepted requests only
    max_send_lag: float = 0.0
    generator_cores: float = 0.0

    generator = "python"

    @property
    def throughput(self) -> float:
        return self.ok / self.duration

    @property
    def generator_cpu_ms_per_request(self) -> float | None:
        """Per response received in the window, whatever its status."""
        return 1000 * self.generator_cores * self.duration / self.sent if self.sent else None

    def percentile(self, p: float) -> float | None:
        """Nearest rank, so the figure is a latency some request really had."""
        if not self.latencies:
            return None
        rank = max(1, round(p / 100 * len(self.latencies) + 0.5))
        return self.latencies[min(rank, len(self.latencies)) - 1]

    def summary(self) -> dict[str, Any]:
        per_request = self.generator_cpu_ms_per_request
        return {
            "generator": self.generator,
            "shape": type(self.shape).__name__,
            **vars(self.shape),
            "warmup_s": self.warmup,
            "duration_s": self.duration,
            "generator_processes": self.generators,
            "generator_cores": round(self.generator_cores, 3),
            "generator_cpu_ms_per_request": None if per_request is None else round(per_request, 4),
            "sent": self.sent,
            "accepted": self.ok,
            "accepted_per_s": round(self.throughput, 1),
            "errors": dict(self.errors),
            "latency_ms": {f"p{p:g}": _ms(self.percentile(p)) for p in (50, 90, 99, 99.9)}
            | {"max": _ms(self.latencies[-1] if self.latencies else None)},
            "max_send_lag_ms": _ms(self.max_send_lag),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def run_phase(
    target: Target,
    shape: Shape,
    *,
    warmup: float,
    duration: float,
    generators: int,
    observer: Observer | None = None,
) -> PhaseResult:
    """Run one phase in `generators` processes; only the window after the warm-up counts."""
    context = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    procs = []
    for index in range(generators):
        ours, theirs = context.Pipe()
        proc = context.Process(
            target=_generator,
            args=(theirs, target, shape, index, generators),
            name=f"bench-generator-{index}",
            daemon=True,
        )
        proc.start()
        theirs.close()
        pipes.append(ours)
        procs.append(proc)
    try:
        pids = [int(pipe.recv()) for pipe in pipes]
        start_at = time.monotonic() + _START_DELAY
        first_seq = reserve_seq_range()
        for pipe in pipes:
            pipe.send((start_at, warmup, duration, first_seq))
        meter = CpuMeter({"generator": lambda: pids})
        _sleep_until(start_at + warmup)
        first = meter.sample()
        if observer is not None:
            observer.window_start()
        _sleep_until(start_at + warmup + duration)
        second = meter.sample()
        if observer is not None:
            observer.window_end()
        parts = [pipe.recv() for pipe in pipes]
    finally:
        for proc in procs:
            proc.join(timeout=target.timeout + 10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for pipe in pipes:
            pipe.close()
    result = PhaseResult(shape, warmup, duration, generators)
    result.generator_cores = CpuMeter.usage(first, second).groups["generator"]
    for part in parts:
        result.ok += part["ok"]
        result.sent += part["sent"]
        result.errors.update(part["errors"])
        result.latencies += part["latencies"]
        result.max_send_lag = max(result.max_send_lag, part["max_send_lag"])
    result.latencies.sort()
    return result


def _sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))


# --- inside a generator process ------------------------------------------------------


def _generator(conn: Connection, target: Target, shape: Shape, index: int, count: int) -> None:
    conn.send(os.getpid())
    start_at, warmup, duration, first_seq = conn.recv()
    tally = _Tally(start_at + warmup, start_at + warmup + duration)
    # Each generator takes every count-th number of the phase's range.
    seqs = itertools.count(first_seq + index, count)
    if isinstance(shape, ClosedLoop):
        work = _closed(target, shape.share(index, count), seqs, start_at, tally)
    else:
        work = _open(target, shape, index, count, seqs, start_at, tally)
    uvloop.run(work)
    conn.send(tally.report())
    conn.close()


@dataclass
class _Tally:
    window_start: float
    window_end: float
    ok: int = 0
    sent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    max_send_lag: float = 0.0

    def counts(self, at: float) -> bool:
        return self.window_start <= at < self.window_end

    def record(self, status: int | str, ok_status: int, latency: float) -> None:
        self.sent += 1
        if status == ok_status:
            self.ok += 1
            self.latencies.append(latency)
        else:
            self.errors[status if isinstance(status, str) else f"HTTP {status}"] += 1

    def report(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "sent": self.sent,
            "errors": dict(self.errors),
            "latencies": self.latencies,
            "max_send_lag": self.max_send_lag,
        }


class _Clients:
    """One single-connection client per simultaneous request, pinned to one API URL.

    httpx's shared pool costs CPU in proportion to its number of connections (about three
    times as much per request at 32 as at 1), which on a shared machine would be charged
    to the service; a client per connection keeps the generator's cost flat.
    """

    def __init__(self, target: Target, connections: int) -> None:
        self.target = target
        self.free: list[asyncio.Queue[httpx.AsyncClient]] = [asyncio.Queue() for _ in target.urls]
        self.all: list[httpx.AsyncClient] = []
        for index in range(max(connections, len(target.urls))):
            client = httpx.AsyncClient(
                headers=dict(target.headers),
                timeout=target.timeout,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            self.all.append(client)
            self.free[index % len(target.urls)].put_nowait(client)

    async def send(self, seq: int) -> int | str:
        """POST body `seq` to the next URL round-robin; a status code or an error name."""
        index = seq % len(self.target.urls)
        client = await self.free[index].get()
        try:
            response = await client.post(self.target.urls[index], content=self.target.body(seq))
        except httpx.HTTPError as exc:
            return type(exc).__name__
        finally:
            self.free[index].put_nowait(client)
        return response.status_code

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self.all))


async def _sleep_until_async(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _closed(
    target: Target, shape: ClosedLoop, seqs: Iterator[int], start_at: float, tally: _Tally
) -> None:
    async def user() -> None:
        while time.monotonic() < tally.window_end:
            began = time.monotonic()
            status = await clients.send(next(seqs))
            done = time.monotonic()
            # Throughput counts completions inside the window, whenever they were sent.
            if tally.counts(done):
                tally.record(status, target.ok_status, done - began)

    if shape.concurrency == 0:
        return
    clients = _Clients(target, shape.concurrency)
    try:
        await _sleep_until_async(start_at)
        await asyncio.gather(*(user() for _ in range(shape.concurrency)))
    finally:
        await clients.aclose()


async def _open(
    target: Target,
    shape: OpenLoop,
    index: int,
    count: int,
    seqs: Iterator[int],
    start_at: float,
    tally: _Tally,
) -> None:
    interval = count / shape.rate
    in_flight: set[asyncio.Task[None]] = set()

    async def request(scheduled: float) -> None:
        # Waiting for a free connection is part of the latency: the request was due.
        status = await clients.send(next(seqs))
        if tally.counts(scheduled):
            tally.record(status, target.ok_status, time.monotonic() - scheduled)

    clients = _Clients(target, shape.connections)
    try:
        # Generators interleave their schedules so the combined stream is evenly spaced.
        scheduled = start_at + index / shape.rate
        while scheduled < tally.window_end:
            await _sleep_until_async(scheduled)
            if tally.counts(scheduled):
                tally.max_send_lag = max(tally.max_send_lag, time.monotonic() - scheduled)
            task = asyncio.create_task(request(scheduled))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            scheduled += interval
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*in_flight)
    finally:
        await clients.aclose()
