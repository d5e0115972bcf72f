"""intake's settings: the shared ones plus validation policy and API limits."""

from __future__ import annotations

from pydantic import Field

from claimflow_shared.settings import RateLimit, ServiceSettings


class IntakeSettings(ServiceSettings):
    service_name: str = "intake"
    http_port: int = Field(default=8080, ge=1, le=65535)
    # The worker (outbox relay + status consumer) serves health and metrics here.
    worker_http_port: int = Field(default=9080, ge=1, le=65535)
    # Kafka consumer group of the status consumer; processed-event ids are recorded under a
    # fixed consumer name, so changing the group never re-applies an event.
    consumer_group: str = Field(default="claimflow-intake", min_length=1)

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_lines: int = Field(default=50, ge=1, le=1000)
    import_max_claims: int = Field(default=100, ge=1)
    # Bulk routes (POST /v1/claims/batch, /v1/claims/x12) take this much instead of
    # max_body_bytes: a thousand JSON claims, or an interchange of ten thousand.
    bulk_max_body_bytes: int = Field(default=16 * 1_048_576, ge=1024)
    batch_max_claims: int = Field(default=1000, ge=1, le=10_000)
    validation_npi_luhn: bool = True
    # Per principal, over every replica when rate_limit_storage_url is Redis: a client in a
    # loop cannot fill the database or the queue for everyone else.
    submission_rate_limit: RateLimit = "60/minute"
    # CSV imports, batches and X12 interchanges share this budget: each is one request of it.
    import_rate_limit: RateLimit = "10/minute"
    # The outbox buffers claims while Kafka is down, so by default the API stays ready then.
    ready_requires_kafka: bool = False
