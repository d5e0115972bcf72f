"""Bulk submission: many claims in one request, each accepted or refused on its own.

Unlike a CSV import (all or nothing), a bulk request stores every valid claim and reports each
refusal beside the accepted ones. Each claim may carry its own Idempotency-Key, so a client
that resends a batch (or an interchange) gets the first answer for the claims already stored
and stores only the others. Everything stored by one request, claims, their
`claims.submitted` events and the keys' responses, commits in one transaction.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_intake.adapters import repository
from claimflow_intake.adapters.repository import KeyedResponse, NewClaim
from claimflow_intake.domain import Claim, validate_claim
from claimflow_intake.domain.errors import (
    IdempotencyKeyReusedError,
    InvalidClaimError,
    RuleFailure,
)
from claimflow_intake.metrics import CLAIMS_ACCEPTED
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.events import Topics
from claimflow_shared.outbox.writer import outbox_rows

from .claims import (
    AcceptedClaim,
    Receipt,
    Render,
    canonical,
    failures,
    invalid,
    policy,
    request_fingerprint,
    submitted_event,
    today,
)

log = logging.getLogger(__name__)

ACCEPTED_STATUS = 202


@dataclass(frozen=True)
class Entry:
    """A valid claim to store, under `idempotency_key` (None: no replay protection) for the
    request whose hash is `fingerprint`."""

    claim: Claim
    idempotency_key: str | None
    fingerprint: str


@dataclass(frozen=True)
class BatchItem:
    """One element of a bulk request: a decoded JSON claim and its own optional key."""

    payload: Any
    idempotency_key: str | None = None


_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def read_batch_element(element: Any) -> BatchItem | InvalidClaimError:
    """`{"claim": {...}, "idempotency_key"?: "..."}`, or why it is not one."""
    if not isinstance(element, dict) or "claim" not in element:
        return invalid(
            [RuleFailure(rule="type", message='each element must be an object with "claim"')]
        )
    key = element.get("idempotency_key")
    if key is not None and not (isinstance(key, str) and _KEY.fullmatch(key)):
        return invalid(
            [
                RuleFailure(
                    rule="idempotency-key",
                    field="idempotency_key",
                    message="idempotency_key: 1 to 255 visible ASCII characters",
                )
            ]
        )
    return BatchItem(element["claim"], key)


# What became of one claim of a bulk request: its receipt (new or replayed), or the refusal.
Outcome = Receipt | InvalidClaimError | IdempotencyKeyReusedError


def check_batch_size(count: int, limit: int) -> None:
    if count == 0:
        raise invalid([RuleFailure(rule="batch-size", message="the batch holds no claim")])
    if count > limit:
        raise invalid(
            [
                RuleFailure(
                    rule="batch-size",
                    message=f"the batch holds {count} claims; at most {limit} are accepted",
                )
            ]
        )


def validate_item(
    item: BatchItem | InvalidClaimError, settings: IntakeSettings
) -> Entry | InvalidClaimError:
    """The claim as a single submission would validate it; its fingerprint is a single
    submission's too, so a key first used with POST /v1/claims replays here and back."""
    if isinstance(item, InvalidClaimError):
        return item
    if not isinstance(item.payload, dict):
        return invalid([RuleFailure(rule="type", message="claim: must be a JSON object")])
    result = validate_claim(item.payload, policy(settings), today())
    if result.claim is None:
        return invalid(failures(result.violations))
    fingerprint = request_fingerprint("submit", canonical(item.payload))
    return Entry(result.claim, item.idempotency_key, fingerprint)


async def submit_batch(
    engine: AsyncEngine,
    settings: IntakeSettings,
    elements: Sequence[Any],
    *,
    principal: str,
    organisation: str,
    render: Render,
) -> list[Outcome]:
    """Validate each element (read_batch_element's shape, or an error already found in
    it) on its own and store the valid claims together; one outcome per element, in order."""
    check_batch_size(len(elements), settings.batch_max_claims)
    checked = [
        validate_item(e if isinstance(e, InvalidClaimError) else read_batch_element(e), settings)
        for e in elements
    ]
    return await accept_each(
        engine,
        settings,
        checked,
        principal=principal,
        organisation=organisation,
        channel="batch",
        render=render,
    )


