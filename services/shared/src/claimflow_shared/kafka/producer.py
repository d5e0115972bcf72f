"""A synchronous publisher over kafka-python's KafkaProducer; async callers use a thread."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kafka import KafkaProducer

from claimflow_shared.settings import ServiceSettings

from .connection import connection_config
from .tracing import Headers

SEND_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class OutgoingMessage:
    topic: str
    key: str | None
    value: bytes
    headers: Headers = field(default_factory=list)


def producer_config(settings: ServiceSettings) -> dict[str, object]:
    # Idempotence with acks=all keeps per-partition order across retries; linger batches.
    return {
        **connection_config(settings),
        "client_id": settings.service_name,
        "acks": "all",
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": settings.kafka_linger_ms,
        "batch_size": settings.kafka_batch_size,
        "compression_type": None,
        "retries": 2**31 - 1,
        "request_timeout_ms": 15_000,
        "max_block_ms": 20_000,
    }


class Publisher:
    def __init__(self, settings: ServiceSettings) -> None:
        self._producer = KafkaProducer(**producer_config(settings))

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send every message and return only when the broker acknowledged all of them."""
        futures = [
            self._producer.send(
                m.topic,
                key=m.key.encode() if m.key is not None else None,
                value=m.value,
                headers=list(m.headers),
            )
            for m in messages
        ]
        self._producer.flush(timeout=SEND_TIMEOUT_SECONDS)
        for future in futures:
            future.get(timeout=SEND_TIMEOUT_SECONDS)

    def connected(self) -> bool:
        return bool(self._producer.bootstrap_connected())

    def close(self) -> None:
        self._producer.close(timeout=5)
