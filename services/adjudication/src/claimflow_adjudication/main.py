"""The adjudication API application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from claimflow_adjudication.adapters.plan_feed import PlanFeed
from claimflow_adjudication.api import plans, providers, remittances
from claimflow_adjudication.api.errors import install_error_handlers
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_shared.db import create_engine, ping
from claimflow_shared.kafka.admin import kafka_reachable
from claimflow_shared.logs import configure_logging
from claimflow_shared.web.app import build_app
from claimflow_shared.web.health import ReadinessCheck
from claimflow_shared.web.ratelimit import RateLimiter

DESCRIPTION = """
Adjudicates dental claims against benefit plans (from `claims.submitted`), keeps exact
per-provider totals of net fees, and runs the payments saga. This API serves reads: the top
providers by summed net fee, one provider's totals, the plans in force, and the
remittances (ASC X12 835) of the remittance runs.

All errors are RFC 9457 `application/problem+json`. Authenticate with
`Authorization: Bearer <api key>` (role `payer-reader` or `payer-admin`).
"""


def create_app(settings: AdjudicationSettings | None = None) -> FastAPI:
    settings = settings or AdjudicationSettings()
    configure_logging(settings.service_name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine(settings)
        # Reads are single statements: autocommit spares each one a BEGIN and a ROLLBACK.
        app.state.read_engine = app.state.engine.execution_options(isolation_level="AUTOCOMMIT")
        feed = PlanFeed(settings)
        app.state.plan_feed = feed
        app.state.plans = feed.registry
        app.state.top_providers_limiter = RateLimiter(
            app.state.rate_limits, settings.top_providers_rate_limit, scope="providers-top"
        )
        # The worker creates the plans topic; this reader waits for it, on its own thread, so
        # neither a missing topic nor a Kafka outage delays serving totals.
        feed.start()
        try:
            yield
        finally:
            await feed.stop()
            await app.state.engine.dispose()

    async def database() -> None:
        await ping(app.state.engine)

    async def kafka() -> None:
        await kafka_reachable(settings)

    async def plan_feed() -> None:
        await app.state.plan_feed.check()

    app = build_app(
        settings,
        title="claimflow adjudication",
        description=DESCRIPTION,
        version="1.0.0",
        lifespan=lifespan,
        checks={
            "database": ReadinessCheck(database),
            "kafka": ReadinessCheck(kafka, required=settings.ready_requires_kafka),
            "plans": ReadinessCheck(plan_feed, required=False),
        },
        openapi_tags=[
            {"name": "providers", "description": "Provider totals and the top providers"},
            {"name": "plans", "description": "Benefit plans in force"},
            {"name": "remittances", "description": "835 remittance advice per payee and run"},
            {"name": "operations", "description": "Health, readiness and metrics"},
        ],
    )
    install_error_handlers(app)
    app.include_router(providers.router)
    app.include_router(plans.router)
    app.include_router(remittances.router)
    return app
