"""The audit-log API application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from claimflow_audit.adapters.db import create_engine
from claimflow_audit.adapters.roles import check_least_privilege
from claimflow_audit.api import audit
from claimflow_audit.api.errors import install_error_handlers
from claimflow_audit.settings import AuditSettings
from claimflow_shared.db import ping
from claimflow_shared.logs import configure_logging
from claimflow_shared.web.app import build_app
from claimflow_shared.web.health import ReadinessCheck

DESCRIPTION = """
The tamper-evident audit trail of claimflow: every event on every claimflow topic and every
read of PHI, appended to one SHA-256 hash chain that nobody can change unnoticed.

Records hold a digest of each event's data, never the data itself. All errors are RFC 9457
`application/problem+json`. Authenticate with `Authorization: Bearer <api key>` of a
principal with the `auditor` role.
"""


def create_app(settings: AuditSettings | None = None) -> FastAPI:
    settings = settings or AuditSettings()
    configure_logging(settings.service_name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine(settings)
        app.state.verify_slots = asyncio.Semaphore(settings.verify_max_concurrent)
        try:
            await check_least_privilege(
                app.state.engine, allow_owner=settings.allow_owner_as_app_role
            )
            yield
        finally:
            await app.state.engine.dispose()

    async def database() -> None:
        await ping(app.state.engine)

    app = build_app(
        settings,
        title="claimflow audit-log",
        description=DESCRIPTION,
        version="1.0.0",
        lifespan=lifespan,
        checks={"database": ReadinessCheck(database)},
        openapi_tags=[
            {"name": "audit", "description": "Claim timelines and chain verification"},
            {"name": "operations", "description": "Health, readiness and metrics"},
        ],
    )
    install_error_handlers(app)
    app.include_router(audit.router)
    return app
