"""The fake payments system's policy: deterministic, by amount or by a share of payment ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from claimflow_devstack.fake_payments import FakePaymentsSettings, failure_reason
from claimflow_shared.events import PaymentRequestedV1


def request(amount: str, payment_id: uuid.UUID | None = None) -> PaymentRequestedV1:
    return PaymentRequestedV1(
        payment_id=payment_id or uuid.uuid4(),
        claim_id=uuid.uuid4(),
        provider_npi="1497775530",
        amount=Decimal(amount),
        requested_at=datetime.now(UTC),
    )


def test_by_default_every_payment_completes() -> None:
    settings = FakePaymentsSettings()
    assert all(failure_reason(request("10.00"), settings) is None for _ in range(50))


def test_listed_amounts_fail() -> None:
    settings = FakePaymentsSettings(fake_payments_fail_amounts=[Decimal("13.13")])
    assert failure_reason(request("13.13"), settings) == "account closed"
    assert failure_reason(request("13.14"), settings) is None


def test_a_percentage_fails_the_same_payments_every_time() -> None:
    settings = FakePaymentsSettings(fake_payments_fail_percent=30)
    ids = [uuid.UUID(int=n) for n in range(1, 401)]
    first = [failure_reason(request("1.00", i), settings) is not None for i in ids]
    again = [failure_reason(request("2.00", i), settings) is not None for i in ids]
    assert first == again
    assert 80 < sum(first) < 160


def test_amounts_come_from_the_environment_as_json(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CLAIMFLOW_FAKE_PAYMENTS_FAIL_AMOUNTS", '["1.50", "2.00"]')
    assert FakePaymentsSettings().fake_payments_fail_amounts == [Decimal("1.50"), Decimal("2.00")]
