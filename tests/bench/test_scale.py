"""The scale benchmark's bulk load against intake's real schema on the session's PostgreSQL:
the COPY must store claims that intake itself serves as it would have stored them."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import asyncpg
from bench.scale import _copy_history

from claimflow_devstack.testing import api_key, bearer, in_process, session_wiring
from claimflow_intake.cli import MIGRATIONS
from claimflow_intake.main import create_app
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.migrate import upgrade

ORGANISATION = "bench"
KEY = "scale-reader-key"
STORED = 1_200


async def test_bulk_loaded_claims_are_served_by_intake_as_its_own(
    database_url: str, kafka_broker: Any, topic_prefix: str
) -> None:
    await asyncio.to_thread(upgrade, MIGRATIONS, database_url)
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    await _copy_history(dsn, STORED, 0, ORGANISATION)
    connection = await asyncpg.connect(dsn)
    try:
        totals = await connection.fetch(
            "SELECT c.id, c.line_count, c.net_fee_total, count(l.line_no) AS lines,"
            " sum(l.net_fee) AS net FROM claims c JOIN claim_lines l ON l.claim_id = c.id"
            " GROUP BY c.id"
        )
    finally:
        await connection.close()
    # Every claim with its one to four lines, its totals the sum of theirs.
    assert len(totals) == STORED
    assert {row["lines"] for row in totals} == {1, 2, 3, 4}
    assert all(row["line_count"] == row["lines"] for row in totals)
    assert all(row["net_fee_total"] == row["net"] for row in totals)

    settings = IntakeSettings(
        **session_wiring(database_url, kafka_broker.bootstrap_servers, topic_prefix, "intake"),
        api_keys=[api_key(KEY, ORGANISATION, {"reader"})],
    )
    async with in_process(create_app(settings), "intake") as client:
        claim_id = totals[0]["id"]
        response = await client.get(f"/v1/claims/{claim_id}", headers=bearer(KEY))
        assert response.status_code == 200, response.text
        claim = response.json()
        assert claim["status"] == "paid"
        assert len(claim["lines"]) == totals[0]["lines"]
        assert Decimal(claim["totals"]["net_fee"]) == totals[0]["net_fee_total"]
        listed = await client.get("/v1/claims", params={"limit": 100}, headers=bearer(KEY))
        assert listed.status_code == 200, listed.text
        assert len(listed.json()["items"]) == 100
