"""Opaque page cursors of a claim's timeline: the (event time, seq) of the last record shown."""

from __future__ import annotations

import base64
import binascii
import json

from claimflow_audit.adapters.store import TimelineKey
from claimflow_audit.domain.canonical import canonical_time, parse_canonical_time
from claimflow_audit.domain.chain import AuditRecord
from claimflow_audit.domain.errors import BadCursorError


def encode_cursor(record: AuditRecord) -> str:
    raw = json.dumps([canonical_time(record.event_time), record.seq], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> TimelineKey:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, seq = json.loads(raw)
        if not isinstance(seq, int) or not isinstance(moment, str):
            raise BadCursorError("not a timeline cursor")
        return parse_canonical_time(moment), seq
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursorError("not a timeline cursor") from exc
