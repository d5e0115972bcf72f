"""What a consumer's liveness is judged on: progress against lag, and a dead-letter budget.

Pure bookkeeping with an injectable clock, so the rules are unit-tested without a broker. The
consumer thread writes, health checks read; every read and write is a single attribute or a
short critical section, so a lock keeps the two views consistent.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    # One word for metrics and alerts: running, stalled, halted, dead, stuck.
    state: str
    reason: str = ""


class ProgressTracker:
    """Decides whether a consumer that has work is getting through it.

    `stall_seconds` without a committed batch while lag > 0 is a stall; so is a poll loop that
    has not come round for as long (a handler or a client call that never returns). A
    consumer with no lag is idle, never stalled.
    """

    def __init__(self, stall_seconds: float, clock: Clock = time.monotonic) -> None:
        self._stall_seconds = stall_seconds
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._last_loop = now
        self._last_progress = now
        self._lag: dict[tuple[str, int], int] = {}
        self._halted: str | None = None

    def looped(self) -> None:
        with self._lock:
            self._last_loop = self._clock()
            if self._total_lag() == 0:
                # Idle time is not a lack of progress.
                self._last_progress = self._last_loop

    def progressed(self) -> None:
        with self._lock:
            self._last_progress = self._clock()

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        with self._lock:
            self._lag[(topic, partition)] = lag

    def forget(self, topic: str, partition: int) -> None:
        """A revoked partition's lag is its new owner's to report."""
        with self._lock:
            self._lag.pop((topic, partition), None)

    def halt(self, reason: str) -> None:
        with self._lock:
            self._halted = reason

    @property
    def halted(self) -> str | None:
        return self._halted

    def lag(self) -> int:
        with self._lock:
            return self._total_lag()

    def _total_lag(self) -> int:
        return sum(self._lag.values())

    def verdict(self, thread_alive: bool, failure: BaseException | None) -> Verdict:
        with self._lock:
            now = self._clock()
            if self._halted is not None:
                return Verdict(False, "halted", self._halted)
            if not thread_alive:
                cause = type(failure).__name__ if failure is not None else "stopped"
                return Verdict(False, "dead", f"consumer thread ended ({cause})")
            since_loop = now - self._last_loop
            if since_loop > self._stall_seconds:
                return Verdict(
                    False, "stuck", f"poll loop has not come round for {since_loop:.0f}s"
                )
            lag = self._total_lag()
            since_progress = now - self._last_progress
            if lag > 0 and since_progress > self._stall_seconds:
                return Verdict(
                    False, "stalled", f"no progress for {since_progress:.0f}s with lag {lag}"
                )
            return Verdict(True, "running")


class DeadLetterBudget:
    """At most `limit` dead letters in any `window_seconds`: past that, a bad deploy or a
    broken producer would dead-letter a whole topic, so the consumer halts instead.
    0 = no limit."""

    def __init__(self, limit: int, window_seconds: float, clock: Clock = time.monotonic) -> None:
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._times: deque[float] = deque()

    def allows(self, count: int) -> bool:
        if self._limit <= 0:
            return True
        now = self._clock()
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()
        return len(self._times) + count <= self._limit

    def spend(self, count: int) -> None:
        now = self._clock()
        self._times.extend([now] * count)

    def describe(self) -> str:
        return f"more than {self._limit} dead letters within {self._window:.0f}s"
