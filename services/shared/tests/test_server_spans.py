"""Every service's app (built by build_app) makes one SERVER span per request: named after
the route template, continuing the caller's W3C trace, current while the route runs, failed
on a 500, and none for probes and scrapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from claimflow_shared.settings import ServiceSettings
from claimflow_shared.telemetry import setup_tracing
from claimflow_shared.web.app import build_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def module_exporter() -> InMemorySpanExporter:
    # The provider is process-wide and keeps its processors: one exporter for the module.
    exporter = InMemorySpanExporter()
    setup_tracing("spans-test", None, (SimpleSpanProcessor(exporter),))
    return exporter


@pytest.fixture
def exporter(module_exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    module_exporter.clear()
    return module_exporter


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield


class BoomError(Exception):
    pass


def _app() -> FastAPI:
    app = build_app(
        ServiceSettings(service_name="spans-test"),
        title="Spans test",
        description="t",
        version="1",
        lifespan=_lifespan,
        checks={},
    )

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        context = trace.get_current_span().get_span_context()
        return {"trace_id": format(context.trace_id, "032x"), "span_id": f"{context.span_id:016x}"}

    @app.get("/v1/boom")
    async def boom() -> None:
        raise BoomError("a message that may quote the request")

    return app


async def _get(app: FastAPI, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.get(path, headers=headers)


def _server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]


async def test_one_server_span_per_request_continues_the_callers_trace(
    exporter: InMemorySpanExporter,
) -> None:
    traceparent = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"
    answer = await _get(_app(), "/v1/things/abc-123", {"traceparent": traceparent})
    assert answer.status_code == 200

    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [s.name for s in spans]  # no framework spans besides ours
    (span,) = spans
    assert span.kind == SpanKind.SERVER
    assert span.name == "GET /v1/things/{thing_id}"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == CALLER_SPAN_ID
    # The route runs inside the span: what it enqueues or logs carries the span's ids.
    assert answer.json() == {"trace_id": TRACE_ID, "span_id": f"{span.context.span_id:016x}"}
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/v1/things/{thing_id}"
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.response.status_code"] == 200
    assert span.status.status_code == StatusCode.UNSET


async def test_a_request_without_traceparent_starts_a_trace(
    exporter: InMemorySpanExporter,
) -> None:
    assert (await _get(_app(), "/v1/things/x")).status_code == 200
    (span,) = _server_spans(exporter)
    assert span.parent is None


async def test_an_unhandled_exception_is_a_failed_span_without_its_message(
    exporter: InMemorySpanExporter,
) -> None:
    answer = await _get(_app(), "/v1/boom")
    assert answer.status_code == 500
    (span,) = _server_spans(exporter)
    assert span.name == "GET /v1/boom"
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 500
    assert span.attributes["error.type"] == "BoomError"
    recorded = " ".join(str(v) for v in span.attributes.values()) + str(span.events)
    assert "quote the request" not in recorded


async def test_unmatched_paths_keep_the_method_as_name(exporter: InMemorySpanExporter) -> None:
    assert (await _get(_app(), "/v1/nowhere/123")).status_code == 404
    (span,) = _server_spans(exporter)
    assert span.name == "GET"  # never the raw path
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 404
    assert "http.route" not in span.attributes


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
async def test_probes_and_scrapes_are_not_traced(exporter: InMemorySpanExporter, path: str) -> None:
    assert (await _get(_app(), path)).status_code == 200
    assert _server_spans(exporter) == []
