"""Liveness and readiness endpoints over named async checks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ReadinessCheck:
    check: Check
    # A check that is reported but does not make the process unready, e.g. Kafka for an API
    # whose writes are buffered by the outbox.
    required: bool = True


CHECK_TIMEOUT_SECONDS = 2.0


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
