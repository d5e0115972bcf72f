"""Events in and out: a submitted claim becomes a domain claim, results become events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from claimflow_adjudication.domain import adjudicate
from claimflow_adjudication.service_layer import messages
from claimflow_devstack import testing
from claimflow_shared.events import ClaimSubmittedV1, ClaimTotalsV1

from .builders import plan

D = Decimal
SCALING = testing.claim_line(
    submitted_procedure="D4346",
    provider_fees=D("130.00"),
    allowed_fees=D("65.00"),
    member_coinsurance=D("16.25"),
)


def submitted(net_fee: str = "81.25", total: str = "81.25") -> ClaimSubmittedV1:
    """One periodontal scaling (net fee 81.25), its line's net fee and the claim's total as given:
    an event that may contradict itself."""
    data: ClaimSubmittedV1 = testing.submitted(SCALING).data
    line = data.lines[0].model_copy(update={"net_fee": D(net_fee)})
    return data.model_copy(update={"lines": [line], "totals": ClaimTotalsV1(net_fee=D(total))})


def test_a_consistent_event_becomes_a_claim() -> None:
    data = submitted()
    claim = messages.claim_from_event(data)
    assert claim.claim_id == data.claim_id
    assert claim.lines[0].net_fee == D("81.25")
    assert messages.inconsistency(data, claim) is None


def test_events_that_contradict_themselves_are_named() -> None:
    wrong_line = submitted(net_fee="80.00", total="80.00")
    assert "net fee" in (
        messages.inconsistency(wrong_line, messages.claim_from_event(wrong_line)) or ""
    )
    wrong_total = submitted(total="1.00")
    assert "totals" in (
        messages.inconsistency(wrong_total, messages.claim_from_event(wrong_total)) or ""
    )


def test_results_become_adjudicated_and_payment_events() -> None:
    data = submitted()
    result = adjudicate(messages.claim_from_event(data), plan(version=3), {})
    now = datetime.now(UTC)
    event = messages.adjudicated(result, now)
    assert (event.status, event.outcome, event.plan_version) == ("adjudicated", "complete", 3)
    assert event.totals.net_fee == D("81.25")
    assert event.lines[0].amounts.eligible == D("65.00")
    payment = messages.payment_requested(result, now)
    assert payment.amount == D("65.00")
    assert payment.payment_id == messages.payment_id_for(data.claim_id)
    assert payment.payment_id == messages.payment_id_for(data.claim_id)  # stable per claim
    assert payment.payment_id != messages.payment_id_for(uuid.uuid4())
