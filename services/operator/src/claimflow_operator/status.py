"""A BenefitPlan's status: the Valid and Published conditions (Kubernetes conventions: a
transition time that moves only when the status does, the generation each one judged), the
generation on the topic and when it went there."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import Any

VALID = "Valid"
PUBLISHED = "Published"

# Published reasons.
REASON_PUBLISHED = "Published"
REASON_PUBLISH_FAILED = "PublishFailed"
REASON_NOT_PUBLISHED = "NotPublished"
REASON_PREVIOUS_IN_FORCE = "PreviousGenerationInForce"


def _timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    previous: Mapping[str, Any],
    kind: str,
    *,
    ok: bool,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = next(
        (c for c in previous.get("conditions") or [] if c.get("type") == kind),
        None,
    )
    since = _timestamp(now) if old is None or old.get("status") != status else None
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": since or (old or {}).get("lastTransitionTime") or _timestamp(now),
    }


def write(
    patch: MutableMapping[str, Any],
    *,
    key: str,
    generation: int,
    valid: dict[str, Any],
    published: dict[str, Any],
    published_at: datetime | None = None,
) -> None:
    """Put the whole status in the patch (a merge patch replaces the conditions list)."""
    patch["observedGeneration"] = generation
    patch["topicKey"] = key
    patch["conditions"] = [valid, published]
    if published_at is not None:
        patch["publishedGeneration"] = generation
        patch["publishedAt"] = _timestamp(published_at)


def published_generation(previous: Mapping[str, Any]) -> int | None:
    value = previous.get("publishedGeneration")
    return int(value) if value is not None else None


def is_current(previous: Mapping[str, Any], generation: int) -> bool:
    """Whether this generation is already valid and on the topic."""
    if published_generation(previous) != generation:
        return False
    conditions = {c.get("type"): c for c in previous.get("conditions") or []}
    return all(
        conditions.get(kind, {}).get("status") == "True"
        and conditions.get(kind, {}).get("observedGeneration") == generation
        for kind in (VALID, PUBLISHED)
    )
