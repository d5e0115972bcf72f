"""The strict and the lenient CloudEvents decoders: what each accepts and refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from claimflow_shared.events import EventDecodeError, decode_event
from claimflow_shared.events.envelope import UncheckedData, decode_envelope


def envelope(**overrides: Any) -> bytes:
    base: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/test",
        "type": "com.example.thing.v3",
        "time": "2024-05-01T12:00:00Z",
        "subject": "s-1",
        "data": {"anything": [1, 2.5, None]},
    }
    return json.dumps({k: v for k, v in (base | overrides).items() if v is not ...}).encode()


def test_the_lenient_decoder_takes_any_type_and_leaves_data_unchecked() -> None:
    event = decode_envelope(envelope(extension_attr="kept out"))
    assert (event.id, event.type, event.subject) == ("e-1", "com.example.thing.v3", "s-1")
    assert event.data == UncheckedData(value={"anything": [1, 2.5, None]})
    known_but_wrong = decode_envelope(envelope(type="io.claimflow.claim.submitted.v1"))
    assert isinstance(known_but_wrong.data, UncheckedData)
    assert decode_envelope(envelope(data=...)).data == UncheckedData(value=None)
    binary = decode_envelope(envelope(data=..., data_base64="aGk="))
    assert binary.data == UncheckedData(value=None, data_base64="aGk=")


def test_the_strict_decoder_still_refuses_what_it_does_not_know() -> None:
    with pytest.raises(EventDecodeError, match="unknown event type"):
        decode_event(envelope())


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"not json",
        b"[1, 2]",
        envelope(specversion="0.3"),
        envelope(id=""),
        envelope(source=...),
        envelope(type=...),
        envelope(time=...),
        envelope(time="yesterday"),
    ],
)
def test_the_lenient_decoder_still_requires_a_cloudevents_envelope(raw: bytes | None) -> None:
    with pytest.raises(EventDecodeError):
        decode_envelope(raw)
