"""The rules a consumer's liveness is judged by, on a clock the test moves."""

from __future__ import annotations

from claimflow_shared.kafka.consumer_health import DeadLetterBudget, ProgressTracker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_idle_consumer_is_never_stalled() -> None:
    clock = Clock()
    tracker = ProgressTracker(stall_seconds=60, clock=clock)
    for _ in range(10):
        clock.now += 30
        tracker.looped()
    assert tracker.verdict(thread_alive=True, failure=None).healthy


def test_lag_without_progress_is_a_stall_and_progress_clears_it() -> None:
    clock = Clock()
    tracker = ProgressTracker(stall_seconds=60, clock=clock)
    tracker.set_lag("claims", 0, 12)
    clock.now += 59
    tracker.looped()
    assert tracker.verdict(True, None).healthy
    clock.now += 2
    tracker.looped()
    verdict = tracker.verdict(True, None)
    assert (verdict.healthy, verdict.state) == (False, "stalled")
    assert "lag 12" in verdict.reason
    tracker.progressed()
    assert tracker.verdict(True, None).healthy


def test_a_revoked_partition_no_longer_counts() -> None:
    clock = Clock()
    tracker = ProgressTracker(stall_seconds=10, clock=clock)
    tracker.set_lag("claims", 1, 5)
    tracker.forget("claims", 1)
    clock.now += 100
    tracker.looped()
    assert tracker.lag() == 0
    assert tracker.verdict(True, None).healthy


def test_a_loop_that_stopped_coming_round_is_stuck() -> None:
    clock = Clock()
    tracker = ProgressTracker(stall_seconds=30, clock=clock)
    clock.now += 31
    verdict = tracker.verdict(True, None)
    assert (verdict.healthy, verdict.state) == (False, "stuck")


def test_dead_thread_and_halt_are_reported_with_their_cause() -> None:
    tracker = ProgressTracker(stall_seconds=30, clock=Clock())
    dead = tracker.verdict(thread_alive=False, failure=ConnectionError())
    assert (dead.healthy, dead.state) == (False, "dead")
    assert "ConnectionError" in dead.reason
    tracker.halt("halted: too many dead letters")
    halted = tracker.verdict(thread_alive=True, failure=None)
    assert (halted.healthy, halted.state, halted.reason) == (
        False,
        "halted",
        "halted: too many dead letters",
    )


def test_dead_letter_budget_is_a_sliding_window() -> None:
    clock = Clock()
    budget = DeadLetterBudget(limit=3, window_seconds=60, clock=clock)
    assert budget.allows(3)
    budget.spend(2)
    assert budget.allows(1)
    assert not budget.allows(2)
    clock.now += 61
    assert budget.allows(3)
    assert not budget.allows(4)


def test_zero_means_no_dead_letter_limit() -> None:
    budget = DeadLetterBudget(limit=0, window_seconds=60, clock=Clock())
    budget.spend(10_000)
    assert budget.allows(10_000)
