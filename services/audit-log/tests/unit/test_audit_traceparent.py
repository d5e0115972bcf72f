"""W3C traceparent parsing: the trace id, or nothing for what the spec says to discard."""

from __future__ import annotations

import pytest

from claimflow_audit.domain.traceparent import parse_trace_id, trace_id_from_headers

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"00-{TRACE}-00f067aa0ba902b7-01", TRACE),
        (f"00-{TRACE}-00f067aa0ba902b7-00", TRACE),
        (f" 00-{TRACE}-00f067aa0ba902b7-01 ", TRACE),
        (f"01-{TRACE}-00f067aa0ba902b7-01-future-field", TRACE),
        (f"00-{TRACE}-00f067aa0ba902b7-01-extra", None),
        (f"ff-{TRACE}-00f067aa0ba902b7-01", None),
        (f"00-{'0' * 32}-00f067aa0ba902b7-01", None),
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE.upper()}-00f067aa0ba902b7-01", None),
        (f"00-{TRACE[:-1]}-00f067aa0ba902b7-01", None),
        ("", None),
        ("garbage", None),
    ],
)
def test_parse_trace_id(value: str, expected: str | None) -> None:
    assert parse_trace_id(value) == expected


def test_trace_id_from_kafka_headers_skips_other_and_broken_headers() -> None:
    headers = [
        ("tracestate", b"vendor=1"),
        ("traceparent", b"\xff\xfe"),
        ("traceparent", b"nonsense"),
        ("traceparent", f"00-{TRACE}-00f067aa0ba902b7-01".encode()),
    ]
    assert trace_id_from_headers(headers) == TRACE
    assert trace_id_from_headers([]) is None
