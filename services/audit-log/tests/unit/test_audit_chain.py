"""The hash chain: linking, the documented hash rule, and what the walker reports."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from claimflow_audit.domain.canonical import GENESIS_HASH
from claimflow_audit.domain.chain import AuditRecord, ChainHead, Entry, link
from claimflow_audit.domain.walk import ChainWalk, Linked, Reason

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def entry(n: int, **overrides: object) -> Entry:
    fields: dict[str, object] = {
        "event_id": f"e-{n}",
        "type": "io.claimflow.claim.submitted.v1",
        "event_time": T0 + timedelta(seconds=n),
        "source": "/claimflow/intake",
        "subject": "0b6f2a8e-6d4e-4a50-9a0c-1c2f5d6e7f80",
        "actor": "clearinghouse",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "topic": "claims.submitted",
        "kafka_partition": 1,
        "kafka_offset": n,
        "payload_digest": hashlib.sha256(str(n).encode()).hexdigest(),
    }
    return Entry(**(fields | overrides))  # type: ignore[arg-type]


def chain(count: int) -> list[AuditRecord]:
    return link(ChainHead(), [entry(n) for n in range(1, count + 1)], T0)


def walk(records: list[AuditRecord], first_seq: int = 1, anchor: str | None = GENESIS_HASH):
    walker = ChainWalk(first_seq, anchor)
    walker.feed(Linked.of(r) for r in records)
    return walker, walker.finish(records[-1].seq if records else None)


def test_the_hash_is_sha256_of_the_previous_hash_and_the_rfc_8785_body() -> None:
    first = chain(1)[0]
    body = {
        "seq": 1,
        "event_id": "e-1",
        "type": "io.claimflow.claim.submitted.v1",
        "source": "/claimflow/intake",
        "subject": "0b6f2a8e-6d4e-4a50-9a0c-1c2f5d6e7f80",
        "actor": "clearinghouse",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "event_time": "2024-05-01T12:00:01.000000Z",
        "recorded_at": "2024-05-01T12:00:00.000000Z",
        "topic": "claims.submitted",
        "kafka_partition": 1,
        "kafka_offset": 1,
        "payload_digest": hashlib.sha256(b"1").hexdigest(),
        "detail": None,
    }
    assert first.prev_hash == "0" * 64
    assert first.body() == body
    assert first.hash == hashlib.sha256(("0" * 64).encode() + rfc8785.dumps(body)).hexdigest()


def test_link_numbers_from_the_head_and_links_each_record_to_the_one_before() -> None:
    records = chain(3)
    more = link(ChainHead(3, records[-1].hash, records[-1].recorded_at), [entry(4)], T0)
    together = records + more
    assert [r.seq for r in together] == [1, 2, 3, 4]
    assert [r.prev_hash for r in together[1:]] == [r.hash for r in together[:-1]]
    assert walk(together)[1] is None


def test_recorded_at_never_goes_back_even_when_this_clock_is_behind_the_head() -> None:
    head = ChainHead(7, "a" * 64, T0, "x")
    records = link(head, [entry(8)], T0 - timedelta(minutes=5))
    assert records[0].recorded_at == T0


def test_an_intact_chain_verifies_with_every_record_checked() -> None:
    walker, finding = walk(chain(10))
    assert finding is None
    assert walker.checked == 10
    assert walker.last_hash == chain(10)[-1].hash


def test_a_changed_field_is_a_hash_mismatch_at_that_record() -> None:
    records = chain(10)
    records[4] = dataclasses.replace(records[4], payload_digest="f" * 64)
    walker, finding = walk(records)
    assert finding is not None
    assert (finding.seq, finding.reason) == (5, Reason.HASH_MISMATCH)
    assert walker.checked == 4


def test_a_changed_and_rehashed_record_breaks_the_next_link() -> None:
    records = chain(10)
    forged = link(ChainHead(4, records[3].hash, T0), [entry(5, actor="mallory")], T0)[0]
    records[4] = forged
    _, finding = walk(records)
    assert finding is not None
    assert (finding.seq, finding.reason) == (6, Reason.PREV_HASH_MISMATCH)


def test_a_deleted_record_is_a_gap_named_by_its_seq() -> None:
    records = chain(10)
    del records[6]
    _, finding = walk(records)
    assert finding is not None
    assert (finding.seq, finding.reason) == (7, Reason.GAP)
    assert "record 7 is missing" in finding.explain()


def test_records_missing_at_the_end_of_a_range_are_a_gap() -> None:
    walker = ChainWalk(1, GENESIS_HASH)
    walker.feed(Linked.of(r) for r in chain(5))
    finding = walker.finish(8)
    assert finding is not None
    assert (finding.seq, finding.reason) == (6, Reason.GAP)


def test_a_range_starts_from_its_anchor_or_on_trust() -> None:
    records = chain(10)
    _, finding = walk(records[5:], first_seq=6, anchor=records[4].hash)
    assert finding is None
    _, finding = walk(records[5:], first_seq=6, anchor="0" * 64)
    assert finding is not None
    assert finding.reason == Reason.PREV_HASH_MISMATCH
    _, finding = walk(records[5:], first_seq=6, anchor=None)
    assert finding is None


def test_the_walker_stops_at_the_first_finding_across_chunks() -> None:
    records = chain(9)
    records[1] = dataclasses.replace(records[1], actor="x")
    records[7] = dataclasses.replace(records[7], actor="y")
    walker = ChainWalk(1, GENESIS_HASH)
    assert walker.feed(Linked.of(r) for r in records[:3]) is False
    assert walker.feed(Linked.of(r) for r in records[3:]) is False
    finding = walker.finish(9)
    assert finding is not None
    assert finding.seq == 2


@given(
    st.integers(0, 5),
    st.sampled_from(
        ["event_id", "type", "source", "subject", "actor", "trace_id", "topic", "payload_digest"]
    ),
    st.text(min_size=1, max_size=20),
)
def test_any_change_to_any_hashed_text_field_is_found_at_that_record(
    index: int, name: str, value: str
) -> None:
    records = chain(6)
    if getattr(records[index], name) == value:
        return
    records[index] = dataclasses.replace(records[index], **{name: value})
    _, finding = walk(records)
    assert finding is not None
    assert (finding.seq, finding.reason) == (index + 1, Reason.HASH_MISMATCH)


@pytest.mark.parametrize("field", ["event_time", "recorded_at"])
def test_a_microsecond_change_of_a_time_is_found(field: str) -> None:
    records = chain(3)
    moved = getattr(records[1], field) + timedelta(microseconds=1)
    records[1] = dataclasses.replace(records[1], **{field: moved})
    _, finding = walk(records)
    assert finding is not None
    assert finding.seq == 2
