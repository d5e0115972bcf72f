"""The FastAPI skeleton every service starts from: errors, limits, metrics, health, tracing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from claimflow_shared.settings import ServiceSettings
from claimflow_shared.telemetry import instrument_app, setup_tracing

from .auth import ApiKeyAuthenticator
from .docs import install_docs
from .headers import SecurityHeadersMiddleware
from .health import Check, ReadinessCheck, health_router
from .limits import BodySizeLimitMiddleware, BodyTooLargeError, too_large
from .metrics import RedMetricsMiddleware, metrics_router
from .oidc import OidcVerifier
from .problems import install_problem_handlers, problem_response
from .ratelimit import RateLimiter, RateLimitStorage

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
    body_limits: Mapping[str, int] | None = None,
    openapi_tags: list[dict[str, Any]] | None = None,
) -> FastAPI:
    """The app, its state holding `settings`, the `authenticator` and, for the service's
    lifespan, the `rate_limits` storage (its own limiters count there too), the
    `auth_failures` limiter and the `oidc` verifier (None without an issuer)."""

    @asynccontextmanager
    async def with_auth_state(app: FastAPI) -> AsyncIterator[None]:
        storage = RateLimitStorage(
            settings.rate_limit_storage_url.get_secret_value(),
            key_prefix=settings.rate_limit_key_prefix,
        )
        app.state.rate_limits = storage
        app.state.auth_failures = RateLimiter(
            storage, settings.auth_failure_limit, scope="auth-failures"
        )
        app.state.oidc = OidcVerifier(settings) if settings.oidc_issuer else None
        try:
            async with lifespan(app):
                yield
        finally:
            await storage.close()
            if app.state.oidc is not None:
                await app.state.oidc.close()

    async def rate_limit_storage() -> None:
        await app.state.rate_limits.check()

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=with_auth_state,
        openapi_tags=openapi_tags,
        # Replaced by install_docs: FastAPI's own pages load their assets from a public CDN.
        docs_url=None,
        redoc_url=None,
        # Traced by instrument_app's single server span; FastAPI's native telemetry would add
        # spans of its own to every request (and export metrics and logs besides ours).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.authenticator = ApiKeyAuthenticator(
        settings.api_keys, key_file=settings.api_keys_file, service=settings.service_name
    )
    install_problem_handlers(app)

    async def body_too_large(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BodyTooLargeError)
        return problem_response(too_large(exc.limit, None), request)

    app.add_exception_handler(BodyTooLargeError, body_too_large)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes, path_limits=body_limits)
    app.add_middleware(
        SecurityHeadersMiddleware, hsts_max_age_seconds=settings.hsts_max_age_seconds
    )
    app.add_middleware(RedMetricsMiddleware, service=settings.service_name)
    # Limits fail open when their storage is down, so it only reports.
    checks = {**checks, "rate_limit_storage": ReadinessCheck(rate_limit_storage, required=False)}
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
