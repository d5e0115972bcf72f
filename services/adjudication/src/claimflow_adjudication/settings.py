"""adjudication's settings: the shared ones plus plans, the rate limit and the worker port."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from claimflow_shared.settings import RateLimit, ServiceSettings

# Free text on an 835 must not hold its separators (* ~ : ^).
NO_SEPARATORS = r"^[^*~:^]+$"


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

    # The payer on every 835 (N1*PR, TRN03, ISA06/GS02). Replace the placeholders in a
    # deployment: the TIN is the payer's 9-digit federal tax id.
    payer_name: str = Field(default="CLAIMFLOW DENTAL PLAN", pattern=NO_SEPARATORS, max_length=60)
    payer_tin: str = Field(default="999999999", pattern=r"^\d{9}$")
    payer_interchange_id: str = Field(default="CLAIMFLOW", pattern=r"^[A-Z0-9 ]{2,15}$")
    payer_address: str = Field(default="1 CLAIMS WAY", pattern=NO_SEPARATORS, max_length=55)
    payer_city: str = Field(default="SPRINGFIELD", pattern=NO_SEPARATORS, max_length=30)
    payer_state: str = Field(default="IL", pattern=r"^[A-Z]{2}$")
    payer_postal_code: str = Field(default="62701", pattern=r"^\d{5}(\d{4})?$")
    payer_contact_phone: str = Field(default="8005550100", pattern=r"^\d{10}$")
    # ISA15: P(roduction) or T(est) data.
    remittance_usage: Literal["P", "T"] = "P"
