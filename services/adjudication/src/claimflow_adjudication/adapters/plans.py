"""Where plans come from: BenefitPlan YAML files and the compacted `claimflow.plans` topic.

Both carry the same spec (the BenefitPlan custom resource's), so a file under plans/ is what
the operator publishes for a CR. Topic plans overlay file plans with the same id; a tombstone
withdraws the topic's plan and the file's (if any) applies again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from claimflow_adjudication.domain import Category, FrequencyLimit, Plan, PlanBook
from claimflow_shared.events import BenefitPlanSpecV1, EventDecodeError, PlanPublishedV1
from claimflow_shared.events.envelope import decode_event
from claimflow_shared.money import CENT

log = logging.getLogger(__name__)

PLAN_GENERATION = Gauge(
    "claimflow_plan_generation", "Generation of each plan this process applies", ["plan", "source"]
)
PLAN_UPDATES_REJECTED = Counter(
    "claimflow_plan_updates_rejected_total", "Plan messages that could not be applied"
)

API_VERSION = "claimflow.dev/v1"
KIND = "BenefitPlan"
EARLIEST = date(1900, 1, 1)

Source = Literal["file", "topic"]


class PlanFileError(ValueError):
    """A plan file that cannot be used; the message names the file and what is wrong."""


class _Metadata(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    generation: int = Field(default=1, ge=1)


class BenefitPlanDocument(BaseModel):
    """A BenefitPlan custom resource as written in YAML."""

    model_config = ConfigDict(extra="ignore")
    api_version: Literal["claimflow.dev/v1"] = Field(alias="apiVersion")
    kind: Literal["BenefitPlan"]
    metadata: _Metadata
    spec: BenefitPlanSpecV1


def to_domain(plan_id: str, generation: int, spec: BenefitPlanSpecV1) -> Plan:
    return Plan(
        plan_id=plan_id,
        version=generation,
        groups=tuple(spec.groups),
        is_default=spec.default,
        display_name=spec.display_name,
        effective_from=spec.effective_from or EARLIEST,
        effective_to=spec.effective_to,
        benefit_year_start_month=spec.benefit_year_start_month,
        covered=frozenset(Category(c) for c in spec.covered_categories),
        coinsurance={Category(c): p for c, p in spec.coinsurance.items()},
        deductible=spec.deductible.amount.quantize(CENT),
        deductible_waived=frozenset(Category(c) for c in spec.deductible.waived_categories),
        annual_maximum=(
            spec.annual_maximum.quantize(CENT) if spec.annual_maximum is not None else None
        ),
        frequency_limits=tuple(
            FrequencyLimit(frozenset(limit.codes), limit.count) for limit in spec.frequency_limits
        ),
        fee_schedule={code: amount.quantize(CENT) for code, amount in spec.fee_schedule.items()},
        excluded_codes=frozenset(spec.excluded_codes),
    )


@dataclass(frozen=True)
class PlanEntry:
    plan: Plan
    spec: BenefitPlanSpecV1
    source: Source
    loaded_at: datetime


def _documents(path: Path) -> Iterable[Any]:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as exc:
        raise PlanFileError(f"{path.name}: not valid YAML ({type(exc).__name__})") from exc


def load_plan_documents(directory: Path) -> list[BenefitPlanDocument]:
    if not directory.is_dir():
        raise PlanFileError(f"plans directory {directory} does not exist")
    documents: list[BenefitPlanDocument] = []
    seen: dict[str, str] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        for raw in _documents(path):
            try:
                document = BenefitPlanDocument.model_validate(raw)
            except ValidationError as exc:
                fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
                raise PlanFileError(f"{path.name}: invalid at {', '.join(fields)}") from exc
            name = document.metadata.name
            if name in seen:
                raise PlanFileError(f"{path.name}: plan {name!r} is also in {seen[name]}")
            seen[name] = path.name
            documents.append(document)
    return documents


def load_plan_dir(directory: Path) -> list[PlanEntry]:
    now = datetime.now(UTC)
    return [
        PlanEntry(to_domain(d.metadata.name, d.metadata.generation, d.spec), d.spec, "file", now)
        for d in load_plan_documents(directory)
    ]


class PlanRegistry:
    """The plans this process applies. Readers take `book()`: an immutable snapshot, so a claim
    is adjudicated against one consistent set even while an update arrives."""

    def __init__(self, file_plans: Iterable[PlanEntry] = ()) -> None:
        self._files = {e.plan.plan_id: e for e in file_plans}
        self._topic: dict[str, PlanEntry] = {}
        self._lock = threading.Lock()
        self._book = PlanBook([])
        self._entries: dict[str, PlanEntry] = {}
        self._rebuild()

    def book(self) -> PlanBook:
        return self._book

    def entries(self) -> list[PlanEntry]:
        return sorted(self._entries.values(), key=lambda e: e.plan.plan_id)

    def _rebuild(self) -> None:
        entries = self._files | self._topic
        book = PlanBook(e.plan for e in entries.values())
        if book.ambiguous_defaults:
            log.warning(
                "several default plans; %s applies, not %s",
                book.default.plan_id if book.default else None,
                book.ambiguous_defaults,
            )
        PLAN_GENERATION.clear()
        for entry in entries.values():
            PLAN_GENERATION.labels(entry.plan.plan_id, entry.source).set(entry.plan.version)
        self._entries, self._book = entries, book

    def apply_published(self, event: PlanPublishedV1) -> None:
        entry = PlanEntry(
            to_domain(event.plan_id, event.generation, event.spec),
            event.spec,
            "topic",
            datetime.now(UTC),
        )
        with self._lock:
            self._topic[event.plan_id] = entry
            self._rebuild()
        log.info("plan %s generation %d applied", event.plan_id, event.generation)

    def withdraw(self, plan_id: str) -> None:
        with self._lock:
            if self._topic.pop(plan_id, None) is not None:
                self._rebuild()
                log.info("plan %s withdrawn", plan_id)

    def on_topic_change(self, key: str, value: bytes | None) -> None:
        """The CompactedTopicReader callback: one message of `claimflow.plans`."""
        if value is None:
            self.withdraw(key)
            return
        try:
            event = decode_event(value)
        except EventDecodeError as exc:
            PLAN_UPDATES_REJECTED.inc()
            log.warning("plan message under key %s rejected: %s", key, exc)
            return
        if not isinstance(event.data, PlanPublishedV1) or event.data.plan_id != key:
            PLAN_UPDATES_REJECTED.inc()
            log.warning("plan message under key %s is not that plan's PlanPublishedV1", key)
            return
        self.apply_published(event.data)
