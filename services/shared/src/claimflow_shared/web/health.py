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


class Unhealthy(RuntimeError):  # noqa: N818 - reads as what the check found
    """A check's finding, worded by us and free of secrets and PHI: shown as it is."""


async def _run(check: Check) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "timeout"
    except Unhealthy as exc:
        return f"error: {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported by type
        return f"error: {type(exc).__name__}"
    return "ok"


async def _report(checks: Mapping[str, Check]) -> dict[str, str]:
    names = list(checks)
    results = await asyncio.gather(*(_run(checks[n]) for n in names))
    return dict(zip(names, results, strict=True))


def health_router(
    checks: Mapping[str, ReadinessCheck], liveness: Mapping[str, Check] | None = None
) -> APIRouter:
    """`/readyz` runs `checks`; `/healthz` runs `liveness`, the checks whose failure only a
    restart cures (none for an API: it serves as long as the process runs)."""
    router = APIRouter(tags=["operations"])
    alive_checks = dict(liveness or {})

    @router.get("/healthz", responses={503: {"description": "The process cannot recover"}})
    async def healthz() -> JSONResponse:
        """Liveness: the process serves requests and its consumers make progress."""
        report = await _report(alive_checks)
        alive = all(result == "ok" for result in report.values())
        body: dict[str, object] = {"status": "ok" if alive else "failing"}
        if report:
            body["checks"] = report
        return JSONResponse(body, status_code=200 if alive else 503)

    @router.get("/readyz", responses={503: {"description": "A required dependency is down"}})
    async def readyz() -> JSONResponse:
        """Readiness: the dependencies this process needs answer."""
        report = await _report({name: c.check for name, c in checks.items()})
        ready = all(report[n] == "ok" for n in checks if checks[n].required)
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": report},
            status_code=200 if ready else 503,
        )

    return router
