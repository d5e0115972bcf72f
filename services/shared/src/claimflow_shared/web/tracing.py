"""The server span of every HTTP request: one per request, continuing the caller's trace.

Our own pure-ASGI middleware instead of opentelemetry-instrumentation-fastapi: that one finds
the route by matching every route a second time, decodes every header for each header it
looks up, records histograms nobody reads (the RED metrics are Prometheus's) and cost more
CPU per request than the intake's validation of a claim. This one reads the W3C
`traceparent`/`tracestate` (and `baggage`) through the global propagator, starts a SERVER
span, makes it current for everything the request does (the outbox copies it into each
event's headers, the logs carry its ids) and, once the router has chosen, names it after the
route template (`POST /v1/claims`: never the raw path, which holds claim ids).
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACER_NAME = "claimflow_shared.web"
# Probes and scrapes: a span each would bury the requests that matter.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

Headers = list[tuple[bytes, bytes]]


class _ScopeHeaders(Getter[Headers]):
    """Header lookup for the propagator: ASGI names are lowercase bytes already."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        found = [value.decode("latin-1") for header, value in carrier if header == name]
        return found or None

    def keys(self, carrier: Headers) -> list[str]:
        return [header.decode("latin-1") for header, _ in carrier]


_HEADERS = _ScopeHeaders()


class ServerSpanMiddleware:
    """One SERVER span per HTTP request but those to `untraced` paths, with the stable
    semantic-convention attributes (`http.request.method`, `url.path`, `http.route`,
    `http.response.status_code`, ...); a 5xx or an exception marks it failed. Outermost, so
    that it sees the 500 the error middleware answers for an unhandled exception."""

    def __init__(
        self,
        app: ASGIApp,
        tracer_provider: trace.TracerProvider,
        untraced: Iterable[str] = UNTRACED_PATHS,
    ) -> None:
        self.app = app
        self.tracer = tracer_provider.get_tracer(TRACER_NAME)
        self.untraced = frozenset(untraced)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.untraced:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        parent = propagate.extract(scope["headers"], getter=_HEADERS)
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.scheme": scope.get("scheme", "http"),
            "url.path": scope["path"],
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        server = scope.get("server")
        if server:
            attributes["server.address"] = server[0]
            if server[1] is not None:
                attributes["server.port"] = server[1]
        span = self.tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            await send(message)

        try:
            await self.app(scope, receive, send_traced)
        except Exception as exc:
            # The type only: an exception's text may quote the request.
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
            raise
        finally:
            # The router has put the matched route into the scope by now.
            template = getattr(scope.get("route"), "path", None)
            if template:
                span.set_attribute("http.route", template)
                span.update_name(f"{method} {template}")
            span.end()
            otel_context.detach(token)
