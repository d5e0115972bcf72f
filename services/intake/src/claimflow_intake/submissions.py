"""Accepting claims: one transaction stores the claims, their outbox events and the
idempotent response, so a claim is never stored without its event or acknowledged twice."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_intake.adapters import repository
from claimflow_intake.adapters.repository import NewClaim
from claimflow_intake.api.schemas import ClaimAccepted, ImportAccepted, Totals
from claimflow_intake.domain import Claim, Violation
from claimflow_intake.metrics import CLAIMS_ACCEPTED, VALIDATION_FAILURES
from claimflow_shared.events import ClaimLineV1, ClaimSubmittedV1, ClaimTotalsV1, Topics, new_event
from claimflow_shared.outbox.writer import PendingEvent, outbox_rows
from claimflow_shared.settings import ServiceSettings
from claimflow_shared.web.problems import FieldError, ProblemError

log = logging.getLogger(__name__)

SOURCE = "/claimflow/intake"


@dataclass(frozen=True)
class Accepted:
    body: dict[str, Any]
    location: str | None
    replayed: bool = False


def request_fingerprint(operation: str, canonical_body: bytes) -> str:
    return hashlib.sha256(operation.encode() + b"\0" + canonical_body).hexdigest()


def field_errors(violations: Sequence[Violation], claim: int | None = None) -> list[FieldError]:
    return [
        FieldError(claim=claim, line=v.line, field=v.field, rule=v.rule, message=v.message)
        for v in violations
    ]


def validation_problem(violations: Sequence[Violation]) -> ProblemError:
    return validation_problem_from(field_errors(violations))


def validation_problem_from(errors: Sequence[FieldError]) -> ProblemError:
    for error in errors:
        VALIDATION_FAILURES.labels(error.rule).inc()
    return ProblemError(
        422,
        "validation-error",
        "Claim is not valid",
        f"{len(errors)} rule(s) failed; nothing was stored.",
        errors=errors,
    )


def _submitted_event(
    topic: str, new: NewClaim, created_at: datetime, principal: str
) -> PendingEvent:
    claim = new.claim
    data = ClaimSubmittedV1(
        claim_id=new.id,
        external_id=claim.external_id,
        submitted_at=created_at,
        submitted_by=principal,
        lines=[
            ClaimLineV1(
                line_no=number,
                service_date=line.service_date,
                submitted_procedure=line.submitted_procedure,
                quadrant=line.quadrant,
                plan_group=line.plan_group,
                subscriber_number=line.subscriber_number,
                provider_npi=line.provider_npi,
                provider_fees=line.provider_fees,
                allowed_fees=line.allowed_fees,
                member_coinsurance=line.member_coinsurance,
                member_copay=line.member_copay,
                net_fee=line.net_fee,
            )
            for number, line in enumerate(claim.lines, start=1)
        ],
        totals=ClaimTotalsV1(net_fee=claim.total_net_fee),
    )
    event = new_event(SOURCE, data, subject=str(new.id))
    return PendingEvent(topic=topic, key=str(new.id), event=event)


def _accepted(new: NewClaim, created_at: datetime) -> ClaimAccepted:
    return ClaimAccepted(
        id=new.id,
        status="queued",
        external_id=new.claim.external_id,
        created_at=created_at,
        line_count=len(new.claim.lines),
        totals=Totals(net_fee=new.claim.total_net_fee),
        location=f"/v1/claims/{new.id}",
    )


async def accept_claims(
    engine: AsyncEngine,
    settings: ServiceSettings,
    claims: Sequence[Claim],
    *,
    principal: str,
    idempotency_key: str | None,
    fingerprint: str,
    as_import: bool,
) -> Accepted:
    new_claims = [NewClaim(uuid.uuid4(), claim) for claim in claims]
    created_at = datetime.now(UTC)
    topic = settings.topic(Topics.CLAIMS_SUBMITTED)
    events = [_submitted_event(topic, n, created_at, principal) for n in new_claims]
    store, params = repository.insert_claims(new_claims, principal, created_at, outbox_rows(events))
    accepted = [_accepted(n, created_at) for n in new_claims]
    if as_import:
        body = ImportAccepted(claims=accepted).model_dump(mode="json")
    else:
        body = accepted[0].model_dump(mode="json")
    location = accepted[0].location if len(accepted) == 1 else None

    if idempotency_key is None:
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(store, params)
    else:
        async with engine.begin() as conn:
            stored = await repository.reserve_idempotency_key(
                conn, principal, idempotency_key, fingerprint
            )
            if stored is not None:
                if stored.request_hash != fingerprint:
                    raise ProblemError(
                        422,
                        "idempotency-key-reused",
                        "Idempotency-Key reused with a different request",
                        "This key was first used with another body; use a new key for a new "
                        "request.",
                    )
                return Accepted(stored.body, stored.location, replayed=True)
            await conn.execute(store, params)
            await repository.store_idempotent_response(
                conn, principal, idempotency_key, 202, body, location
            )
    CLAIMS_ACCEPTED.labels("csv" if as_import else "json").inc(len(new_claims))
    # Inside the request's span: the line carries the claim's trace id. Ids only, no PHI.
    for new in new_claims:
        log.info("claim %s accepted with %d line(s)", new.id, len(new.claim.lines))
    return Accepted(body, location)


def today() -> date:
    return datetime.now(UTC).date()
