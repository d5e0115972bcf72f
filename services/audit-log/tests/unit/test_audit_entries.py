"""From consumed records to audit entries: every type, tombstones, digests, never the data."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import rfc8785
from opentelemetry.context import Context

from claimflow_audit.service_layer.recording import TOMBSTONE_TYPE, entry_for
from claimflow_shared.events.envelope import decode_envelope
from claimflow_shared.kafka.consumer import ConsumedEvent, ConsumedTombstone, UnprocessableEvent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HEADERS = (("traceparent", f"00-{TRACE}-00f067aa0ba902b7-01".encode()),)
CLAIM = "0b6f2a8e-6d4e-4a50-9a0c-1c2f5d6e7f80"


def envelope(type_: str, data: Any, **extra: Any) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": "ev-1",
            "source": "/claimflow/intake",
            "type": type_,
            "time": "2024-05-01T14:00:00.5+02:00",
            "subject": CLAIM,
            "data": data,
        }
        | extra
    ).encode()


def consumed(raw: bytes, key: str | None = CLAIM) -> ConsumedEvent:
    return ConsumedEvent(decode_envelope(raw), "claims.submitted", 2, 41, key, Context(), HEADERS)


def test_a_submitted_claim_keeps_its_actor_and_a_digest_but_no_phi() -> None:
    data = {
        "claim_id": CLAIM,
        "submitted_by": "clearinghouse",
        "lines": [{"subscriber_number": "S-1"}],
    }
    entry = entry_for(consumed(envelope("io.claimflow.claim.submitted.v1", data)))
    assert entry.event_id == "ev-1"
    assert entry.subject == CLAIM
    assert entry.actor == "clearinghouse"
    assert entry.trace_id == TRACE
    assert entry.event_time == datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)
    assert (entry.topic, entry.kafka_partition, entry.kafka_offset) == ("claims.submitted", 2, 41)
    assert entry.payload_digest == hashlib.sha256(rfc8785.dumps(data)).hexdigest()
    assert "S-1" not in repr(entry)


def test_access_events_name_the_reader_and_later_versions_keep_their_actor() -> None:
    data = {"claim_id": CLAIM, "principal": "dashboard", "action": "claim.read"}
    assert entry_for(consumed(envelope("io.claimflow.audit.access.v1", data))).actor == "dashboard"
    assert entry_for(consumed(envelope("io.claimflow.audit.access.v7", data))).actor == "dashboard"
    assert entry_for(consumed(envelope("io.claimflow.claim.adjudicated.v1", data))).actor is None


def test_unknown_types_and_invalid_data_are_recorded_all_the_same() -> None:
    entry = entry_for(consumed(envelope("com.example.brand-new.v1", [1, "two", None])))
    assert entry.type == "com.example.brand-new.v1"
    assert entry.payload_digest == hashlib.sha256(b'[1,"two",null]').hexdigest()
    wrong = entry_for(consumed(envelope("io.claimflow.claim.submitted.v1", {"lines": "nope"})))
    assert wrong.actor is None


def test_the_subject_falls_back_to_the_message_key() -> None:
    raw = envelope("io.claimflow.plan.published.v1", {}, subject=None)
    assert entry_for(consumed(raw, key="dental/gold")).subject == "dental/gold"


def test_a_tombstone_is_recorded_under_a_stable_id_of_its_place_in_the_log() -> None:
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    tombstone = ConsumedTombstone("claimflow.plans", 0, 17, "dental/gold", Context(), HEADERS, at)
    entry = entry_for(tombstone)
    assert entry.type == TOMBSTONE_TYPE
    assert entry.event_id == f"tombstone:claimflow.plans:0:17:{int(at.timestamp() * 1000)}"
    assert entry.subject == "dental/gold"
    assert entry.event_time == at
    assert entry.payload_digest is None
    assert entry.trace_id == TRACE
    assert entry_for(tombstone) == entry


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (envelope("x.v1", {"n": 2**60}), "no canonical JSON form"),
        (envelope("x.v1", {}, id="i" * 600), "id is longer than 512"),
        (envelope("x.v1", {}, subject="nul\u0000byte"), "characters PostgreSQL cannot store"),
        (envelope("x.v1", {"submitted_by": "x"}, data_base64="@@@"), "no canonical JSON form"),
    ],
)
def test_records_that_could_never_be_stored_are_unprocessable(raw: bytes, reason: str) -> None:
    with pytest.raises(UnprocessableEvent, match=reason):
        entry_for(consumed(raw))
