"""Claims: accept (JSON or CSV), read (audited) and list.

Accepting is one transaction: the claims, their outbox events and the idempotent receipt
commit together, so a claim is never stored without its event or acknowledged twice.
Reading a claim enqueues its `audit.access` event in the same transaction as the read, so no
read of PHI goes unaudited.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_intake.adapters import repository
from claimflow_intake.adapters.repository import NewClaim
from claimflow_intake.adapters.tables import outbox
from claimflow_intake.domain import (
    Claim,
    ValidationPolicy,
    Violation,
    parse_claims_csv,
    validate_claim,
)
from claimflow_intake.domain.errors import (
    ClaimNotFoundError,
    IdempotencyKeyReusedError,
    InvalidClaimError,
    RuleFailure,
)
from claimflow_intake.metrics import CLAIMS_ACCEPTED, VALIDATION_FAILURES
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.events import (
    ClaimLineV1,
    ClaimSubmittedV1,
    ClaimTotalsV1,
    Topics,
    new_event,
)
from claimflow_shared.outbox.access import record_access
from claimflow_shared.outbox.writer import PendingEvent, outbox_rows

log = logging.getLogger(__name__)

SOURCE = "/claimflow/intake"


@dataclass(frozen=True)
class AcceptedClaim:
    id: uuid.UUID
    external_id: str | None
    created_at: datetime
    line_count: int
    net_fee: Decimal
    status: str = "queued"


@dataclass(frozen=True)
class Receipt:
    """The answer to a submission as first given; the same Idempotency-Key replays it."""

    body: dict[str, Any]
    location: str | None
    replayed: bool = False


# The caller's representation of accepted claims: stored with the idempotency key in the
# accepting transaction, so it is decided before the commit, by whoever answers.
Render = Callable[[Sequence[AcceptedClaim]], Receipt]


@dataclass(frozen=True)
class ClaimListing:
    items: list[dict[str, Any]]
    next_cursor: str | None


def today() -> date:
    return datetime.now(UTC).date()


def policy(settings: IntakeSettings) -> ValidationPolicy:
    return ValidationPolicy(npi_luhn=settings.validation_npi_luhn, max_lines=settings.max_lines)


def request_fingerprint(operation: str, canonical_body: bytes) -> str:
    return hashlib.sha256(operation.encode() + b"\0" + canonical_body).hexdigest()


def canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def failures(violations: Sequence[Violation], claim: int | None = None) -> list[RuleFailure]:
    return [
        RuleFailure(claim=claim, line=v.line, field=v.field, rule=v.rule, message=v.message)
        for v in violations
    ]


def invalid(found: Sequence[RuleFailure]) -> InvalidClaimError:
    """The refusal of a submission, counted by rule (names only: no PHI in labels)."""
    for failure in found:
        VALIDATION_FAILURES.labels(failure.rule).inc()
    return InvalidClaimError(f"{len(found)} rule(s) failed; nothing was stored.", failures=found)


async def submit_claim(
    engine: AsyncEngine,
    settings: IntakeSettings,
    payload: Any,
    *,
    principal: str,
    organisation: str,
    idempotency_key: str | None,
    render: Render,
) -> Receipt:
    """Validate one claim (a decoded JSON document) and queue it for adjudication.

    Every failing rule of every line is reported at once (InvalidClaimError).
    """
    if not isinstance(payload, dict):
        raise invalid(
            [RuleFailure(rule="type", message="the body must be a JSON object with 'lines'")]
        )
    result = validate_claim(payload, policy(settings), today())
    if result.claim is None:
        raise invalid(failures(result.violations))
    return await accept_claims(
        engine,
        settings,
        [result.claim],
        principal=principal,
        organisation=organisation,
        idempotency_key=idempotency_key,
        # Only a keyed submission is compared with its retries: the canonical form is not free.
        fingerprint=(
            request_fingerprint("submit", canonical(payload))
            if idempotency_key is not None
            else None
        ),
        channel="json",
        render=render,
    )


async def import_claims(
    engine: AsyncEngine,
    settings: IntakeSettings,
    document: str,
    *,
    principal: str,
    organisation: str,
    idempotency_key: str | None,
    render: Render,
) -> Receipt:
    """Import a CSV document: one claim per file, or one per value of a claim-number column.

    All claims of the document are accepted together or none is.
    """
    parsed = parse_claims_csv(document, max_claims=settings.import_max_claims)
    if parsed.violations:
        raise invalid(failures(parsed.violations))
    rules, day = policy(settings), today()
    claims: list[Claim] = []
    found: list[RuleFailure] = []
    for index, submission in enumerate(parsed.submissions):
        result = validate_claim(submission, rules, day)
        if result.claim is None:
            found += failures(result.violations, claim=index)
        else:
            claims.append(result.claim)
    if found:
        raise invalid(found)
    return await accept_claims(
        engine,
        settings,
        claims,
        principal=principal,
        organisation=organisation,
        idempotency_key=idempotency_key,
        # The document's UTF-8 bytes: the same file is the same request.
        fingerprint=request_fingerprint("import", document.encode("utf-8")),
        channel="csv",
        render=render,
    )


def submitted_event(
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


async def accept_claims(
    engine: AsyncEngine,
    settings: IntakeSettings,
    claims: Sequence[Claim],
    *,
    principal: str,
    organisation: str,
    idempotency_key: str | None,
    fingerprint: str | None,
    channel: str,
    render: Render,
) -> Receipt:
    """Store valid claims, owned by `organisation`, with their events and receipt; replay the
    receipt of a retry. `fingerprint` (the request's hash) is needed with an `idempotency_key`
    only."""
    new_claims = [NewClaim(uuid.uuid4(), claim) for claim in claims]
    created_at = datetime.now(UTC)
    topic = settings.topic(Topics.CLAIMS_SUBMITTED)
    events = [submitted_event(topic, n, created_at, principal) for n in new_claims]
    store, params = repository.insert_claims(
        new_claims, principal, organisation, created_at, outbox_rows(events)
    )
    receipt = render(
        [
            AcceptedClaim(
                id=n.id,
                external_id=n.claim.external_id,
                created_at=created_at,
                line_count=len(n.claim.lines),
                net_fee=n.claim.total_net_fee,
            )
            for n in new_claims
        ]
    )

    if idempotency_key is None:
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(store, params)
    else:
        if fingerprint is None:
            raise ValueError("a keyed request needs its fingerprint")
        async with engine.begin() as conn:
            stored = await repository.reserve_idempotency_key(
                conn, principal, idempotency_key, fingerprint
            )
            if stored is not None:
                if stored.request_hash != fingerprint:
                    raise IdempotencyKeyReusedError(
                        "This key was first used with another body; use a new key for a new "
                        "request."
                    )
                return Receipt(stored.body, stored.location, replayed=True)
            await conn.execute(store, params)
            await repository.store_idempotent_response(
                conn, principal, idempotency_key, 202, receipt.body, receipt.location
            )
    CLAIMS_ACCEPTED.labels(channel).inc(len(new_claims))
    # Inside the request's span: the line carries the claim's trace id. Ids only, no PHI.
    for new in new_claims:
        log.info("claim %s accepted with %d line(s)", new.id, len(new.claim.lines))
    return receipt


async def read_claim(
    engine: AsyncEngine,
    settings: IntakeSettings,
    claim_id: str,
    *,
    principal: str,
    organisation: str | None,
) -> dict[str, Any]:
    """The claim with its lines, status and adjudication, its read audited (`audit.access`)
    in the same transaction. Another organisation's claim is not found, as one that does not
    exist: its existence is not disclosed. `organisation` None reads any (payer roles)."""
    try:
        parsed_id = uuid.UUID(claim_id)
    except ValueError:
        raise ClaimNotFoundError from None
    async with engine.begin() as conn:
        found = await repository.fetch_claim(conn, parsed_id, organisation)
        if found is None:
            raise ClaimNotFoundError
        await record_access(
            conn, outbox, settings, SOURCE, [parsed_id], principal=principal, action="claim.read"
        )
    claim, lines = found
    return {
        **claim._mapping,
        "totals": {"net_fee": claim.net_fee_total},
        "lines": [dict(line._mapping) for line in lines],
    }


async def list_claims(
    engine: AsyncEngine,
    settings: IntakeSettings,
    *,
    principal: str,
    organisation: str | None,
    status: str | None,
    provider_npi: str | None,
    limit: int,
    cursor: str | None,
) -> ClaimListing:
    """Newest first, with an opaque cursor for the next page: `organisation`'s claims, or every
    organisation's when None (payer roles). Each claim on the page is a PHI read, audited
    (`audit.access`, `claim.list`) in the list's transaction."""
    after = repository.decode_cursor(cursor) if cursor else None
    async with engine.begin() as conn:
        rows = await repository.list_claims(
            conn,
            organisation=organisation,
            status=status,
            provider_npi=provider_npi,
            after=after,
            limit=limit + 1,
        )
        page, more = rows[:limit], len(rows) > limit
        await record_access(
            conn,
            outbox,
            settings,
            SOURCE,
            [r.id for r in page],
            principal=principal,
            action="claim.list",
        )
    items = [{**r._mapping, "totals": {"net_fee": r.net_fee_total}} for r in page]
    next_cursor = repository.encode_cursor(page[-1].created_at, page[-1].id) if more else None
    return ClaimListing(items=items, next_cursor=next_cursor)
