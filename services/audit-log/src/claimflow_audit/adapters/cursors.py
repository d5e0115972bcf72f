"""Opaque page cursors of a claim's timeline: the (event time, seq) of the last record shown."""

from __future__ import annotations

from typing import Any

from claimflow_audit.adapters.store import TimelineKey
from claimflow_audit.domain.canonical import canonical_time, parse_canonical_time
from claimflow_audit.domain.chain import AuditRecord
from claimflow_shared import pagination


def encode_cursor(record: AuditRecord) -> str:
    return pagination.encode_cursor([canonical_time(record.event_time), record.seq])


def _timeline_key(fields: list[Any]) -> TimelineKey:
    moment, seq = fields
    if not isinstance(seq, int) or not isinstance(moment, str):
        raise TypeError("not a timeline key")
    return parse_canonical_time(moment), seq


def decode_cursor(cursor: str) -> TimelineKey:
    return pagination.decode_cursor(cursor, _timeline_key, message="not a timeline cursor")
