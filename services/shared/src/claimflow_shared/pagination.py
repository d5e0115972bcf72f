"""Opaque page cursors: the sort key of the last item of a page, as base64url JSON.

A client only hands a cursor back; it is opaque so the key it holds can change without a
new API version. A cursor that does not decode to the key the service expects (tampered,
truncated, or from another endpoint) is a BadCursorError, which the API answers with 400.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from claimflow_shared.errors import BadCursorError

__all__ = ["BadCursorError", "decode_cursor", "encode_cursor"]

K = TypeVar("K")
CursorField = str | int


def encode_cursor(key: Sequence[CursorField]) -> str:
    """The cursor of a sort key given as a sequence of strings and integers."""
    raw = json.dumps(list(key), separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str, load: Callable[[list[Any]], K], *, message: str = "not a cursor this API issued"
) -> K:
    """The sort key of `cursor`, built by `load` from its JSON array.

    `load` raises ValueError or TypeError (unpacking the wrong number of fields, parsing a
    field) for anything that is not a key it accepts; that, like any decoding failure, is
    a BadCursorError with `message`.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        fields = json.loads(raw)
        if not isinstance(fields, list):
            raise BadCursorError(message)
        return load(fields)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise BadCursorError(message) from exc
