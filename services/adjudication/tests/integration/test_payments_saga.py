"""The payments saga: completed settles, failed compensates, every step idempotent."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.service_layer.messages import payment_id_for
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_devstack.fake_payments import FakePayments
from claimflow_devstack.testing import eventually
from claimflow_shared.events import PaymentCompletedV1, PaymentFailedV1, Topics, new_event

from .conftest import (
    D,
    claim_1234,
    claim_line,
    claim_status,
    fake_payments_settings,
    publish,
    publish_events,
    read_events,
    rows,
    scalar,
    submitted,
)


async def _status_is(engine: AsyncEngine, claim_id: uuid.UUID, status: str) -> bool:
    return await claim_status(engine, claim_id) == status


async def test_a_failed_payment_is_compensated_and_announced(
    settings: AdjudicationSettings, engine: AsyncEngine, worker: Any
) -> None:
    # claim 1234's benefit under grp-1000 is 363.00: the fake payments system fails it.
    fake = FakePayments(fake_payments_settings(settings, fake_payments_fail_amounts=[D("363.00")]))
    await fake.start()
    try:
        failing = claim_1234()
        # Another subscriber: claims of one subscriber on two partitions may go in either order.
        paid = submitted(claim_line(provider_npi="1234567893", subscriber_number="S-2"))
        await publish_events(settings, failing, paid)
        claim_id = failing.data.claim_id
        await eventually(lambda: _status_is(engine, claim_id, "payment_failed"))
        await eventually(lambda: _status_is(engine, paid.data.claim_id, "paid"))
    finally:
        await fake.stop()

    (reversal,) = await read_events(settings, Topics.CLAIMS_REVERSED, 1)
    assert reversal["type"] == "io.claimflow.claim.reversed.v1"
    assert reversal["subject"] == str(claim_id)
    assert reversal["data"]["status"] == "payment_failed"
    assert reversal["data"]["net_fee"] == "116.85"
    assert "account closed" in reversal["data"]["reason"]

    # Provider totals: the failed claim is taken out, its provider row goes with its last claim.
    totals = await rows(
        engine, "SELECT provider_npi, net_fee_total, claim_count FROM provider_totals"
    )
    assert [tuple(r) for r in totals] == [("1234567893", D("0.00"), 1)]
    # The subscriber's year is as before the failed claim; the other subscriber's is untouched.
    accumulators = await rows(
        engine,
        "SELECT subscriber_number, deductible_applied, benefits_paid FROM benefit_accumulators"
        " ORDER BY subscriber_number",
    )
    assert [tuple(r) for r in accumulators] == [
        ("3730189502", D("0.00"), D("0.00")),
        ("S-2", D("25.00"), D("60.00")),
    ]
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM claim_line_results WHERE claim_id = :c AND counted",
            c=claim_id,
        )
        == 0
    )
    assert (
        await scalar(engine, "SELECT payment_reason FROM claims WHERE claim_id = :c", c=claim_id)
        == "account closed"
    )


async def test_payment_results_are_idempotent_and_contradictions_are_not_applied(
    settings: AdjudicationSettings, engine: AsyncEngine, worker: Any
) -> None:
    event = claim_1234()
    claim_id = event.data.claim_id
    await publish_events(settings, event)
    await eventually(lambda: _status_is(engine, claim_id, "adjudicated"))
    payment_id = payment_id_for(claim_id)
    now = datetime.now(UTC)
    failed = new_event(
        "/payments/test",
        PaymentFailedV1(
            payment_id=payment_id, claim_id=claim_id, reason="card expired", failed_at=now
        ),
        subject=str(claim_id),
    )
    failed_again = new_event("/payments/test", failed.data, subject=str(claim_id))
    completed = new_event(
        "/payments/test",
        PaymentCompletedV1(
            payment_id=payment_id, claim_id=claim_id, amount=D("363.00"), completed_at=now
        ),
        subject=str(claim_id),
    )
    wrong_payment = new_event(
        "/payments/test",
        PaymentCompletedV1(
            payment_id=uuid.uuid4(), claim_id=claim_id, amount=D("363.00"), completed_at=now
        ),
        subject=str(claim_id),
    )
    await asyncio.to_thread(
        publish,
        settings,
        Topics.PAYMENTS_FAILED,
        [(str(claim_id), failed.to_json()), (str(claim_id), failed.to_json()),
         (str(claim_id), failed_again.to_json())],
    )  # fmt: skip
    await eventually(lambda: _status_is(engine, claim_id, "payment_failed"))
    await asyncio.to_thread(
        publish,
        settings,
        Topics.PAYMENTS_COMPLETED,
        [(str(claim_id), completed.to_json()), (str(claim_id), wrong_payment.to_json())],
    )
    dead = await read_events(settings, "claimflow.deadletter", 1)
    assert dead[0]["id"] == wrong_payment.id

    assert await claim_status(engine, claim_id) == "payment_failed"
    assert len(await read_events(settings, Topics.CLAIMS_REVERSED, 2, within=3)) == 1
    assert await scalar(engine, "SELECT count(*) FROM provider_totals") == 0
    assert await scalar(engine, "SELECT benefits_paid FROM benefit_accumulators") == D("0.00")


async def test_a_claim_whose_payment_failed_can_be_submitted_again(
    settings: AdjudicationSettings, engine: AsyncEngine, worker: Any
) -> None:
    """Compensation frees the subscriber's history: the resubmission is no duplicate."""
    fake = FakePayments(fake_payments_settings(settings, fake_payments_fail_amounts=[D("363.00")]))
    await fake.start()
    try:
        first = claim_1234()
        await publish_events(settings, first)
        await eventually(lambda: _status_is(engine, first.data.claim_id, "payment_failed"))
    finally:
        await fake.stop()
    second = claim_1234()
    await publish_events(settings, second)
    await eventually(lambda: _status_is(engine, second.data.claim_id, "adjudicated"))
    codes = await rows(
        engine,
        "SELECT reason_codes FROM claim_line_results WHERE claim_id = :c ORDER BY line_no",
        c=second.data.claim_id,
    )
    assert [r.reason_codes for r in codes] == [["45"], [], [], ["45"]]
    assert await scalar(
        engine, "SELECT benefit FROM claims WHERE claim_id = :c", c=second.data.claim_id
    ) == D("363.00")
