"""The trace id of a W3C Trace Context `traceparent` header (www.w3.org/TR/trace-context)."""

from __future__ import annotations

import re
from collections.abc import Iterable

# version "-" trace-id "-" parent-id "-" trace-flags, lowercase hex; versions after 00 may
# append fields, which a reader of an older version ignores.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_INVALID_TRACE = "0" * 32
_INVALID_PARENT = "0" * 16


def parse_trace_id(value: str) -> str | None:
    """The 32-hex trace id, or None for anything the spec says to discard."""
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _INVALID_TRACE or parent_id == _INVALID_PARENT:
        return None
    return trace_id


def trace_id_from_headers(headers: Iterable[tuple[str, bytes]]) -> str | None:
    """From Kafka record headers; the first well-formed traceparent wins."""
    for name, raw in headers:
        if name.lower() != "traceparent":
            continue
        try:
            found = parse_trace_id(raw.decode("ascii"))
        except UnicodeDecodeError:
            continue
        if found is not None:
            return found
    return None
