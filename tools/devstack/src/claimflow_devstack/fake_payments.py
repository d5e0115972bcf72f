"""A stand-in for the external payments system: answers `payments.requested` with
`payments.completed` or `payments.failed`, for tests and `make run`.

Deterministic: a payment fails when its amount is one of CLAIMFLOW_FAKE_PAYMENTS_FAIL_AMOUNTS
(a JSON list, e.g. ["13.13"]), or when a hash of its payment id falls under
CLAIMFLOW_FAKE_PAYMENTS_FAIL_PERCENT; otherwise it completes. The answer's event id derives
from the payment id, so a redelivered request produces the same event, as an idempotent
payments system would.

    python -m claimflow_devstack.fake_payments
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from claimflow_shared.events import (
    PaymentCompletedV1,
    PaymentFailedV1,
    PaymentRequestedV1,
    Topics,
    new_event,
)
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.consumer import ConsumedEvent, EventConsumer, UnprocessableEvent
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.kafka.tracing import inject_headers
from claimflow_shared.logs import configure_logging
from claimflow_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

SOURCE = "/payments/fake"
GROUP = "claimflow-fake-payments"
_ANSWER_NAMESPACE = uuid.UUID("0b1e9f3c-3f7e-4a55-8d8e-7c1f2a9b5d10")


class FakePaymentsSettings(ServiceSettings):
    service_name: str = "payments-fake"
    fake_payments_fail_percent: int = Field(default=0, ge=0, le=100)
    fake_payments_fail_amounts: Annotated[list[Decimal], NoDecode] = Field(default_factory=list)

    @field_validator("fake_payments_fail_amounts", mode="before")
    @classmethod
    def _parse_amounts(cls, value: object) -> object:
        # An environment variable holds a JSON list; NoDecode leaves its parsing to us.
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value


def failure_reason(request: PaymentRequestedV1, settings: FakePaymentsSettings) -> str | None:
    """Why this payment fails, or None: it completes."""
    if request.amount in settings.fake_payments_fail_amounts:
        return "account closed"
    bucket = int(hashlib.sha256(str(request.payment_id).encode()).hexdigest()[:8], 16) % 100
    if bucket < settings.fake_payments_fail_percent:
        return "insufficient funds at the payer's bank"
    return None


def answer(consumed: ConsumedEvent, settings: FakePaymentsSettings) -> OutgoingMessage:
    request = consumed.event.data
    if not isinstance(request, PaymentRequestedV1):
        raise UnprocessableEvent(consumed, f"{consumed.event.type} is not a payment request")
    now = datetime.now(UTC)
    reason = failure_reason(request, settings)
    data: PaymentCompletedV1 | PaymentFailedV1
    if reason is None:
        data = PaymentCompletedV1(
            payment_id=request.payment_id,
            claim_id=request.claim_id,
            amount=request.amount,
            completed_at=now,
        )
        topic = Topics.PAYMENTS_COMPLETED
    else:
        data = PaymentFailedV1(
            payment_id=request.payment_id, claim_id=request.claim_id, reason=reason, failed_at=now
        )
        topic = Topics.PAYMENTS_FAILED
    event_id = uuid.uuid5(_ANSWER_NAMESPACE, f"{request.payment_id}:{topic}")
    event = new_event(SOURCE, data, subject=str(request.claim_id)).model_copy(
        update={"id": str(event_id)}
    )
    return OutgoingMessage(
        settings.topic(topic),
        str(request.claim_id),
        event.to_json(),
        inject_headers(consumed.parent),
    )


class FakePayments:
    """Consumes payment requests and answers them until stopped; usable in-process too."""

    def __init__(self, settings: FakePaymentsSettings) -> None:
        self.settings = settings
        self._publisher: Publisher | None = None
        self._consumer: EventConsumer | None = None

    async def start(self) -> None:
        s = self.settings
        topics = [
            s.topic(t)
            for t in (Topics.PAYMENTS_REQUESTED, Topics.PAYMENTS_COMPLETED, Topics.PAYMENTS_FAILED)
        ]
        await asyncio.to_thread(ensure_topics, s, topics)
        self._publisher = await asyncio.to_thread(Publisher, s)
        publisher = self._publisher

        async def handle(batch: Sequence[ConsumedEvent]) -> None:
            messages = [answer(consumed, s) for consumed in batch]
            await asyncio.to_thread(publisher.publish, messages)

        self._consumer = EventConsumer(
            s,
            group_id=GROUP,
            topics=[topics[0]],
            handler=handle,
            loop=asyncio.get_running_loop(),
            dead_letters=publisher,
        )
        self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._publisher is not None:
            await asyncio.to_thread(self._publisher.close)


async def _serve() -> None:
    # Its own name, whatever CLAIMFLOW_SERVICE_NAME says: it runs beside a service in `make run`.
    settings = FakePaymentsSettings(service_name="payments-fake")
    configure_logging(settings.service_name, settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    payments = FakePayments(settings)
    await payments.start()
    log.info(
        "fake payments answering; failing %d%% and amounts %s",
        settings.fake_payments_fail_percent,
        [str(a) for a in settings.fake_payments_fail_amounts],
    )
    try:
        await stop.wait()
    finally:
        await payments.stop()


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve())


if __name__ == "__main__":
    main()
