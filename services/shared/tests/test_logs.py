"""JSON log lines carry trace ids and never carry PHI."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from claimflow_shared.logs import JsonFormatter, PhiGuard, configure_logging, scrub


def _logger() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("intake"))
    handler.addFilter(PhiGuard())
    logger = logging.getLogger(f"test-{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_phi_is_redacted_from_messages_and_extras() -> None:
    logger, stream = _logger()
    logger.info(
        "claim rejected subscriber_number=3730189502 for %s on 3/28/18",
        "c-1",
        extra={"service_date": "2018-03-28", "claim_id": "c-1"},
    )
    line = stream.getvalue()
    assert "3730189502" not in line
    assert "3/28/18" not in line
    assert "2018-03-28" not in line
    entry = json.loads(line)
    assert entry["service_date"] == "[redacted]"
    assert entry["claim_id"] == "c-1"
    assert entry["service"] == "intake"
    assert entry["level"] == "info"


def test_json_payload_keys_are_redacted() -> None:
    text = scrub('{"subscriber_number": "123", "provider_npi": "1497775530"}')
    assert "123" not in text.replace("1497775530", "")
    assert "1497775530" in text


def test_log_lines_carry_the_active_trace_and_span() -> None:
    logger, stream = _logger()
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("op") as span:
        logger.info("inside")
    entry = json.loads(stream.getvalue())
    context = span.get_span_context()
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")


def test_exceptions_log_their_type_only() -> None:
    logger, stream = _logger()
    try:
        raise ValueError("subscriber 3730189502 not found")
    except ValueError:
        logger.exception("lookup failed")
    entry = json.loads(stream.getvalue())
    assert entry["error_type"] == "ValueError"
    assert "3730189502" not in stream.getvalue()


def test_the_service_logging_writes_uvicorn_errors_but_no_access_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("intake", "INFO")
        # uvicorn decides per connection whether to log access at all by this very test.
        assert not logging.getLogger("uvicorn.access").hasHandlers()
        logging.getLogger("uvicorn.access").info('127.0.0.1 - "POST /v1/claims" 202')
        logging.getLogger("uvicorn.error").info("Application startup complete.")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [entry["message"] for entry in lines] == ["Application startup complete."]
