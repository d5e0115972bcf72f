"""The timeline's page cursor: the (event time, seq) of a page's last record round-trips,
and anything else is a BadCursorError (the API's 400), never another exception."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from claimflow_audit.adapters.cursors import decode_cursor, encode_cursor
from claimflow_audit.domain.chain import AuditRecord
from claimflow_audit.domain.errors import BadCursorError


@dataclass
class _Last:
    """The two fields of the page's last record the cursor is made of."""

    event_time: datetime
    seq: int


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_the_timeline_key_round_trips() -> None:
    last = _Last(datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC), 41)
    cursor = encode_cursor(cast(AuditRecord, last))
    assert decode_cursor(cursor) == (last.event_time, last.seq)


@pytest.mark.parametrize(
    "fields",
    [
        ["2024-05-01T12:30:00+00:00", "41"],
        [41, "2024-05-01T12:30:00+00:00"],
        ["yesterday", 41],
        ["2024-05-01T12:30:00+00:00"],
        {"event_time": "2024-05-01T12:30:00+00:00", "seq": 41},
    ],
)
def test_a_tampered_cursor_is_a_bad_cursor(fields: Any) -> None:
    with pytest.raises(BadCursorError, match="not a timeline cursor"):
        decode_cursor(_b64(fields))
