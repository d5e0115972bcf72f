"""The claims list's page cursor: the (created_at, id) of a page's last claim round-trips,
and a tampered cursor is a BadCursorError (the API's 400), never another exception."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from claimflow_intake.adapters.repository import decode_cursor, encode_cursor
from claimflow_intake.domain.errors import BadCursorError


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_the_claims_cursor_round_trips_and_rejects_a_tampered_one() -> None:
    key = (datetime(2024, 5, 1, 12, 30, tzinfo=UTC), uuid.uuid4())
    assert decode_cursor(encode_cursor(*key)) == key
    for fields in (["2024-05-01T12:30:00+00:00", 5], [None, str(key[1])], ["x", str(key[1])]):
        with pytest.raises(BadCursorError):
            decode_cursor(_b64(json.dumps(fields).encode()))
