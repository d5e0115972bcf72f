"""claims.submitted in, results + claims.adjudicated + payments.requested out, exactly once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_devstack.fake_payments import FakePayments
from claimflow_devstack.testing import eventually
from claimflow_shared.events import Topics

from .conftest import (
    D,
    claim_1234,
    claim_line,
    claim_status,
    publish,
    publish_events,
    read_events,
    rows,
    scalar,
    submitted,
)


async def test_a_submitted_claim_is_adjudicated_paid_for_and_counted(
    settings: AdjudicationSettings, engine: AsyncEngine, worker: Any, payments: FakePayments
) -> None:
    event = claim_1234()
    claim_id = event.data.claim_id
    await publish_events(settings, event)

    await eventually(lambda: _status_is(engine, claim_id, "paid"))

    (adjudicated,) = await read_events(settings, Topics.CLAIMS_ADJUDICATED, 1)
    data = adjudicated["data"]
    assert adjudicated["subject"] == str(claim_id)
    assert adjudicated["type"] == "io.claimflow.claim.adjudicated.v1"
    assert (data["status"], data["outcome"]) == ("adjudicated", "complete")
    assert (data["plan_id"], data["plan_version"]) == ("grp-1000", 1)
    assert [ln["net_fee"] for ln in data["lines"]] == ["0.00", "0.00", "81.25", "35.60"]
    assert [ln["reason_codes"] for ln in data["lines"]] == [["45"], [], [], ["45"]]
    assert data["totals"] == {
        "net_fee": "116.85",
        "submitted": "516.00",
        "eligible": "428.00",
        "benefit": "363.00",
    }
    assert data["lines"][2]["amounts"] == {
        "submitted": "130.00",
        "eligible": "65.00",
        "copay": "0.00",
        "deductible": "25.00",
        "benefit": "32.00",
    }

    (requested,) = await read_events(settings, Topics.PAYMENTS_REQUESTED, 1)
    assert requested["data"]["claim_id"] == str(claim_id)
    assert requested["data"]["amount"] == "363.00"
    assert requested["data"]["provider_npi"] == "1497775530"

    lines = await rows(
        engine,
        "SELECT line_no, outcome, net_fee, benefit, counted FROM claim_line_results"
        " WHERE claim_id = :c ORDER BY line_no",
        c=claim_id,
    )
    assert [(r.outcome, r.net_fee, r.benefit, r.counted) for r in lines] == [
        ("reduced", D("0.00"), D("95.00"), True),
        ("approved", D("0.00"), D("108.00"), True),
        ("approved", D("81.25"), D("32.00"), True),
        ("reduced", D("35.60"), D("128.00"), True),
    ]
    totals = await rows(
        engine, "SELECT provider_npi, net_fee_total, claim_count FROM provider_totals"
    )
    assert [tuple(r) for r in totals] == [("1497775530", D("116.85"), 1)]
    accumulator = await rows(
        engine, "SELECT deductible_applied, benefits_paid FROM benefit_accumulators"
    )
    assert [tuple(r) for r in accumulator] == [(D("25.00"), D("363.00"))]


async def _status_is(engine: AsyncEngine, claim_id: uuid.UUID, status: str) -> bool:
    return await claim_status(engine, claim_id) == status


async def test_the_same_claim_delivered_twice_counts_once(
    settings: AdjudicationSettings, engine: AsyncEngine, worker: Any
) -> None:
    first = claim_1234()
    claim_id = first.data.claim_id
    # The same event again (a redelivery), and the same claim under a new event id (a producer
    # that re-sent it), then a marker claim: once it is done, everything before it is too.
    again = claim_1234(claim_id=claim_id)
    marker = submitted(claim_line(provider_npi="1234567893", subscriber_number="S-2"))
    # One key for all: one partition, so the marker is handled after the others.
    key = str(claim_id)
    await asyncio.to_thread(
        publish,
        settings,
        Topics.CLAIMS_SUBMITTED,
        [(key, e.to_json()) for e in (first, first, again, marker)],
    )

    await eventually(lambda: _status_is(engine, marker.data.claim_id, "adjudicated"))
    assert await scalar(engine, "SELECT count(*) FROM claims") == 2
    assert await scalar(
        engine, "SELECT net_fee_total FROM provider_totals WHERE provider_npi = '1497775530'"
    ) == D("116.85")
    assert (
        await scalar(
            engine, "SELECT claim_count FROM provider_totals WHERE provider_npi = '1497775530'"
        )
        == 1
    )
    assert await scalar(
        engine,
        "SELECT benefits_paid FROM benefit_accumulators WHERE subscriber_number = :s",
        s="3730189502",
    ) == D("363.00")
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM outbox WHERE topic = :t",
            t=settings.topic(Topics.CLAIMS_ADJUDICATED),
        )
        == 2
    )


async def test_poison_and_self_contradicting_events_are_dead_lettered_and_the_worker_goes_on(
    settings: AdjudicationSettings, engine: AsyncEngine, worker: Any
) -> None:
    bad_net_fee = submitted(claim_line())
    tampered = bad_net_fee.to_json().replace(b'"net_fee":"0.00"', b'"net_fee":"1.00"', 1)
    good = submitted(claim_line())
    await asyncio.to_thread(
        publish,
        settings,
        Topics.CLAIMS_SUBMITTED,
        [("x", b"{not json"), (str(bad_net_fee.subject), tampered), (good.subject, good.to_json())],
    )
    await eventually(lambda: _status_is(engine, good.data.claim_id, "adjudicated"))
    dead = await asyncio.to_thread(_read_raw, settings, settings.dead_letter_topic, 2)
    reasons = sorted(dict(m.headers)["dlq.reason"].decode() for m in dead)
    assert len(reasons) == 2
    assert any("not a CloudEvents" in r for r in reasons)
    assert any("contradicts itself" in r and "net fee" in r for r in reasons)
    assert await scalar(engine, "SELECT count(*) FROM claims") == 1


def _read_raw(settings: AdjudicationSettings, topic: str, count: int) -> list[Any]:
    from .conftest import read_topic  # noqa: PLC0415

    return read_topic(settings.kafka_bootstrap_servers, topic, count)


async def test_a_rejected_claim_requests_no_payment_and_counts_for_no_provider(
    settings: AdjudicationSettings, engine: AsyncEngine, worker: Any
) -> None:
    ortho = submitted(claim_line(submitted_procedure="D8080"))  # not covered by grp-1000
    await publish_events(settings, ortho)
    await eventually(lambda: _status_is(engine, ortho.data.claim_id, "rejected"))
    (adjudicated,) = await read_events(settings, Topics.CLAIMS_ADJUDICATED, 1)
    assert (adjudicated["data"]["status"], adjudicated["data"]["outcome"]) == ("rejected", "error")
    assert adjudicated["data"]["lines"][0]["reason_codes"] == ["96"]
    assert await scalar(engine, "SELECT count(*) FROM provider_totals") == 0
    assert await scalar(engine, "SELECT payment_status FROM claims") == "not_required"
    assert await read_events(settings, Topics.PAYMENTS_REQUESTED, 1, within=2) == []
