"""Liveness and readiness endpoints over named async checks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from claimflow_shared.db import ping

Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ReadinessCheck:
    check: Check
    # A check that is reported but does not make the process unready, e.g. Kafka for an API
    # whose writes are buffered by the outbox.
    required: bool = True


CHECK_TIMEOUT_SECONDS = 2.0


def worker_checks(state: Mapping[str, Any], *, relay: bool = True) -> dict[str, ReadinessCheck]:
    """The checks every worker shares, reading its lifespan's `state` when they run: the
    database (`engine`), the outbox relay (`relay`, when the worker has one) and the
    Kafka consumer (`consumer`)."""

    async def database() -> None:
        await ping(state["engine"])

    async def relay_running() -> None:
        await state["relay"].check_running()

    async def consumer_running() -> None:
        await state["consumer"].check_running()

    checks = {"database": ReadinessCheck(database)}
    if relay:
        checks["outbox_relay"] = ReadinessCheck(relay_running)
    checks["kafka_consumer"] = ReadinessCheck(consumer_running)
    return checks


async def _run(check: Check) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported by type
        return f"error: {type(exc).__name__}"
    return "ok"


def health_router(checks: Mapping[str, ReadinessCheck]) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"description": "A required dependency is down"}})
    async def readyz() -> JSONResponse:
        """Readiness: the dependencies this process needs answer."""
        names = list(checks)
        results = await asyncio.gather(*(_run(checks[n].check) for n in names))
        report = dict(zip(names, results, strict=True))
        ready = all(report[n] == "ok" for n in names if checks[n].required)
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": report},
            status_code=200 if ready else 503,
        )

    return router
