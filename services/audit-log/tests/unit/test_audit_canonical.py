"""Canonical encodings: the fast record encoder is RFC 8785, digests and times are stable."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from claimflow_audit.domain.canonical import (
    NotCanonicalizableError,
    canonical_json,
    canonical_record,
    canonical_time,
    parse_canonical_time,
    payload_digest,
)
from claimflow_audit.domain.chain import HASHED_FIELDS

# What a record body may hold: strings (any Unicode a producer can send, bar surrogates),
# integers within I-JSON, null, and for checkpoint details nested objects of those.
_text = st.text(st.characters(exclude_categories=("Cs",)))
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), _text)
_detail = st.dictionaries(
    st.text(st.characters(min_codepoint=32, max_codepoint=126)),
    st.recursive(_scalar, lambda inner: st.dictionaries(_text, inner, max_size=3), max_leaves=6),
    max_size=4,
)
_bodies = st.fixed_dictionaries(
    {name: _scalar for name in HASHED_FIELDS if name != "detail"} | {"detail": _detail | st.none()}
)


@given(_bodies)
def test_the_fast_record_encoder_produces_exactly_rfc_8785(body: dict[str, Any]) -> None:
    assert canonical_record(body) == rfc8785.dumps(body)


def test_record_encoding_escapes_only_what_json_requires() -> None:
    body = {"b": 'quote " backslash \\ tab \t nul \x00 é ☃ 𝄞', "a": None, "c": 2**53 - 1}
    assert (
        canonical_record(body)
        == (
            '{"a":null,"b":"quote \\" backslash \\\\ tab \\t nul \\u0000 é ☃ 𝄞",'
            '"c":9007199254740991}'
        ).encode()
    )


def test_payload_digest_is_sha256_of_the_jcs_form_whatever_the_key_order_or_spacing() -> None:
    one = {"b": [1, 2.5, 1e21], "a": {"y": "z", "x": None}}
    two = {"a": {"x": None, "y": "z"}, "b": [1, 2.5, 1e21]}
    expected = hashlib.sha256(b'{"a":{"x":null,"y":"z"},"b":[1,2.5,1e+21]}').hexdigest()
    assert payload_digest(one) == payload_digest(two) == expected


def test_payload_digest_of_no_data_and_of_binary_data() -> None:
    assert payload_digest(None) == hashlib.sha256(b"null").hexdigest()
    assert payload_digest(None, "aGVsbG8=") == hashlib.sha256(b"hello").hexdigest()
    with pytest.raises(NotCanonicalizableError):
        payload_digest(None, "not base64!")


@pytest.mark.parametrize("value", [2**53, float("nan"), float("inf"), "\ud800"])
def test_values_outside_i_json_have_no_canonical_form(value: Any) -> None:
    with pytest.raises(NotCanonicalizableError):
        canonical_json({"v": value})


def test_canonical_time_is_utc_with_microseconds_and_round_trips() -> None:
    moment = datetime(2024, 5, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    text = canonical_time(moment)
    assert text == "2024-05-01T12:00:00.000005Z"
    assert parse_canonical_time(text) == moment
    naive = datetime(2024, 5, 1, 12)  # noqa: DTZ001 - a producer that sent no offset
    assert canonical_time(naive) == "2024-05-01T12:00:00.000000Z"
    assert canonical_time(datetime(5, 1, 1, tzinfo=UTC)) == "0005-01-01T00:00:00.000000Z"
