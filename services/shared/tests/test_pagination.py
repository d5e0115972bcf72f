"""Page cursors: a key survives the round trip, and anything the API did not issue is a
BadCursorError (the services answer it with 400), never another exception. Each service's
own cursor is tested with the service."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from claimflow_shared.pagination import BadCursorError, decode_cursor, encode_cursor


def _pair(fields: list[Any]) -> tuple[str, int]:
    name, number = fields
    if not isinstance(name, str) or not isinstance(number, int):
        raise TypeError("not a pair")
    return name, number


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_key_survives_the_round_trip_as_url_safe_text() -> None:
    cursor = encode_cursor(["2024-01-01T00:00:00+00:00", 2**40])
    assert cursor.isascii()
    assert not set(cursor) & set("+/=")
    assert decode_cursor(cursor, _pair) == ("2024-01-01T00:00:00+00:00", 2**40)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        "%%%",
        "ä",
        _b64(b"\xff\xfe"),
        _b64(b"{}"),
        _b64(b'{"x": 1}'),
        _b64(b"[]"),
        _b64(b'["a"]'),
        _b64(b'["a", 1, 2]'),
        _b64(b'[1, "a"]'),
        _b64(b"null"),
    ],
)
def test_what_the_api_did_not_issue_is_a_bad_cursor(cursor: str) -> None:
    with pytest.raises(BadCursorError, match="not a cursor this API issued"):
        decode_cursor(cursor, _pair)
