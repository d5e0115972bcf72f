"""SQL of remittance runs: which settled claims are due on an 835, the stored 835s.

A claim is due once per event: its payment (claim `paid`, never remitted as paid) and its
reversal (claim `payment_failed` after a remittance carried its payment). The primary key
of remittance_claims (claim, kind) holds that even if two runs raced; runs also take one
advisory lock, so the second waits and finds nothing left to remit.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, and_, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow_adjudication.domain import LineAmounts
from claimflow_adjudication.domain.remittance import RemittanceClaim, RemittanceLine
from claimflow_shared.money import ZERO

from . import repository as repo
from .tables import claim_line_results, claims, remittance_claims, remittances

PAYMENT = "payment"
REVERSAL = "reversal"
# pg_advisory_xact_lock key of remittance runs ("835" in ASCII, any fixed number would do).
_RUN_LOCK = 0x383335


async def lock_runs(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _RUN_LOCK})


@dataclass(frozen=True)
class DueClaim:
    claim: RemittanceClaim
    payee_npi: str
    kind: str


async def due_claims(conn: AsyncConnection, start: datetime, end: datetime) -> list[DueClaim]:
    """Claims settled in [start, end) with an event no remittance carries yet, by payee and
    settlement time."""
    c, rc = claims.c, remittance_claims.c

    def remitted(kind: str) -> Any:
        return exists().where(rc.claim_id == c.claim_id, rc.kind == kind)

    paid = and_(c.payment_status == repo.COMPLETED, ~remitted(PAYMENT))
    reversed_ = and_(c.payment_status == repo.FAILED, remitted(PAYMENT), ~remitted(REVERSAL))
    rows = (
        await conn.execute(
            select(c.claim_id, c.billing_provider_npi, c.payment_status)
            .where(c.settled_at >= start, c.settled_at < end, or_(paid, reversed_))
            .order_by(c.billing_provider_npi, c.settled_at, c.claim_id)
        )
    ).all()
    if not rows:
        return []
    lines = await _lines_of(conn, [r.claim_id for r in rows])
    due: list[DueClaim] = []
    for r in rows:
        claim_lines = lines[r.claim_id]
        reversal = r.payment_status == repo.FAILED
        due.append(
            DueClaim(
                RemittanceClaim(
                    claim_id=r.claim_id,
                    subscriber_number=claim_lines[0][1],
                    lines=tuple(line for line, _ in claim_lines),
                    reversal=reversal,
                ),
                r.billing_provider_npi,
                REVERSAL if reversal else PAYMENT,
            )
        )
    return due


async def _lines_of(
    conn: AsyncConnection, claim_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[RemittanceLine, str]]]:
    r = claim_line_results.c
    rows = await conn.execute(
        select(claim_line_results)
        .where(r.claim_id.in_(list(claim_ids)))
        .order_by(r.claim_id, r.line_no)
    )
    lines: dict[uuid.UUID, list[tuple[RemittanceLine, str]]] = defaultdict(list)
    for row in rows:
        line = RemittanceLine(
            line_no=row.line_no,
            procedure=row.procedure,
            service_date=row.service_date,
            outcome=row.outcome,
            reason_codes=tuple(row.reason_codes),
            amounts=LineAmounts(
                submitted=row.submitted,
                eligible=row.eligible,
                deductible=row.deductible,
                copay=row.copay,
                coinsurance=row.coinsurance,
                benefit=row.benefit,
            ),
            net_fee=row.net_fee,
        )
        lines[row.claim_id].append((line, row.subscriber_number))
    return lines


async def next_control_number(conn: AsyncConnection) -> int:
    number: int = await conn.scalar(text("SELECT nextval('remittance_control_numbers')"))
    return number


async def owed_by(conn: AsyncConnection, payee_npi: str) -> Decimal:
    """What the payee still owes from forwarded balances (> 0), net of recoveries."""
    result = await conn.execute(
        select(func.coalesce(func.sum(remittances.c.balance_forward), ZERO)).where(
            remittances.c.payee_npi == payee_npi
        )
    )
    total: Decimal = result.scalar_one()
    return max(-total, ZERO)


@dataclass(frozen=True)
class StoredRemittance:
    remittance_id: uuid.UUID
    payee_npi: str
    period_from: date
    period_to: date
    control_number: int
    claim_count: int
    total_charge: Decimal
    total_paid: Decimal
    net_fee: Decimal
    balance_forward: Decimal
    created_at: datetime


async def insert_remittance(
    conn: AsyncConnection, stored: StoredRemittance, x12: str, due: Sequence[DueClaim]
) -> None:
    values = {k: getattr(stored, k) for k in StoredRemittance.__dataclass_fields__}
    await conn.execute(remittances.insert().values(**values, x12=x12))
    await conn.execute(
        remittance_claims.insert(),
        [
            {"claim_id": d.claim.claim_id, "kind": d.kind, "remittance_id": stored.remittance_id}
            for d in due
        ],
    )


_SUMMARY = [c for c in remittances.c if c.name != "x12"]


def _stored(row: Row[Any]) -> StoredRemittance:
    return StoredRemittance(**{k: getattr(row, k) for k in StoredRemittance.__dataclass_fields__})


async def list_remittances(
    conn: AsyncConnection,
    *,
    payee_npi: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[StoredRemittance]:
    """Newest first; `after` is the (created_at, id) of the previous page's last item."""
    r = remittances.c
    query = select(*_SUMMARY).order_by(r.created_at.desc(), r.remittance_id.desc()).limit(limit)
    if payee_npi is not None:
        query = query.where(r.payee_npi == payee_npi)
    if after is not None:
        created, remittance_id = after
        query = query.where(
            or_(
                r.created_at < created,
                and_(r.created_at == created, r.remittance_id < remittance_id),
            )
        )
    return [_stored(row) for row in await conn.execute(query)]


async def get_remittance(
    conn: AsyncConnection, remittance_id: uuid.UUID
) -> tuple[StoredRemittance, str] | None:
    row = (
        await conn.execute(select(remittances).where(remittances.c.remittance_id == remittance_id))
    ).first()
    return (_stored(row), row.x12) if row else None


async def claims_of(conn: AsyncConnection, remittance_id: uuid.UUID) -> list[uuid.UUID]:
    """The claims an 835 carries (each once, even paid and reversed in the same run)."""
    rows = await conn.execute(
        select(remittance_claims.c.claim_id)
        .where(remittance_claims.c.remittance_id == remittance_id)
        .distinct()
        .order_by(remittance_claims.c.claim_id)
    )
    return list(rows.scalars())
