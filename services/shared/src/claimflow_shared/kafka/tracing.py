"""W3C trace context in Kafka headers, and messaging spans per OpenTelemetry conventions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from opentelemetry import propagate
from opentelemetry.context import Context

Headers = list[tuple[str, bytes]]

TRACE_HEADERS = ("traceparent", "tracestate")


def inject_headers(context: Context | None = None) -> Headers:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return [(k, v.encode()) for k, v in carrier.items()]


def carrier_from(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    return {k: v.decode("latin-1") for k, v in headers or () if k in TRACE_HEADERS}


def extract_context(carrier: Mapping[str, str]) -> Context:
    return propagate.extract(dict(carrier))


def messaging_attributes(
    topic: str,
    operation: Literal["send", "process"],
    *,
    key: str | None = None,
    partition: int | None = None,
) -> dict[str, str | int]:
    """Attributes of a producer ("send") or consumer ("process") span. The key is a claim or
    plan id, never PHI; payloads and their fields are never attributes."""
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        # For Kafka the system-specific names are the generic ones: producers send, consumers
        # process (semantic conventions 1.27+; "publish" is deprecated).
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
    }
    if key is not None:
        attributes["messaging.kafka.message.key"] = key
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    return attributes
