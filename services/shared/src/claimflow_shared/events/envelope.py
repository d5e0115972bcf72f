"""CloudEvents 1.0 structured-mode JSON envelope around the catalog's payloads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from .catalog import EVENT_TYPES, TYPE_OF, EventData

D = TypeVar("D", bound=EventData)


class CloudEvent(BaseModel, Generic[D]):
    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1, examples=["/claimflow/intake"])
    type: str = Field(examples=["io.claimflow.claim.submitted.v1"])
    time: datetime
    subject: str | None = Field(default=None, description="the claim id")
    datacontenttype: Literal["application/json"] = "application/json"
    data: D

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


class EventDecodeError(ValueError):
    """The bytes are not a CloudEvent of a type we know, or its data does not match the type."""


def new_event(source: str, data: D, subject: str | None = None) -> CloudEvent[D]:
    return CloudEvent[D](
        id=str(uuid.uuid4()),
        source=source,
        type=TYPE_OF[type(data)],
        time=datetime.now(UTC),
        subject=subject,
        data=data,
    )


class _Envelope(BaseModel):
    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    source: str
    type: str
    time: datetime
    subject: str | None = None
    datacontenttype: str | None = None
    data: dict[str, Any]


def decode_event(raw: bytes | None) -> CloudEvent[EventData]:
    if not raw:
        raise EventDecodeError("empty message")
    try:
        envelope = _Envelope.model_validate_json(raw)
    except ValidationError as exc:
        raise EventDecodeError(
            f"not a CloudEvents 1.0 envelope ({exc.error_count()} errors)"
        ) from exc
    model = EVENT_TYPES.get(envelope.type)
    if model is None:
        raise EventDecodeError(f"unknown event type {envelope.type!r}")
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise EventDecodeError(f"{envelope.type} data invalid at {', '.join(fields)}") from exc
    return CloudEvent[EventData](
        id=envelope.id,
        source=envelope.source,
        type=envelope.type,
        time=envelope.time,
        subject=envelope.subject,
        data=data,
    )


class UncheckedData(EventData):
    """An event's `data` exactly as received: the envelope was validated, the payload was not.

    What `decode_envelope` returns, for consumers that must take in every event on a topic
    (the audit log) including types or versions this build does not know yet.
    """

    value: JsonValue = None
    # CloudEvents' structured JSON mode carries non-JSON payloads base64-encoded here instead.
    data_base64: str | None = None


class _OpenEnvelope(BaseModel):
    # Extension attributes are legal CloudEvents; they are not ours to reject.
    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: datetime
    subject: str | None = None
    data: JsonValue = None
    data_base64: str | None = None


def decode_envelope(raw: bytes | None) -> CloudEvent[EventData]:
    """Decode a CloudEvents 1.0 structured-JSON envelope of any type, leaving `data` unchecked.

    Raises EventDecodeError only when the bytes are not such an envelope; the data comes back
    as UncheckedData whatever its type says it should hold.
    """
    if not raw:
        raise EventDecodeError("empty message")
    try:
        envelope = _OpenEnvelope.model_validate_json(raw)
    except ValidationError as exc:
        raise EventDecodeError(
            f"not a CloudEvents 1.0 envelope ({exc.error_count()} errors)"
        ) from exc
    return CloudEvent[EventData](
        id=envelope.id,
        source=envelope.source,
        type=envelope.type,
        time=envelope.time,
        subject=envelope.subject,
        data=UncheckedData(value=envelope.data, data_base64=envelope.data_base64),
    )
