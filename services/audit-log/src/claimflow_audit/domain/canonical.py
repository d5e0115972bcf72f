"""The canonical encodings every hash and digest of the audit log is computed over.

Canonical JSON here is RFC 8785, the JSON Canonicalization Scheme (JCS): object members
sorted by their names' UTF-16 code units, no insignificant whitespace, strings with only the
escapes JSON requires, numbers in ECMAScript's shortest form, UTF-8. Anyone can recompute a
digest or hash in any language from an export or a Kafka message with an off-the-shelf JCS
implementation; nothing here depends on Python's own JSON output.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import rfc8785
from pydantic import JsonValue

GENESIS_HASH = "0" * 64


class NotCanonicalizableError(ValueError):
    """The value has no RFC 8785 form: a number outside I-JSON's range, NaN, a lone surrogate."""


def canonical_json(value: JsonValue) -> bytes:
    """RFC 8785 bytes of any JSON value."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        raise NotCanonicalizableError(str(exc)) from exc


# Built once: json.dumps with options would build a new encoder for every record.
_RECORD_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_record(body: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of a record body, the hot path of appending and verifying.

    Record bodies hold only ASCII member names and strings, integers within 2**53, booleans,
    null and nested objects of those: for such values the C JSON encoder with sorted keys, no
    whitespace and no ASCII escaping produces exactly the JCS bytes (a property test holds the
    two together), at a fraction of the pure-Python encoder's cost.
    """
    try:
        return _RECORD_ENCODER.encode(body).encode("utf-8")
    except (UnicodeEncodeError, ValueError) as exc:
        raise NotCanonicalizableError(str(exc)) from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload_digest(data: JsonValue, data_base64: str | None = None) -> str:
    """SHA-256 of an event's payload: of the decoded bytes for a base64 (binary) payload,
    else of the RFC 8785 form of the `data` JSON value (null when the event has none)."""
    if data_base64 is not None:
        try:
            raw = base64.b64decode(data_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise NotCanonicalizableError("data_base64 is not valid base64") from exc
        return sha256_hex(raw)
    return sha256_hex(canonical_json(data))


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive time (no offset given) is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def canonical_time(moment: datetime) -> str:
    """RFC 3339 in UTC with exactly six fractional digits and a `Z`, e.g.
    2024-05-01T12:00:00.000000Z: PostgreSQL keeps microseconds, so this survives storage."""
    # isoformat pads the year to four digits, unlike strftime; "+00:00" becomes "Z".
    return as_utc(moment).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_canonical_time(text: str) -> datetime:
    if not text.endswith("Z"):
        raise ValueError(f"{text!r} is not a canonical UTC time")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
