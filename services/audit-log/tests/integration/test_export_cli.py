"""`claimflow-audit` as an operator runs it: export a time range, verify it, verify the DB."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.domain.chain import Entry
from claimflow_audit.service_layer.archive import compare_with_chain, verify_export
from claimflow_audit.settings import AuditSettings
from claimflow_devstack.testing import run_cli

from ..conftest import tamper

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def cli(settings: AuditSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CLAIMFLOW_DATABASE_URL": settings.database_url.get_secret_value(),
        "CLAIMFLOW_VERIFY_CHUNK_SIZE": "7",
    }
    return run_cli("claimflow_audit", args, env)


async def run(settings: AuditSettings, *args: str) -> tuple[int, Any]:
    done = await asyncio.to_thread(cli, settings, *args)
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError:
        return done.returncode, done.stderr


async def append_at(engine: AsyncEngine, moment: datetime, count: int, tag: str) -> None:
    entries = [
        Entry(event_id=f"{tag}-{n}", type="x.v1", event_time=moment, actor="a")
        for n in range(count)
    ]
    async with engine.begin() as conn:
        await store.append(conn, entries, clock=lambda: moment)


async def test_export_a_day_and_verify_it_offline_and_against_the_chain(
    settings: AuditSettings, engine: AsyncEngine, owner: AsyncEngine, tmp_path: Path
) -> None:
    for day in range(3):
        await append_at(engine, T0 + timedelta(days=day, hours=6), 10 + day, f"d{day}")
    output = tmp_path / "archive" / "audit-2024-05-02.jsonl.gz"
    code, summary = await run(
        settings, "export", "--from", "2024-05-02", "--to", "2024-05-03", "--output", str(output)
    )
    assert code == 0, summary
    assert (summary["first_seq"], summary["last_seq"], summary["count"]) == (11, 21, 11)
    async with engine.connect() as conn:
        assert summary["prev_hash"] == await store.hash_at(conn, 10)
        assert summary["last_hash"] == await store.hash_at(conn, 21)
    with gzip.open(output, "rt") as fh:
        lines = [json.loads(line) for line in fh]
    assert lines[0]["format"] == "claimflow-audit-export"
    assert [r["event_id"] for r in lines[1:]] == [f"d1-{n}" for n in range(11)]

    code, report = await run(settings, "verify-export", str(output), "--check-database")
    assert code == 0, report
    assert (report["valid"], report["checked"]) == (True, 11)
    assert report["database"] == {"prev_hash_matches": True, "last_hash_matches": True}

    # A record rewritten after the export: the archive no longer matches the chain, and the
    # chain itself no longer verifies.
    await tamper(owner, "UPDATE audit_records SET hash = repeat('a', 64) WHERE seq = 21")
    assert await compare_with_chain(engine, lines[0]) == {
        "prev_hash_matches": True,
        "last_hash_matches": False,
    }
    code, report = await run(settings, "verify")
    assert (code, report["valid"], report["checked"]) == (1, False, 20)
    assert (report["first_invalid"], report["reason"]) == (21, "hash_mismatch")


async def test_an_empty_range_exports_its_anchor_and_a_broken_chain_is_not_exported(
    settings: AuditSettings, engine: AsyncEngine, owner: AsyncEngine, tmp_path: Path
) -> None:
    await append_at(engine, T0, 5, "early")
    await append_at(engine, T0 + timedelta(days=5), 5, "late")
    empty = tmp_path / "empty.jsonl.gz"
    code, summary = await run(
        settings, "export", "--from", "2024-05-02", "--to", "2024-05-03", "--output", str(empty)
    )
    assert code == 0, summary
    async with engine.connect() as conn:
        fifth = await store.hash_at(conn, 5)
    assert (summary["count"], summary["prev_hash"], summary["last_hash"]) == (0, fifth, fifth)
    assert (await asyncio.to_thread(verify_export, empty)).valid

    await tamper(owner, "DELETE FROM audit_records WHERE seq = 8")
    broken = tmp_path / "broken.jsonl.gz"
    code, message = await run(
        settings, "export", "--from", "2024-05-06", "--to", "2024-05-07", "--output", str(broken)
    )
    assert code == 1
    assert "record 8 is missing" in message
    leftovers = await asyncio.to_thread(lambda: sorted(p.name for p in tmp_path.iterdir()))
    assert leftovers == ["empty.jsonl.gz"]
