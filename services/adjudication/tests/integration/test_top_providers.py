"""Provider totals: exact after 1,000 random claims (with failed payments taken back out),
served by an index scan, and exact under concurrent replicas."""

from __future__ import annotations

import asyncio
import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from opentelemetry.context import Context
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.adapters.plans import PlanRegistry, load_plan_dir
from claimflow_adjudication.service_layer.adjudication import adjudicate_batch
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_devstack.fake_payments import FakePayments
from claimflow_devstack.testing import eventually
from claimflow_shared.events import Topics
from claimflow_shared.kafka.consumer import ConsumedEvent

from .conftest import (
    PLANS_DIR,
    auth,
    claim_line,
    fake_payments_settings,
    publish,
    rows,
    scalar,
    submitted,
)

CLAIMS = 1000
PROVIDERS = [f"{1000000000 + n * 7919}" for n in range(60)]
CODES = ["D0120", "D0210", "D1110", "D2391", "D2740", "D4341", "D7140", "D8080"]
GROUPS = ["GRP-1000", "GRP-2001", "GRP-9000"]


def random_claim(rng: random.Random) -> Any:
    subscriber = f"S{rng.randrange(200)}"
    group = rng.choice(GROUPS)
    lines = []
    for n in range(1, rng.randint(1, 4) + 1):
        fees = Decimal(rng.randrange(1000, 90000)) / 100
        allowed = (fees * Decimal(rng.choice(["0.5", "0.8", "1"]))).quantize(Decimal("0.01"))
        lines.append(
            claim_line(
                n,
                service_date=date(2024, 1, 1) + timedelta(days=rng.randrange(365)),
                submitted_procedure=rng.choice(CODES),
                plan_group=group,
                subscriber_number=subscriber,
                provider_npi=rng.choice(PROVIDERS),
                provider_fees=fees,
                allowed_fees=allowed,
                member_coinsurance=Decimal(rng.randrange(0, 5000)) / 100,
                member_copay=Decimal(rng.choice([0, 0, 1000, 2500])) / 100,
            )
        )
    return submitted(*lines)


INDEPENDENT_AGGREGATE = """
    SELECT r.provider_npi, sum(r.net_fee) AS net_fee_total, count(DISTINCT r.claim_id) AS claims
    FROM claim_line_results r JOIN claims c ON c.claim_id = r.claim_id
    WHERE c.status IN ('adjudicated', 'paid')
    GROUP BY r.provider_npi
    ORDER BY net_fee_total DESC, r.provider_npi
"""


async def test_top_10_after_1000_random_claims_equals_an_independent_aggregate(
    settings: AdjudicationSettings, engine: AsyncEngine, worker: Any, client: httpx.AsyncClient
) -> None:
    rng = random.Random(20240328)
    events = [random_claim(rng) for _ in range(CLAIMS)]
    fake = FakePayments(fake_payments_settings(settings, fake_payments_fail_percent=15))
    await fake.start()
    try:
        await asyncio.to_thread(
            publish,
            settings,
            Topics.CLAIMS_SUBMITTED,
            [(e.subject, e.to_json()) for e in events],
        )

        async def all_settled() -> bool:
            counts = await rows(
                engine, "SELECT payment_status, count(*) AS n FROM claims GROUP BY payment_status"
            )
            by_status = {r.payment_status: r.n for r in counts}
            return sum(by_status.values()) == CLAIMS and by_status.get("requested", 0) == 0

        await eventually(all_settled, within=120, interval=0.5)
    finally:
        await fake.stop()

    statuses = {r.status for r in await rows(engine, "SELECT DISTINCT status FROM claims")}
    assert {"paid", "payment_failed", "rejected"} <= statuses  # every path was taken

    expected = await rows(engine, INDEPENDENT_AGGREGATE)
    response = await client.get("/v1/providers/top", params={"limit": 10}, headers=auth())
    assert response.status_code == 200
    body = response.json()
    assert [
        (p["provider_npi"], p["net_fee_total"], p["claim_count"]) for p in body["providers"]
    ] == [(r.provider_npi, str(r.net_fee_total), r.claims) for r in expected[:10]]
    # Not only the top: every maintained total equals the aggregate, to the cent.
    maintained = await rows(
        engine,
        "SELECT provider_npi, net_fee_total, claim_count FROM provider_totals"
        " ORDER BY net_fee_total DESC, provider_npi",
    )
    assert [tuple(r) for r in maintained] == [tuple(r) for r in expected]


async def test_the_top_read_is_an_index_scan_not_a_sort(
    settings: AdjudicationSettings, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO provider_totals (provider_npi, net_fee_total, claim_count)"
                " SELECT lpad(n::text, 10, '0'), (n % 9973) * 1.37, 1"
                " FROM generate_series(1, 50000) AS n"
            )
        )
        await conn.execute(text("ANALYZE provider_totals"))
        plan = "\n".join(
            r[0]
            for r in await conn.execute(
                text(
                    "EXPLAIN SELECT provider_npi, net_fee_total, claim_count FROM provider_totals"
                    " ORDER BY net_fee_total DESC, provider_npi ASC LIMIT 10"
                )
            )
        )
    assert "Index Scan using provider_totals_rank" in plan
    assert "Sort" not in plan


def _consumed(event: Any, offset: int) -> ConsumedEvent:
    return ConsumedEvent(event, "claims.submitted", 0, offset, event.subject, Context())


async def test_concurrent_replicas_keep_the_annual_maximum_and_totals_exact(
    settings: AdjudicationSettings, engine: AsyncEngine
) -> None:
    """Four transactions at once, all for one subscriber and one provider: the accumulator row
    lock serialises them, so the 2,000.00 maximum of grp-1000 is never exceeded."""
    book = PlanRegistry(load_plan_dir(PLANS_DIR)).book()
    batches = [
        [
            _consumed(
                submitted(
                    claim_line(
                        1,
                        submitted_procedure="D2740",  # major, 50%
                        service_date=date(2024, 1, 1) + timedelta(days=batch * 20 + n),
                        provider_fees=Decimal("900.00"),
                        allowed_fees=Decimal("900.00"),
                    )
                ),
                n,
            )
            for n in range(5)
        ]
        for batch in range(4)
    ]

    async def run(batch: list[ConsumedEvent]) -> None:
        async with engine.begin() as conn:
            await adjudicate_batch(conn, settings, book, batch)

    await asyncio.gather(*(run(b) for b in batches))
    # 20 claims x 450.00 wanted; the plan pays at most 2,000.00 in the year (less deductible).
    assert await scalar(engine, "SELECT benefits_paid FROM benefit_accumulators") == Decimal(
        "2000.00"
    )
    assert await scalar(engine, "SELECT sum(benefit) FROM claims") == Decimal("2000.00")
    assert await scalar(engine, "SELECT deductible_applied FROM benefit_accumulators") == Decimal(
        "25.00"
    )
    # 437.50 (after the deductible) + 3 x 450.00 + 212.50; the other 15 find nothing left and
    # are rejected (CARC 119), so they count for no provider.
    assert await scalar(engine, "SELECT count(*) FROM claims WHERE status = 'adjudicated'") == 5
    totals = await rows(engine, "SELECT net_fee_total, claim_count FROM provider_totals")
    assert [tuple(r) for r in totals] == [(Decimal("0.00"), 5)]
