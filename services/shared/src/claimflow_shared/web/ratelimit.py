"""Per-principal and per-client rate limits over the `limits` library: memory for one replica,
Redis for many.

Strategy: the moving window. A fixed window lets a client spend its budget at the end of one
minute and again at the start of the next (twice the limit within a few seconds); the moving
window counts exactly the requests of the last window, and for budgets this small its cost (one
timestamp per request, at most `limit` per key) is nothing.

Headers: draft-ietf-httpapi-ratelimit-headers' separate fields, the form most clients and
gateways read: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the
oldest counted request leaves the window, i.e. until one more request is allowed) and
`RateLimit-Policy: 10;w=60`; a 429 adds `Retry-After` with the same number of seconds.

Every limit fails open: when the storage is unreachable the request is allowed and counted in
`claimflow_rate_limit_storage_errors_total`, so a Redis outage never becomes an API outage.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Response
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from prometheus_client import Counter
from redis.asyncio import ConnectionPool

from .problems import ProblemError

log = logging.getLogger(__name__)

STORAGE_TIMEOUT_SECONDS = 0.5

RATE_LIMITED = Counter(
    "claimflow_rate_limited_total", "Requests refused by a rate limit, by scope", ["scope"]
)
RATE_LIMIT_ERRORS = Counter(
    "claimflow_rate_limit_storage_errors_total",
    "Rate-limit checks that could not reach their storage (the request was allowed)",
    ["scope"],
)

# OpenAPI: the headers of a response that spent one request of a budget.
RATE_LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit-Limit": {"schema": {"type": "integer"}},
    "RateLimit-Remaining": {"schema": {"type": "integer"}},
    "RateLimit-Reset": {"schema": {"type": "integer"}},
    "RateLimit-Policy": {"schema": {"type": "string"}},
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    window_seconds: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={self.window_seconds}",
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


def decide(
    item: RateLimitItem, allowed: bool, reset_time: float, remaining: int, now: float
) -> Decision:
    reset = max(1, math.ceil(reset_time - now)) if remaining < item.amount or not allowed else 0
    return Decision(
        allowed=allowed,
        limit=item.amount,
        remaining=max(0, remaining),
        reset_seconds=reset,
        window_seconds=item.get_expiry(),
    )


class RateLimitStorage:
    """Where every limit of a process counts: `memory://` (this process) or `redis://…`
    (every replica). One per app, shared by its limits."""

    def __init__(self, url: str, *, key_prefix: str = "claimflow") -> None:
        self.shared = not url.startswith("memory://")
        self._pool: ConnectionPool | None = None
        if self.shared:
            # Our own pool: closed on shutdown, and with timeouts, so a slow Redis cannot hold
            # a request for long.
            self._pool = ConnectionPool.from_url(
                url,
                socket_timeout=STORAGE_TIMEOUT_SECONDS,
                socket_connect_timeout=STORAGE_TIMEOUT_SECONDS,
            )
            self.storage: Storage = RedisStorage(
                "async+" + url,
                implementation="redispy",
                key_prefix=key_prefix,
                connection_pool=self._pool,  # type: ignore[arg-type]  # typed as scalars only
            )
        else:
            self.storage = MemoryStorage()
        self.strategy = MovingWindowRateLimiter(self.storage)

    async def check(self) -> None:
        if not await self.storage.check():
            raise RuntimeError("rate limit storage unreachable")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


class RateLimiter:
    """One budget (`limit`, e.g. `60/minute`) per key within `scope`."""

    def __init__(self, storage: RateLimitStorage, limit: str, *, scope: str) -> None:
        self.item = parse(limit)
        self.scope = scope
        self._storage = storage

    async def hit(self, key: str) -> Decision | None:
        """Count one request of `key`; None when the storage is unreachable."""
        strategy = self._storage.strategy
        try:
            allowed = await strategy.hit(self.item, self.scope, key)
            stats = await strategy.get_window_stats(self.item, self.scope, key)
        except self._storage.storage.base_exceptions as exc:
            self._unavailable(exc)
            return None
        if not allowed:
            RATE_LIMITED.labels(self.scope).inc()
        return decide(self.item, allowed, stats.reset_time, stats.remaining, time.time())

    async def spent(self, key: str) -> Decision | None:
        """The refusal `key` would get now, without counting anything; None while it has
        budget left or when the storage is unreachable."""
        strategy = self._storage.strategy
        try:
            if await strategy.test(self.item, self.scope, key):
                return None
            stats = await strategy.get_window_stats(self.item, self.scope, key)
        except self._storage.storage.base_exceptions as exc:
            self._unavailable(exc)
            return None
        RATE_LIMITED.labels(self.scope).inc()
        return decide(self.item, False, stats.reset_time, stats.remaining, time.time())

    def _unavailable(self, exc: BaseException) -> None:
        RATE_LIMIT_ERRORS.labels(self.scope).inc()
        log.warning("rate limit storage unavailable (%s); allowing", type(exc).__name__)


def too_many_requests(decision: Decision, what: str = "requests") -> ProblemError:
    return ProblemError(
        429,
        "rate-limited",
        "Too many requests",
        f"At most {decision.limit} {what} per {decision.window_seconds} seconds; "
        f"retry in {decision.reset_seconds} seconds.",
        headers=decision.headers(),
    )


async def charge(limiter: RateLimiter, key: str, response: Response) -> None:
    """Spend one request of `key`'s budget: the RateLimit-* headers on the response, or 429."""
    decision = await limiter.hit(key)
    if decision is None:
        return
    if not decision.allowed:
        raise too_many_requests(decision)
    response.headers.update(decision.headers())
