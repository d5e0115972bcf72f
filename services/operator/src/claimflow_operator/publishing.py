"""What the handlers do, free of kopf's machinery so unit tests call it directly: judge a
BenefitPlan, publish it or say why not (status, Kubernetes events, metrics), and withdraw it.

kafka-python blocks, so every write runs in a thread; kopf handles one object at a time, which
keeps each plan's messages in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import kopf

from claimflow_shared.plans import plan_key, published_event

from . import status
from .evaluation import REASON_CONFLICT, IndexedPlan, Verdict, evaluate, indexed
from .kube import KubeApi
from .metrics import PLANS_INVALID, PLANS_PUBLISHED, PLANS_WITHDRAWN, PUBLISH_FAILURES

log = logging.getLogger(__name__)

SOURCE = "/claimflow/operator"
RETRY_DELAY_SECONDS = 10.0


class PlanSink(Protocol):
    """The plans topic (claimflow_shared.plans.PlanWriter); blocking calls."""

    def put(self, key: str, event: bytes) -> None: ...

    def withdraw(self, key: str) -> None: ...


class EventSink(Protocol):
    """Kubernetes events about a resource (kopf.event in the operator)."""

    def info(self, body: kopf.Body, *, reason: str, message: str) -> None: ...

    def warn(self, body: kopf.Body, *, reason: str, message: str) -> None: ...


class KopfEvents:
    def info(self, body: kopf.Body, *, reason: str, message: str) -> None:
        kopf.event(body, type="Normal", reason=reason, message=message)

    def warn(self, body: kopf.Body, *, reason: str, message: str) -> None:
        kopf.event(body, type="Warning", reason=reason, message=message)


@dataclass
class Runtime:
    sink: PlanSink
    events: EventSink
    topic: str
    kube: KubeApi | None = None
    # When each key was last written (monotonic): the sweep leaves fresh keys alone.
    written: dict[str, float] = field(default_factory=dict)

    def wrote(self, key: str) -> None:
        self.written[key] = time.monotonic()


def _refused_before(previous: Mapping[str, Any], generation: int, verdict: Verdict) -> bool:
    for c in previous.get("conditions") or []:
        if c.get("type") == status.VALID:
            return bool(
                c.get("status") == "False"
                and c.get("observedGeneration") == generation
                and c.get("message") == verdict.message
            )
    return False


async def reconcile(
    rt: Runtime,
    body: kopf.Body,
    patch: MutableMapping[str, Any],
    index: Iterable[IndexedPlan],
    *,
    force: bool,
) -> Verdict:
    """Judge the plan and publish it when valid; `patch` receives the new status.

    `force` republishes a generation the status says is already on the topic (on resume, so
    a topic that lost its data is filled again); updates that change nothing skip it.
    """
    me = indexed(body)
    others = list(index)
    previous: Mapping[str, Any] = body.get("status") or {}
    key = me.key
    now = datetime.now(UTC)
    verdict = evaluate(me, others)
    valid = status.condition(
        previous,
        status.VALID,
        ok=verdict.valid,
        reason=verdict.reason,
        message=verdict.message,
        generation=me.generation,
        now=now,
    )
    if not verdict.valid:
        kept = status.published_generation(previous)
        published = status.condition(
            previous,
            status.PUBLISHED,
            ok=False,
            reason=status.REASON_PREVIOUS_IN_FORCE if kept else status.REASON_NOT_PUBLISHED,
            message=(
                f"generation {kept} stays in force; this generation is not published"
                if kept
                else "no generation of this plan is published"
            ),
            generation=me.generation,
            now=now,
        )
        status.write(patch, key=key, generation=me.generation, valid=valid, published=published)
        if not _refused_before(previous, me.generation, verdict):
            PLANS_INVALID.labels(verdict.reason).inc()
            rt.events.warn(body, reason=verdict.reason, message=verdict.message)
            log.warning("plan %s generation %d refused: %s", key, me.generation, verdict.reason)
        return verdict
    already = status.is_current(previous, me.generation)
    if already and not force:
        return verdict
    assert verdict.spec is not None
    event = published_event(
        SOURCE,
        namespace=me.namespace,
        name=me.name,
        generation=me.generation,
        spec=verdict.spec,
        published_at=now,
    )
    try:
        await asyncio.to_thread(rt.sink.put, key, event)
    except Exception as exc:
        PUBLISH_FAILURES.labels("publish").inc()
        failed = status.condition(
            previous,
            status.PUBLISHED,
            ok=False,
            reason=status.REASON_PUBLISH_FAILED,
            message=f"writing to {rt.topic} failed ({type(exc).__name__}); retrying",
            generation=me.generation,
            now=now,
        )
        status.write(patch, key=key, generation=me.generation, valid=valid, published=failed)
        rt.events.warn(body, reason=status.REASON_PUBLISH_FAILED, message=failed["message"])
        raise kopf.TemporaryError(failed["message"], delay=RETRY_DELAY_SECONDS) from exc
    rt.wrote(key)
    PLANS_PUBLISHED.inc()
    message = f"generation {me.generation} published to {rt.topic}"
    published = status.condition(
        previous,
        status.PUBLISHED,
        ok=True,
        reason=status.REASON_PUBLISHED,
        message=message,
        generation=me.generation,
        now=now,
    )
    status.write(
        patch,
        key=key,
        generation=me.generation,
        valid=valid,
        published=published,
        published_at=now,
    )
    rt.events.info(body, reason=status.REASON_PUBLISHED, message=message)
    log.info("plan %s generation %d published", key, me.generation)
    if not already:
        # What is in force changed: plans refused for clashing may pass now.
        await recheck_conflicted(rt, others, changed=key)
    return verdict


async def withdraw(
    rt: Runtime, body: kopf.Body, index: Iterable[IndexedPlan], *, cause: str
) -> None:
    """Tombstone the plan's key. A write that fails is retried here, with backoff, until it
    succeeds: the resource is gone, so nothing else would ever retry it."""
    meta = body.get("metadata") or {}
    key = plan_key(str(meta.get("namespace")), str(meta.get("name")))
    delay = 1.0
    while True:
        try:
            await asyncio.to_thread(rt.sink.withdraw, key)
            break
        except Exception as exc:  # noqa: BLE001 - every failure is retried the same way
            PUBLISH_FAILURES.labels("withdraw").inc()
            log.warning("withdrawing plan %s failed (%s); retrying", key, type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
    rt.wrote(key)
    PLANS_WITHDRAWN.labels(cause).inc()
    log.info("plan %s withdrawn (%s)", key, cause)
    await recheck_conflicted(rt, index, changed=key)


async def recheck_conflicted(rt: Runtime, index: Iterable[IndexedPlan], *, changed: str) -> None:
    """A plan refused for clashing with others may be fine now that `changed` changed."""
    if rt.kube is None:
        return
    for plan in index:
        if plan.key == changed or plan.deleting or plan.valid_now is not False:
            continue
        if plan.reason != REASON_CONFLICT:
            continue
        try:
            await rt.kube.request_recheck(plan.namespace, plan.name)
        except Exception as exc:  # noqa: BLE001 - a missed nudge waits for the next change
            log.warning("could not ask for plan %s to be checked again: %s", plan.key, exc)
