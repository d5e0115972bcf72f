"""Remittance runs on the real database: claim 1234 paid through the saga gives one valid
835, a second run finds nothing new, a later reversal goes on the next run; the API lists
and serves them to payer roles only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.cli import main as cli_main
from claimflow_adjudication.service_layer.remittances import run_remittances
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_devstack.testing import eventually
from claimflow_shared.events import Topics

from ..unit.x12 import pyx12_errors, segments
from .conftest import (
    CLEARINGHOUSE_READER_KEY,
    D,
    auth,
    claim_1234,
    claim_status,
    publish_events,
    read_events,
    scalar,
)

PROBLEM = "application/problem+json"


async def _paid(engine: AsyncEngine, claim_id: uuid.UUID) -> bool:
    return await claim_status(engine, claim_id) == "paid"


async def test_a_paid_claim_is_remitted_once_and_its_reversal_on_the_next_run(
    settings: AdjudicationSettings,
    engine: AsyncEngine,
    worker: Any,
    payments: Any,
    client: httpx.AsyncClient,
) -> None:
    event = claim_1234()
    claim_id = event.data.claim_id
    await publish_events(settings, event)
    await eventually(lambda: _paid(engine, claim_id))
    today = datetime.now(UTC).date()

    (first,) = await run_remittances(engine, settings, today, today)
    assert (first.payee_npi, first.claim_count) == ("1497775530", 1)
    assert (first.total_charge, first.total_paid) == (D("516.00"), D("363.00"))
    assert first.net_fee == D("116.85")
    # Idempotent: the same period, or one around it, has nothing left to remit.
    assert await run_remittances(engine, settings, today, today) == []
    assert await run_remittances(engine, settings, today - timedelta(days=3), today) == []

    listed = await client.get("/v1/remittances", headers=auth())
    assert listed.status_code == 200
    (item,) = listed.json()["items"]
    assert item["id"] == str(first.remittance_id)
    assert (item["total_paid"], item["net_fee"]) == ("363.00", "116.85")
    assert listed.headers["Cache-Control"] == "no-store"
    response = await client.get(f"/v1/remittances/{first.remittance_id}", headers=auth())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/edi-x12")
    x12 = response.text
    assert pyx12_errors(x12) == []
    (clp,) = segments(x12, "CLP")
    assert clp[1:5] == [str(claim_id), "1", "516", "363"]
    assert [s[3] for s in segments(x12, "SVC")] == ["95", "108", "32", "128"]

    # A payment taken back after it was remitted (the saga has no such step yet: the row is
    # moved as a recoupment would move it) is reversed on the next run, once.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE claims SET status = 'payment_failed', payment_status = 'failed',"
                " settled_at = now() WHERE claim_id = :c"
            ),
            {"c": claim_id},
        )
    (second,) = await run_remittances(engine, settings, today, today)
    assert (second.total_paid, second.balance_forward) == (D("0.00"), D("-363.00"))
    assert second.net_fee == D("-116.85")
    assert await run_remittances(engine, settings, today, today) == []
    reversal = (await client.get(f"/v1/remittances/{second.remittance_id}", headers=auth())).text
    assert pyx12_errors(reversal) == []
    assert segments(reversal, "CLP")[0][2:5] == ["22", "-516", "-363"]
    assert second.control_number != first.control_number

    page = await client.get(
        "/v1/remittances", params={"payee_npi": "1497775530", "limit": 1}, headers=auth()
    )
    assert [i["id"] for i in page.json()["items"]] == [str(second.remittance_id)]
    rest = await client.get(
        "/v1/remittances",
        params={"payee_npi": "1497775530", "cursor": page.json()["next_cursor"]},
        headers=auth(),
    )
    assert [i["id"] for i in rest.json()["items"]] == [str(first.remittance_id)]
    assert rest.json()["next_cursor"] is None
    other = await client.get("/v1/remittances", params={"payee_npi": "1234567893"}, headers=auth())
    assert other.json()["items"] == []

    # An 835 carries PHI: each of the two reads above was audited, for the claim it carries,
    # and the 404 of an unknown id recorded nothing.
    assert (await client.get(f"/v1/remittances/{uuid.uuid4()}", headers=auth())).status_code == 404
    reads = await read_events(settings, Topics.AUDIT_ACCESS, 2)
    assert [r["data"]["action"] for r in reads] == ["remittance.read"] * 2
    assert {r["data"]["claim_id"] for r in reads} == {str(claim_id)}
    assert {r["data"]["principal"] for r in reads} == {settings.api_keys[0].principal}
    assert await scalar(engine, "SELECT count(*) FROM outbox WHERE topic LIKE '%audit.access'") == 2


async def test_remittances_are_payer_reads_and_bad_input_is_a_problem(
    client: httpx.AsyncClient,
) -> None:
    anonymous = await client.get("/v1/remittances")
    assert (anonymous.status_code, anonymous.headers["content-type"]) == (401, PROBLEM)
    clearinghouse = await client.get("/v1/remittances", headers=auth(CLEARINGHOUSE_READER_KEY))
    assert clearinghouse.status_code == 403
    missing = await client.get(f"/v1/remittances/{uuid.uuid4()}", headers=auth())
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
    for params in ({"cursor": "not-a-cursor"}, {"payee_npi": "12"}, {"limit": "0"}):
        bad = await client.get("/v1/remittances", params=params, headers=auth())
        assert bad.status_code in (400, 422)
        assert bad.headers["content-type"] == PROBLEM
    not_an_id = await client.get("/v1/remittances/42", headers=auth())
    assert not_an_id.status_code == 422


async def test_the_cli_runs_a_period_and_refuses_one_that_ends_before_it_starts(
    settings: AdjudicationSettings, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setenv("CLAIMFLOW_DATABASE_URL", settings.database_url.get_secret_value())
    for args, code in ((["--from", "2024-02-01", "--to", "2024-01-01"], 2),
                       (["--from", "2000-01-01", "--to", "2000-01-31"], 0)):  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            await _in_thread(cli_main, ["remittance", *args])
        assert exit_.value.code == code
    out = capsys.readouterr()
    assert "ends before it starts" in out.err
    assert "nothing settled in the period" in out.out


async def _in_thread(fn: Any, *args: Any) -> None:
    import asyncio  # noqa: PLC0415

    await asyncio.to_thread(fn, *args)
