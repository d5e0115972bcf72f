"""JSON-lines logging with trace correlation and a guard that keeps PHI out of log output."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

# Fields that identify a patient or their care; they must never be written to a log line.
PHI_FIELDS = frozenset(
    {"subscriber_number", "service_date", "subscriber", "date_of_service", "member_id"}
)
REDACTED = "[redacted]"

_PHI_KEY_VALUE = re.compile(
    r"""(?P<key>["']?(?:"""
    + "|".join(sorted(PHI_FIELDS))
    + r""")["']?\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s,;}\]]+)""",
    re.IGNORECASE,
)
# Dates in free text are most likely dates of service; timestamps are emitted separately.
_DATES = re.compile(r"\b(?:\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4})\b")

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def scrub(text: str) -> str:
    text = _PHI_KEY_VALUE.sub(lambda m: m.group("key") + REDACTED, text)
    return _DATES.sub(REDACTED, text)


class PhiGuard(logging.Filter):
    """Redacts PHI from the message and drops PHI-named extras before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        for name in PHI_FIELDS & record.__dict__.keys():
            setattr(record, name, REDACTED)
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            entry["span_id"] = format(ctx.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info and record.exc_info[0] is not None:
            # Only the exception type: its text and traceback locals may hold request data.
            entry["error_type"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(PhiGuard())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # No access log: the RED metrics and the server span record every request already, and a
    # line per request is CPU per request. uvicorn only logs access while this logger (or an
    # ancestor it propagates to) has a handler.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    # kafka-python is chatty at INFO about every connection it makes.
    logging.getLogger("kafka").setLevel(logging.WARNING)
