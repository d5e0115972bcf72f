"""OpenTelemetry: one tracer provider per process, OTLP export when a collector is configured."""

from __future__ import annotations

import threading

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from starlette.types import ASGIApp

from claimflow_shared.web.tracing import ServerSpanMiddleware

_lock = threading.Lock()
_provider: TracerProvider | None = None


def setup_tracing(
    service: str,
    otlp_endpoint: str | None,
    extra_processors: tuple[SpanProcessor, ...] = (),
    *,
    db_statements: bool = True,
) -> TracerProvider:
    """Install the process-wide tracer provider once; later calls return the same one.

    `db_statements=False` leaves the database driver uninstrumented (no span per statement).
    """
    global _provider  # noqa: PLW0603 - the OpenTelemetry provider is process-global by design
    with _lock:
        if _provider is None:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            if otlp_endpoint:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                    OTLPSpanExporter,
                )

                endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
            trace.set_tracer_provider(provider)
            if db_statements:
                AsyncPGInstrumentor().instrument(  # type: ignore[no-untyped-call]
                    tracer_provider=provider
                )
            _provider = provider
        for processor in extra_processors:
            _provider.add_span_processor(processor)
        return _provider


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    """One server span per request (`web.tracing.ServerSpanMiddleware`), outside every other
    middleware: it sees the 500 that the error middleware answers, and its context is current
    for everything else the request does. FastAPI's own telemetry must be off (build_app)."""
    build_stack = app.build_middleware_stack

    def build_traced_stack() -> ASGIApp:
        return ServerSpanMiddleware(build_stack(), provider)

    app.build_middleware_stack = build_traced_stack  # type: ignore[method-assign]
