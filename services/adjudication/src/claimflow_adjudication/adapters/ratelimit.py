"""Per-principal rate limits over the `limits` library: memory for one replica, Redis for many.

Strategy: the moving window. A fixed window lets a client spend its budget at the end of one
minute and again at the start of the next (twice the limit within a few seconds); the moving
window counts exactly the requests of the last 60 seconds, and for budgets this small its
cost (one timestamp per request, at most `limit` per principal) is nothing.

Headers: draft-ietf-httpapi-ratelimit-headers' separate fields, the form most clients and
gateways read: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the
oldest counted request leaves the window, i.e. until one more request is allowed) and
`RateLimit-Policy: 10;w=60`; a 429 adds `Retry-After` with the same number of seconds.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import ConnectionPool

from claimflow_adjudication.metrics import RATE_LIMIT_ERRORS, RATE_LIMITED

log = logging.getLogger(__name__)

STORAGE_TIMEOUT_SECONDS = 0.5


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


class RateLimiter:
    def __init__(self, storage_url: str, limit: str, *, scope: str) -> None:
        self.item = parse(limit)
        self.scope = scope
        self.shared = not storage_url.startswith("memory://")
        self._pool: ConnectionPool | None = None
        if self.shared:
            # Our own pool: closed on shutdown, and with timeouts, so a slow Redis cannot hold
            # a request for long.
            self._pool = ConnectionPool.from_url(
                storage_url,
                socket_timeout=STORAGE_TIMEOUT_SECONDS,
                socket_connect_timeout=STORAGE_TIMEOUT_SECONDS,
            )
            storage: Storage = RedisStorage(
                "async+" + storage_url,
                implementation="redispy",
                connection_pool=self._pool,  # type: ignore[arg-type]  # typed as scalars only
            )
        else:
            storage = MemoryStorage()
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)

    async def hit(self, principal: str) -> Decision | None:
        """Count one request of `principal`; None when the storage is unreachable.

        Failing open is deliberate: the limit protects a cheap read, and refusing every
        client because Redis is down would turn a Redis outage into an API outage.
        """
        try:
            allowed = await self.strategy.hit(self.item, self.scope, principal)
            stats = await self.strategy.get_window_stats(self.item, self.scope, principal)
        except self.storage.base_exceptions as exc:
            RATE_LIMIT_ERRORS.labels(self.scope).inc()
            log.warning("rate limit storage unavailable (%s); allowing", type(exc).__name__)
            return None
        if not allowed:
            RATE_LIMITED.labels(self.scope).inc()
        return decide(self.item, allowed, stats.reset_time, stats.remaining, time.time())

    async def check(self) -> None:
        if not await self.storage.check():
            raise RuntimeError("rate limit storage unreachable")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
