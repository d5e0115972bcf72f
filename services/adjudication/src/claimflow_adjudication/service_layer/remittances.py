"""Remittance runs: one 835 per payee for the claims whose payment settled in a period.

A run over [from, to] (UTC days, both included) takes every claim paid in it that no
remittance carried yet, and every claim reversed in it whose payment an earlier remittance
carried, groups them by payee (the billing provider, who was paid) and stores one 835 per
payee. Each payment and each reversal goes on exactly one 835: running a period again, or
an overlapping one, finds only what is new.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby

from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.adapters import remittances as store
from claimflow_adjudication.adapters.tables import outbox
from claimflow_adjudication.domain.errors import BadPeriodError, RemittanceNotFoundError
from claimflow_adjudication.domain.remittance import (
    Payer,
    Remittance,
    build_835,
    forward_balance,
)
from claimflow_adjudication.service_layer.messages import SOURCE
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_shared.errors import RuleFailure
from claimflow_shared.money import ZERO
from claimflow_shared.outbox.access import record_access
from claimflow_shared.pagination import decode_cursor, encode_cursor

log = logging.getLogger(__name__)

StoredRemittance = store.StoredRemittance


@dataclass(frozen=True)
class RemittancePage:
    items: list[StoredRemittance]
    next_cursor: str | None


def payer_of(settings: AdjudicationSettings) -> Payer:
    return Payer(
        name=settings.payer_name,
        tin=settings.payer_tin,
        interchange_id=settings.payer_interchange_id,
        address=settings.payer_address,
        city=settings.payer_city,
        state=settings.payer_state,
        postal_code=settings.payer_postal_code,
        contact_phone=settings.payer_contact_phone,
        usage=settings.remittance_usage,
    )


def _bounds(period_from: date, period_to: date) -> tuple[datetime, datetime]:
    if period_to < period_from:
        raise BadPeriodError(
            "The period ends before it starts.",
            failures=[RuleFailure("period", "to is before from", field="to")],
        )
    start = datetime.combine(period_from, time(), UTC)
    return start, datetime.combine(period_to + timedelta(days=1), time(), UTC)


async def run_remittances(
    engine: AsyncEngine,
    settings: AdjudicationSettings,
    period_from: date,
    period_to: date,
    *,
    now: datetime | None = None,
) -> list[StoredRemittance]:
    """Remit what settled in the period and is not remitted yet; the 835s it stored."""
    start, end = _bounds(period_from, period_to)
    payer = payer_of(settings)
    created: list[StoredRemittance] = []
    async with engine.begin() as conn:
        await store.lock_runs(conn)
        created_at = now or datetime.now(UTC)
        due = await store.due_claims(conn, start, end)
        for payee_npi, group in groupby(due, key=lambda d: d.payee_npi):
            items = list(group)
            control = await store.next_control_number(conn)
            claims_paid = sum((d.claim.paid for d in items), start=ZERO)
            owed = await store.owed_by(conn, payee_npi)
            plb = forward_balance(claims_paid, owed, f"{control:09d}")
            remittance = Remittance(
                payer=payer,
                payee_npi=payee_npi,
                control_number=control,
                created_at=created_at,
                claims=tuple(d.claim for d in items),
                provider_adjustments=(plb,) if plb else (),
            )
            stored = StoredRemittance(
                remittance_id=uuid.uuid4(),
                payee_npi=payee_npi,
                period_from=period_from,
                period_to=period_to,
                control_number=control,
                claim_count=len(items),
                total_charge=remittance.total_charge,
                total_paid=remittance.total,
                net_fee=remittance.net_fee,
                balance_forward=plb.amount if plb else ZERO,
                created_at=created_at,
            )
            await store.insert_remittance(conn, stored, build_835(remittance), items)
            created.append(stored)
    for r in created:
        log.info(
            "remittance %s: %d claims for payee %s", r.remittance_id, r.claim_count, r.payee_npi
        )
    return created


def _key(fields: list[object]) -> tuple[datetime, uuid.UUID]:
    created, remittance_id = fields
    if not isinstance(created, str) or not isinstance(remittance_id, str):
        raise TypeError("not a remittances page key")
    return datetime.fromisoformat(created), uuid.UUID(remittance_id)


async def list_remittances(
    engine: AsyncEngine, *, payee_npi: str | None, limit: int, cursor: str | None
) -> RemittancePage:
    """Newest first, with an opaque cursor for the next page."""
    after = (
        decode_cursor(cursor, _key, message="cursor is not one this API issued") if cursor else None
    )
    async with engine.connect() as conn:
        rows = await store.list_remittances(conn, payee_npi=payee_npi, after=after, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if page else None
    next_cursor = (
        encode_cursor([last.created_at.isoformat(), str(last.remittance_id)])
        if more and last
        else None
    )
    return RemittancePage(items=page, next_cursor=next_cursor)


async def remittance_835(
    engine: AsyncEngine,
    settings: AdjudicationSettings,
    remittance_id: uuid.UUID,
    *,
    principal: str,
) -> tuple[StoredRemittance, str]:
    """The stored remittance and its X12 text, exactly as the run wrote it. An 835 carries
    PHI (subscriber ids, service dates): the read enqueues one `audit.access` event
    (`remittance.read`) per claim it carries, in the read's own transaction."""
    async with engine.begin() as conn:
        found = await store.get_remittance(conn, remittance_id)
        if found is None:
            raise RemittanceNotFoundError("No remittance has this id.")
        await record_access(
            conn,
            outbox,
            settings,
            SOURCE,
            await store.claims_of(conn, remittance_id),
            principal=principal,
            action="remittance.read",
        )
    return found
