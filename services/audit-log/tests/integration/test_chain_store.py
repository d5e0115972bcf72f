"""The chain in PostgreSQL: append and verify, tampering found, append-only enforced."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.domain.chain import ChainHead, Entry, link
from claimflow_audit.service_layer.checkpoints import CHECKPOINT_TYPE, checkpoint_once
from claimflow_audit.service_layer.verification import verify_chain

from ..conftest import auth, chain_length, tamper

CLAIM = "0b6f2a8e-6d4e-4a50-9a0c-1c2f5d6e7f80"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def entries(start: int, count: int, subject: str = CLAIM) -> list[Entry]:
    return [
        Entry(
            event_id=f"ev-{n}",
            type="io.claimflow.claim.submitted.v1",
            event_time=T0 + timedelta(seconds=n),
            source="/claimflow/intake",
            subject=subject,
            actor="clearinghouse",
            topic="claims.submitted",
            kafka_partition=0,
            kafka_offset=n,
            payload_digest=hashlib.sha256(str(n).encode()).hexdigest(),
        )
        for n in range(start, start + count)
    ]


async def append(engine: AsyncEngine, batch: list[Entry]) -> store.Appended:
    async with engine.begin() as conn:
        return await store.append(conn, batch)


async def fill(engine: AsyncEngine, count: int, batch: int = 10) -> None:
    for start in range(1, count + 1, batch):
        await append(engine, entries(start, min(batch, count - start + 1)))


async def test_appended_batches_form_one_chain_that_verifies(engine: AsyncEngine) -> None:
    await fill(engine, 45, batch=10)
    result = await verify_chain(engine, chunk_size=7)
    assert (result.valid, result.checked, result.finding) == (True, 45, None)
    async with engine.connect() as conn:
        head = await store.chain_head(conn)
        timeline = await store.timeline(conn, CLAIM)
    assert head.seq == 45
    assert result.last_hash == head.hash
    assert [r.seq for r in timeline] == list(range(1, 46))
    assert [r.event_id for r in timeline] == [f"ev-{n}" for n in range(1, 46)]


async def test_a_changed_payload_digest_is_named_exactly(
    engine: AsyncEngine, owner: AsyncEngine, client: httpx.AsyncClient
) -> None:
    await fill(engine, 30)
    await tamper(owner, f"UPDATE audit_records SET payload_digest = '{'e' * 64}' WHERE seq = 17")
    report = (await client.get("/v1/audit/verify", headers=auth())).json()
    assert report["valid"] is False
    assert report["first_invalid"] == 17
    assert report["reason"] == "hash_mismatch"
    assert report["checked"] == 16
    # The records after it still link to its stored hash: only it is named.
    later = (await client.get("/v1/audit/verify?from_seq=18", headers=auth())).json()
    assert later["valid"] is True


async def test_a_deleted_record_is_named_as_the_gap(
    engine: AsyncEngine, owner: AsyncEngine, client: httpx.AsyncClient
) -> None:
    await fill(engine, 30)
    await tamper(owner, "DELETE FROM audit_records WHERE seq = 9")
    report = (await client.get("/v1/audit/verify", headers=auth())).json()
    assert (report["valid"], report["first_invalid"], report["reason"]) == (False, 9, "gap")
    assert report["checked"] == 8
    assert "record 9 is missing" in report["detail"]


async def test_a_cut_off_tail_shows_against_a_known_length(
    engine: AsyncEngine, owner: AsyncEngine, client: httpx.AsyncClient
) -> None:
    await fill(engine, 20)
    await tamper(owner, "DELETE FROM audit_records WHERE seq > 15")
    report = (await client.get("/v1/audit/verify?to_seq=20", headers=auth())).json()
    assert (report["valid"], report["first_invalid"], report["reason"]) == (False, 16, "gap")


async def test_a_rewritten_and_rehashed_record_breaks_the_next_link(
    engine: AsyncEngine, owner: AsyncEngine
) -> None:
    await fill(engine, 10)
    async with engine.connect() as conn:
        original = (await store.timeline(conn, CLAIM))[4]
    # What a forger who knows the hash rule would write: a consistent record 5 with a new actor.
    head = ChainHead(4, original.prev_hash, original.recorded_at)
    forged = link(head, [replace(entries(5, 1)[0], actor="mallory")], original.recorded_at)[0]
    await tamper(
        owner,
        f"UPDATE audit_records SET actor = 'mallory', hash = '{forged.hash}' WHERE seq = 5",
    )
    result = await verify_chain(engine)
    assert result.finding is not None
    assert (result.finding.seq, result.finding.reason.value) == (6, "prev_hash_mismatch")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_records SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_records WHERE seq = 1",
        "TRUNCATE audit_records",
        "ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only",
    ],
)
async def test_the_application_role_cannot_change_or_remove_records(
    engine: AsyncEngine, statement: str
) -> None:
    await fill(engine, 3)
    with pytest.raises(DBAPIError) as refused:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    assert "permission denied" in str(refused.value) or "must be owner" in str(refused.value)
    assert await chain_length(engine) == 3


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_records SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_records WHERE seq = 1",
        "TRUNCATE audit_records",
    ],
)
async def test_the_trigger_refuses_changes_even_to_a_superuser(
    engine: AsyncEngine, owner: AsyncEngine, statement: str
) -> None:
    await fill(engine, 3)
    with pytest.raises(DBAPIError, match="audit_records is append-only"):
        async with owner.begin() as conn:
            await conn.execute(text(statement))
    assert (await verify_chain(engine)).valid


async def test_redelivered_events_append_nothing(engine: AsyncEngine) -> None:
    first = await append(engine, entries(1, 5))
    again = await append(engine, entries(1, 5) + entries(3, 1))
    overlapping = await append(engine, entries(4, 4))
    assert (len(first.records), first.duplicates) == (5, 0)
    assert (len(again.records), again.duplicates) == (0, 6)
    assert [r.event_id for r in overlapping.records] == ["ev-6", "ev-7"]
    assert await chain_length(engine) == 7
    assert (await verify_chain(engine)).valid


async def test_concurrent_writers_queue_on_the_lock_into_one_gapless_chain(
    engine: AsyncEngine,
) -> None:
    async def writer(index: int) -> None:
        for batch in range(6):
            start = 1 + index * 1000 + batch * 20
            await append(engine, entries(start, 20, subject=f"claim-{index}"))
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(i) for i in range(4)))
    result = await verify_chain(engine, chunk_size=50)
    assert (result.valid, result.checked) == (True, 480)
    async with engine.connect() as conn:
        for index in range(4):
            mine = await store.timeline(conn, f"claim-{index}", limit=1000)
            # Each writer's records keep its own order within the one chain.
            assert [r.seq for r in mine] == sorted(r.seq for r in mine)
            assert len(mine) == 120


async def test_checkpoints_record_the_head_once_per_head(engine: AsyncEngine) -> None:
    assert await checkpoint_once(engine) is None  # nothing to checkpoint yet
    await fill(engine, 12)
    async with engine.connect() as conn:
        head = await store.chain_head(conn)
    checkpoint = await checkpoint_once(engine)
    assert checkpoint is not None
    assert checkpoint.type == CHECKPOINT_TYPE
    assert checkpoint.seq == 13
    assert checkpoint.detail == {"chain_length": 12, "head_hash": head.hash}
    assert checkpoint.prev_hash == head.hash
    assert await checkpoint_once(engine) is None  # nothing new since
    await append(engine, entries(100, 2))
    later = await checkpoint_once(engine)
    assert later is not None
    assert later.detail == {"chain_length": 15, "head_hash": later.prev_hash}
    assert (await verify_chain(engine)).valid


async def test_verify_ranges_and_the_empty_chain(engine: AsyncEngine) -> None:
    empty = await verify_chain(engine)
    assert (empty.valid, empty.checked, empty.to_seq) == (True, 0, 0)
    await fill(engine, 25)
    middle = await verify_chain(engine, from_seq=5, to_seq=11, chunk_size=3)
    assert (middle.valid, middle.checked, middle.from_seq, middle.to_seq) == (True, 7, 5, 11)
    past = await verify_chain(engine, from_seq=20, to_seq=30)
    assert past.finding is not None
    assert (past.finding.seq, past.checked) == (26, 6)


async def test_the_services_connections_plan_each_statement_for_its_parameters(
    engine: AsyncEngine,
) -> None:
    # A generic plan made while the table was small would scan the whole grown chain for
    # every duplicate check (see adapters/db.py).
    async with engine.connect() as conn:
        assert await conn.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
