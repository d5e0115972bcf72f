"""Where plans come from: BenefitPlan YAML files and the compacted `claimflow.plans` topic.

Both carry the BenefitPlan custom resource (claimflow_shared.plans): a file is what the
operator publishes for the same resource. Both are keyed `namespace/name`; topic plans overlay
file plans with the same key, and a tombstone withdraws the topic's plan so the file's (if
any) applies again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from claimflow_adjudication.domain import Category, FrequencyLimit, Plan, PlanBook
from claimflow_adjudication.metrics import PLAN_GENERATION, PLAN_UPDATES_REJECTED
from claimflow_shared.events import BenefitPlanSpecV1, EventDecodeError, PlanPublishedV1
from claimflow_shared.events.envelope import decode_event
from claimflow_shared.money import CENT
from claimflow_shared.plans import (
    DEFAULT_NAMESPACE,
    PlanFileError,
    load_plan_documents,
    plan_key,
)

__all__ = ["PlanEntry", "PlanFileError", "PlanRegistry", "load_plan_dir", "to_domain"]

log = logging.getLogger(__name__)

EARLIEST = date(1900, 1, 1)

Source = Literal["file", "topic"]


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
    namespace: str = DEFAULT_NAMESPACE

    @property
    def key(self) -> str:
        return plan_key(self.namespace, self.plan.plan_id)


def load_plan_dir(directory: Path) -> list[PlanEntry]:
    now = datetime.now(UTC)
    return [
        PlanEntry(
            to_domain(d.metadata.name, d.metadata.generation, d.spec),
            d.spec,
            "file",
            now,
            d.metadata.namespace,
        )
        for d in load_plan_documents(directory)
    ]


class PlanRegistry:
    """The plans this process applies. Readers take `book()`: an immutable snapshot, so a claim
    is adjudicated against one consistent set even while an update arrives."""

    def __init__(self, file_plans: Iterable[PlanEntry] = ()) -> None:
        # Both keyed like the topic: namespace/name.
        self._files = {e.key: e for e in file_plans}
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
        # Keyed by plan id from here on: plan ids are unique (apply_published sees to it).
        self._entries = {e.plan.plan_id: e for e in entries.values()}
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
        self._book = book

    def apply_published(self, event: PlanPublishedV1) -> None:
        entry = PlanEntry(
            to_domain(event.plan_id, event.generation, event.spec),
            event.spec,
            "topic",
            datetime.now(UTC),
            event.namespace,
        )
        with self._lock:
            holder = self._entries.get(event.plan_id)
            if holder is not None and holder.key != entry.key:
                # Claims record plans by id: a second plan with the id would make them ambiguous.
                PLAN_UPDATES_REJECTED.inc()
                log.warning("plan %s rejected: %s has that plan id", entry.key, holder.key)
                return
            self._topic[entry.key] = entry
            self._rebuild()
        log.info("plan %s generation %d applied", entry.key, event.generation)

    def withdraw(self, key: str) -> None:
        with self._lock:
            if self._topic.pop(key, None) is not None:
                self._rebuild()
                log.info("plan %s withdrawn", key)

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
        data = event.data
        if not isinstance(data, PlanPublishedV1) or plan_key(data.namespace, data.plan_id) != key:
            PLAN_UPDATES_REJECTED.inc()
            log.warning("plan message under key %s is not that plan's PlanPublishedV1", key)
            return
        self.apply_published(data)
