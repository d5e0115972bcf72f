"""The consumer side of a trace: one processing span per record, a child of its producer's."""

from __future__ import annotations

from contextlib import AbstractContextManager

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from .consumer import Consumed
from .tracing import messaging_attributes

tracer = trace.get_tracer("claimflow_shared.kafka")


def _name_and_attributes(consumed: Consumed) -> tuple[str, dict[str, str | int]]:
    return f"{consumed.topic} process", messaging_attributes(
        consumed.topic, "process", key=consumed.key, partition=consumed.partition
    )


def process_span(consumed: Consumed) -> AbstractContextManager[Span]:
    """The record's processing span, current while the block runs."""
    name, attributes = _name_and_attributes(consumed)
    return tracer.start_as_current_span(
        name, context=consumed.parent, kind=SpanKind.CONSUMER, attributes=attributes
    )


def start_process_span(consumed: Consumed) -> Span:
    """The same span, started but not made current: for work that covers a whole batch
    (one transaction) and ends every record's span together."""
    name, attributes = _name_and_attributes(consumed)
    return tracer.start_span(
        name, context=consumed.parent, kind=SpanKind.CONSUMER, attributes=attributes
    )
