"""adjudication's settings: the shared ones plus plans, the rate limit and the worker port."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from claimflow_shared.settings import RateLimit, ServiceSettings


class AdjudicationSettings(ServiceSettings):
    service_name: str = "adjudication"
    http_port: int = Field(default=8081, ge=1, le=65535)
    # The worker (claims consumer, payments saga, outbox relay) serves health and metrics here.
    worker_http_port: int = Field(default=9081, ge=1, le=65535)

    # Replicas share this Kafka consumer group. Processed-event ids are recorded under a fixed
    # name, not the group, so a new group replaying the topics changes nothing twice.
    consumer_group: str = Field(default="claimflow-adjudication", min_length=1)

    # BenefitPlan YAML documents (*.yaml, *.yml); plans from the compacted topic overlay them.
    plans_dir: Path | None = None
    # How long a starting process waits to replay the plans topic before it gives up.
    plans_catch_up_seconds: float = Field(default=60.0, gt=0)

    top_providers_rate_limit: RateLimit = "10/minute"

    # The API serves reads only; Kafka matters to it for the plan listing alone.
    ready_requires_kafka: bool = False
