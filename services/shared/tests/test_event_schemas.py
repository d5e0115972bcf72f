"""The committed JSON Schemas match the models, and events round-trip through them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from claimflow_devstack.testing import claim_line, submitted
from claimflow_shared.events import (
    AuditAccessV1,
    EventDecodeError,
    decode_event,
    new_event,
)
from claimflow_shared.events.schemas import schema_documents, stale

SCHEMAS = Path(__file__).parents[3] / "schemas" / "events"


def test_committed_schemas_are_current() -> None:
    assert stale(SCHEMAS) == [], "run `make schemas` and commit the result"


def test_event_validates_against_its_schema_and_round_trips_exactly() -> None:
    # One periodontal scaling: 130.00 + 16.25 + 0.00 - 65.00.
    event = submitted(
        claim_line(
            submitted_procedure="D4346",
            provider_fees=Decimal("130.00"),
            allowed_fees=Decimal("65.00"),
            member_coinsurance=Decimal("16.25"),
        )
    )
    document = json.loads(event.to_json())
    schema = schema_documents()[f"{event.type}.json"]
    jsonschema.validate(document, schema)
    # Money travels as decimal strings, never as JSON numbers.
    assert document["data"]["lines"][0]["net_fee"] == "81.25"
    decoded = decode_event(event.to_json())
    assert decoded.id == event.id
    assert decoded.data == event.data


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty message"),
        (b"", "empty message"),
        (b"{not json", "not a CloudEvents 1.0 envelope"),
        (
            b'{"specversion":"1.0","id":"1","source":"/x","type":"io.other.v1",'
            b'"time":"2024-01-01T00:00:00Z","data":{}}',
            "unknown event type 'io.other.v1'",
        ),
        (
            b'{"specversion":"1.0","id":"1","source":"/x","type":"io.claimflow.audit.access.v1",'
            b'"time":"2024-01-01T00:00:00Z","data":{"claim_id":"nope"}}',
            "io.claimflow.audit.access.v1 data invalid at accessed_at, action, claim_id, principal",
        ),
    ],
)
def test_undecodable_messages_say_why(raw: bytes | None, reason: str) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode_event(raw)
    assert str(caught.value).startswith(reason)


def test_audit_access_event_type_and_subject() -> None:
    claim_id = uuid.uuid4()
    access = AuditAccessV1(
        claim_id=claim_id, principal="p", action="claim.read", accessed_at=datetime.now(UTC)
    )
    event = new_event("/claimflow/intake", access, subject=str(claim_id))
    assert event.type == "io.claimflow.audit.access.v1"
    assert event.subject == str(claim_id)
