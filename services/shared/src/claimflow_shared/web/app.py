"""The FastAPI skeleton every service starts from: errors, limits, metrics, health, tracing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from claimflow_shared.settings import ServiceSettings
from claimflow_shared.telemetry import instrument_app, setup_tracing

from .auth import ApiKeyAuthenticator
from .caching import NoStoreMiddleware
from .docs import install_docs
from .health import Check, ReadinessCheck, health_router
from .limits import BodySizeLimitMiddleware, BodyTooLargeError
from .metrics import RedMetricsMiddleware, metrics_router
from .problems import PROBLEM_BASE, Problem, install_problem_handlers, problem_response

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def build_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    version: str,
    lifespan: Lifespan,
    checks: Mapping[str, ReadinessCheck],
    liveness: Mapping[str, Check] | None = None,
    max_body_bytes: int = 1_048_576,
    openapi_tags: list[dict[str, Any]] | None = None,
) -> FastAPI:
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
        # Replaced by install_docs: FastAPI's own pages load their assets from a public CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.authenticator = ApiKeyAuthenticator(settings.api_keys)
    install_problem_handlers(app)

    max_bytes = max_body_bytes

    async def body_too_large(request: Request, _exc: Exception) -> JSONResponse:
        problem = Problem(
            type=PROBLEM_BASE + "payload-too-large",
            title="Request body too large",
            status=413,
            detail=f"The body may be at most {max_bytes} bytes.",
        )
        return problem_response(problem, request)

    app.add_exception_handler(BodyTooLargeError, body_too_large)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(NoStoreMiddleware)
    app.add_middleware(RedMetricsMiddleware, service=settings.service_name)
    app.include_router(health_router(checks, liveness))
    app.include_router(metrics_router())
    if settings.serves_api_docs:
        install_docs(app)
    provider = setup_tracing(
        settings.service_name,
        settings.otel_exporter_otlp_endpoint,
        db_statements=settings.trace_db_statements,
    )
    instrument_app(app, provider)
    return app
