"""The rate limit's decisions and headers, over the in-memory storage."""

from __future__ import annotations

import time

from limits import parse

from claimflow_shared.web.ratelimit import RateLimiter, RateLimitStorage, decide


async def test_the_eleventh_request_in_a_minute_is_refused_per_principal() -> None:
    storage = RateLimitStorage("memory://")
    limiter = RateLimiter(storage, "10/minute", scope="test")
    decisions = [await limiter.hit("alice") for _ in range(11)]
    assert all(d is not None for d in decisions)
    assert [d.allowed for d in decisions if d] == [True] * 10 + [False]
    assert [d.remaining for d in decisions if d][:3] == [9, 8, 7]
    other = await limiter.hit("bob")
    assert other is not None
    assert other.allowed
    await storage.close()


async def test_spent_tells_the_refusal_without_counting() -> None:
    storage = RateLimitStorage("memory://")
    limiter = RateLimiter(storage, "3/minute", scope="test")
    assert await limiter.spent("alice") is None
    for _ in range(3):
        assert await limiter.spent("alice") is None
        await limiter.hit("alice")
    refusal = await limiter.spent("alice")
    assert refusal is not None
    assert not refusal.allowed
    assert 1 <= refusal.reset_seconds <= 60
    # Asking again counted nothing: still exactly three in the window.
    stats = await storage.strategy.get_window_stats(limiter.item, "test", "alice")
    assert stats.remaining == 0
    # Budgets are per scope: the same key in another scope is untouched.
    assert await RateLimiter(storage, "3/minute", scope="other").spent("alice") is None


def test_headers_follow_the_ratelimit_fields_draft() -> None:
    now = time.time()
    refused = decide(parse("10/minute"), False, now + 41.2, 0, now)
    assert refused.headers() == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "42",
        "RateLimit-Policy": "10;w=60",
        "Retry-After": "42",
    }
    allowed = decide(parse("10/minute"), True, now + 59.5, 9, now)
    assert "Retry-After" not in allowed.headers()
    assert allowed.headers()["RateLimit-Remaining"] == "9"


def test_retry_after_is_never_below_one_second() -> None:
    now = time.time()
    assert decide(parse("10/minute"), False, now - 1, 0, now).reset_seconds == 1
