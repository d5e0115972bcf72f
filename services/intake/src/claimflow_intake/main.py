"""The intake API application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from claimflow_intake.api import bulk, claims, fhir, x12
from claimflow_intake.api.errors import install_error_handlers
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.db import create_engine, ping
from claimflow_shared.kafka.admin import kafka_reachable
from claimflow_shared.logs import configure_logging
from claimflow_shared.web.app import build_app
from claimflow_shared.web.health import ReadinessCheck
from claimflow_shared.web.openapi import register_schemas
from claimflow_shared.web.ratelimit import RateLimiter

DESCRIPTION = """
Takes dental insurance claims in, validates every line against the validation rules, and
queues accepted claims for adjudication over Kafka.

All errors are RFC 9457 `application/problem+json`; validation errors list every failing
rule with its line index and field. Authenticate with `Authorization: Bearer <api key>`.
"""

# Routes that take files of thousands of claims: settings.bulk_max_body_bytes, not
# max_body_bytes.
BULK_PATHS = ("/v1/claims/batch", "/v1/claims/x12")


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    configure_logging(settings.service_name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine(settings)
        app.state.submission_limiter = RateLimiter(
            app.state.rate_limits, settings.submission_rate_limit, scope="claims-submit"
        )
        app.state.import_limiter = RateLimiter(
            app.state.rate_limits, settings.import_rate_limit, scope="claims-import"
        )
        try:
            yield
        finally:
            await app.state.engine.dispose()

    async def database() -> None:
        await ping(app.state.engine)

    async def kafka() -> None:
        await kafka_reachable(settings)

    app = build_app(
        settings,
        title="claimflow intake",
        description=DESCRIPTION,
        version="1.0.0",
        lifespan=lifespan,
        checks={
            "database": ReadinessCheck(database),
            "kafka": ReadinessCheck(kafka, required=settings.ready_requires_kafka),
        },
        max_body_bytes=settings.max_body_bytes,
        body_limits=dict.fromkeys(BULK_PATHS, settings.bulk_max_body_bytes),
        openapi_tags=[
            {"name": "claims", "description": "Submit, import, read and list claims"},
            {"name": "fhir", "description": "A claim as FHIR R4B Claim, ClaimResponse and EOB"},
            {"name": "operations", "description": "Health, readiness and metrics"},
        ],
    )
    install_error_handlers(app)
    app.include_router(bulk.router)
    app.include_router(x12.router)
    app.include_router(claims.router)
    app.include_router(fhir.router)
    register_schemas(app, (*claims.REQUEST_MODELS, *bulk.REQUEST_MODELS))
    return app