def _replay(entry: Entry, stored: repository.StoredResponse) -> Outcome:
    if stored.request_hash != entry.fingerprint or stored.status != ACCEPTED_STATUS:
        return IdempotencyKeyReusedError(
            "This key was first used with another claim; use a new key for a new claim."
        )
    return Receipt(stored.body, stored.location, replayed=True)


async def accept_each(
    engine: AsyncEngine,
    settings: IntakeSettings,
    checked: Sequence[Entry | InvalidClaimError],
    *,
    principal: str,
    organisation: str,
    channel: str,
    render: Render,
) -> list[Outcome]:
    """Store every valid entry not stored before under its key, in one transaction.

    A key seen earlier in the same request answers as that earlier claim did (a replay) when
    the claim is the same, and is refused when it is not.
    """
    created_at = datetime.now(UTC)
    topic = settings.topic(Topics.CLAIMS_SUBMITTED)
    outcomes: list[Outcome | None] = []
    fresh: dict[int, tuple[NewClaim, Receipt]] = {}
    first_with_key: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for index, entry in enumerate(checked):
        if isinstance(entry, InvalidClaimError):
            outcomes.append(entry)
            continue
        if entry.idempotency_key is not None:
            earlier = first_with_key.setdefault(entry.idempotency_key, index)
            if earlier != index:
                repeats[index] = earlier
                outcomes.append(None)
                continue
        new = NewClaim(uuid.uuid4(), entry.claim)
        accepted = AcceptedClaim(
            id=new.id,
            external_id=entry.claim.external_id,
            created_at=created_at,
            line_count=len(entry.claim.lines),
            net_fee=entry.claim.total_net_fee,
        )
        fresh[index] = (new, render([accepted]))
        outcomes.append(None)

    # index -> (key, entry) of every fresh entry that has a key
    keyed = {
        index: (entry.idempotency_key, entry)
        for index in fresh
        if isinstance(entry := checked[index], Entry) and entry.idempotency_key is not None
    }
    async with engine.begin() as conn:
        stored = await repository.store_new_idempotent_responses(
            conn,
            principal,
            [
                KeyedResponse(
                    key=key,
                    request_hash=entry.fingerprint,
                    status=ACCEPTED_STATUS,
                    body=fresh[index][1].body,
                    location=fresh[index][1].location,
                )
                for index, (key, entry) in keyed.items()
            ],
        )
        for index, (key, entry) in keyed.items():
            if key in stored:
                outcomes[index] = _replay(entry, stored[key])
                del fresh[index]
        new_claims = [new for new, _ in fresh.values()]
        if new_claims:
            events = [submitted_event(topic, new, created_at, principal) for new in new_claims]
            statement, params = repository.insert_claims(
                new_claims, principal, organisation, created_at, outbox_rows(events)
            )
            await conn.execute(statement, params)

    for index, (_, receipt) in fresh.items():
        outcomes[index] = receipt
    for index, earlier in repeats.items():
        outcomes[index] = _repeat(checked[index], checked[earlier], outcomes[earlier])
    CLAIMS_ACCEPTED.labels(channel).inc(len(fresh))
    for new, _ in fresh.values():
        log.info("claim %s accepted with %d line(s)", new.id, len(new.claim.lines))
    answered = [outcome for outcome in outcomes if outcome is not None]
    assert len(answered) == len(checked), "every entry has an outcome"
    return answered


def _repeat(
    entry: Entry | InvalidClaimError, first: Entry | InvalidClaimError, outcome: Outcome | None
) -> Outcome:
    """A key used twice in one request: the second is a retry of the first, or a misuse."""
    assert isinstance(entry, Entry)
    assert isinstance(first, Entry)
    if entry.fingerprint != first.fingerprint or not isinstance(outcome, Receipt):
        return IdempotencyKeyReusedError(
            "This key was used for another claim earlier in the same request."
        )
    return Receipt(outcome.body, outcome.location, replayed=True)
