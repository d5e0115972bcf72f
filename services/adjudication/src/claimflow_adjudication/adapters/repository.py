"""SQL of adjudication: histories under row locks, results, provider totals, saga state.

Lock order, the same in every transaction, so concurrent replicas never deadlock each other:
processed-event ids, then existing claims (the saga, by id; adjudication only inserts new
ones), then benefit accumulators (by key), then provider totals (by NPI). Each group is locked
by one statement over its rows in sorted order."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow_adjudication.domain import (
    BenefitHistory,
    ClaimResult,
    ClaimToAdjudicate,
    HistoryKey,
    PriorService,
    UsageDelta,
)
from claimflow_shared.money import ZERO

from .tables import (
    benefit_accumulators,
    claim_line_results,
    claims,
    provider_totals,
)

# Saga states of a claim's payment.
NOT_REQUIRED = "not_required"
REQUESTED = "requested"
COMPLETED = "completed"
FAILED = "failed"


async def known_claims(conn: AsyncConnection, claim_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    ids = list(claim_ids)
    if not ids:
        return set()
    rows = await conn.execute(select(claims.c.claim_id).where(claims.c.claim_id.in_(ids)))
    return {row.claim_id for row in rows}


# Keys travel as three arrays: one statement text for any number of keys, prepared once.
# DO UPDATE (not DO NOTHING) locks existing rows too, in the sorted order of the SELECT.
_LOCK_ACCUMULATORS = text(
    """
    INSERT INTO benefit_accumulators
        (plan_id, subscriber_number, benefit_year, deductible_applied, benefits_paid)
    SELECT k.plan_id, k.subscriber_number, k.benefit_year, 0, 0
    FROM unnest(CAST(:plans AS varchar[]), CAST(:subscribers AS varchar[]),
                CAST(:years AS date[])) WITH ORDINALITY AS k (plan_id, subscriber_number,
                                                              benefit_year, n)
    ORDER BY k.n
    ON CONFLICT (plan_id, subscriber_number, benefit_year) DO UPDATE SET updated_at = now()
    RETURNING plan_id, subscriber_number, benefit_year, deductible_applied, benefits_paid
    """
)
_SERVICES_OF = text(
    """
    SELECT r.plan_id, r.subscriber_number, r.benefit_year, r.procedure, r.service_date,
           r.quadrant, r.provider_npi
    FROM claim_line_results AS r
    JOIN unnest(CAST(:plans AS varchar[]), CAST(:subscribers AS varchar[]), CAST(:years AS date[]))
         AS k (plan_id, subscriber_number, benefit_year)
      ON r.plan_id = k.plan_id
     AND r.subscriber_number = k.subscriber_number
     AND r.benefit_year = k.benefit_year
    WHERE r.counted
    """
)


async def lock_histories(
    conn: AsyncConnection, keys: Iterable[HistoryKey]
) -> dict[HistoryKey, BenefitHistory]:
    """Lock (creating when new) the accumulators of `keys` and read each one's history."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    arrays: dict[str, list[Any]] = {
        "plans": [k.plan_id for k in ordered],
        "subscribers": [k.subscriber_number for k in ordered],
        "years": [k.benefit_year for k in ordered],
    }
    totals = {
        HistoryKey(r.plan_id, r.subscriber_number, r.benefit_year): (
            r.deductible_applied,
            r.benefits_paid,
        )
        for r in await conn.execute(_LOCK_ACCUMULATORS, arrays)
    }
    services: dict[HistoryKey, list[PriorService]] = defaultdict(list)
    rows = await conn.execute(_SERVICES_OF, arrays)
    for r in rows:
        key = HistoryKey(r.plan_id, r.subscriber_number, r.benefit_year)
        services[key].append(PriorService(r.procedure, r.service_date, r.quadrant, r.provider_npi))
    return {
        key: BenefitHistory(totals[key][0], totals[key][1], tuple(services.get(key, ())))
        for key in ordered
    }


async def add_usage(
    conn: AsyncConnection, usage: Mapping[HistoryKey, UsageDelta], *, sign: int = 1
) -> None:
    """Add (sign=1) or take back (sign=-1) deductible and benefit used; rows are locked."""
    if not usage:
        return
    acc = benefit_accumulators
    await conn.execute(
        update(acc)
        .where(
            acc.c.plan_id == bindparam("k_plan"),
            acc.c.subscriber_number == bindparam("k_subscriber"),
            acc.c.benefit_year == bindparam("k_year"),
        )
        .values(
            deductible_applied=acc.c.deductible_applied + bindparam("d_deductible"),
            benefits_paid=acc.c.benefits_paid + bindparam("d_benefit"),
            updated_at=func.now(),
        ),
        [
            {
                "k_plan": k.plan_id,
                "k_subscriber": k.subscriber_number,
                "k_year": k.benefit_year,
                "d_deductible": sign * d.deductible,
                "d_benefit": sign * d.benefit,
            }
            for k, d in sorted(usage.items())
        ],
    )


_ADD_PROVIDER_TOTALS = text(
    """
    INSERT INTO provider_totals AS t (provider_npi, net_fee_total, claim_count)
    SELECT d.npi, d.fee, d.claims
    FROM unnest(CAST(:npis AS varchar[]), CAST(:fees AS numeric[]), CAST(:claims AS int[]))
         WITH ORDINALITY AS d (npi, fee, claims, n)
    ORDER BY d.n
    ON CONFLICT (provider_npi) DO UPDATE
    SET net_fee_total = t.net_fee_total + excluded.net_fee_total,
        claim_count = t.claim_count + excluded.claim_count,
        updated_at = now()
    """
)


@dataclass
class ProviderDelta:
    net_fee: Decimal = ZERO
    claims: int = 0


async def add_provider_totals(conn: AsyncConnection, deltas: Mapping[str, ProviderDelta]) -> None:
    """Apply summed deltas per provider in one upsert (rows locked in NPI order); a provider
    left with no claims is removed, so the ranking holds only providers with standing claims."""
    if not deltas:
        return
    t = provider_totals
    ordered = sorted(deltas.items())
    await conn.execute(
        _ADD_PROVIDER_TOTALS,
        {
            "npis": [npi for npi, _ in ordered],
            "fees": [d.net_fee for _, d in ordered],
            "claims": [d.claims for _, d in ordered],
        },
    )
    shrunk = [npi for npi, d in ordered if d.claims < 0]
    if shrunk:
        await conn.execute(delete(t).where(t.c.provider_npi.in_(shrunk), t.c.claim_count <= 0))


def provider_deltas(results: Iterable[ClaimResult], *, sign: int = 1) -> dict[str, ProviderDelta]:
    deltas: dict[str, ProviderDelta] = defaultdict(ProviderDelta)
    for result in results:
        for npi, net_fee in result.net_fee_by_provider().items():
            deltas[npi].net_fee += sign * net_fee
            deltas[npi].claims += sign
    return dict(deltas)


@dataclass(frozen=True)
class StoredResult:
    event_id: str
    claim: ClaimToAdjudicate
    result: ClaimResult
    status: str
    payment_status: str
    payment_id: uuid.UUID | None
    adjudicated_at: datetime


async def insert_results(conn: AsyncConnection, stored: Sequence[StoredResult]) -> None:
    if not stored:
        return
    await conn.execute(
        claims.insert(),
        [
            {
                "claim_id": s.result.claim_id,
                "event_id": s.event_id,
                "status": s.status,
                "outcome": s.result.outcome,
                "plan_id": s.result.plan_id,
                "plan_version": s.result.plan_version,
                "billing_provider_npi": s.result.billing_provider_npi,
                "net_fee": s.result.totals.net_fee,
                "submitted": s.result.totals.submitted,
                "eligible": s.result.totals.eligible,
                "benefit": s.result.totals.benefit,
                "payment_status": s.payment_status,
                "payment_id": s.payment_id,
                "adjudicated_at": s.adjudicated_at,
                "updated_at": s.adjudicated_at,
            }
            for s in stored
        ],
    )
    await conn.execute(
        claim_line_results.insert(),
        [
            {
                "claim_id": s.result.claim_id,
                "line_no": r.line_no,
                "plan_id": r.history_key.plan_id,
                "subscriber_number": r.history_key.subscriber_number,
                "benefit_year": r.history_key.benefit_year,
                "service_date": line.service_date,
                "procedure": r.procedure,
                "quadrant": line.quadrant,
                "provider_npi": r.provider_npi,
                "category": r.category.value if r.category is not None else None,
                "outcome": r.outcome,
                "reason_codes": list(r.reason_codes),
                "net_fee": r.net_fee,
                "submitted": r.amounts.submitted,
                "eligible": r.amounts.eligible,
                "deductible": r.amounts.deductible,
                "copay": r.amounts.copay,
                "coinsurance": r.amounts.coinsurance,
                "benefit": r.amounts.benefit,
                "counted": r.outcome != "denied",
            }
            for s in stored
            for r, line in zip(s.result.lines, s.claim.lines, strict=True)
        ],
    )


# --- the payments saga ------------------------------------------------------------------


async def lock_claims(
    conn: AsyncConnection, claim_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Row[Any]]:
    ids = sorted(set(claim_ids))
    if not ids:
        return {}
    rows = await conn.execute(
        select(claims)
        .where(claims.c.claim_id.in_(ids))
        .order_by(claims.c.claim_id)
        .with_for_update()
    )
    return {row.claim_id: row for row in rows}


async def set_payment_state(
    conn: AsyncConnection,
    claim_id: uuid.UUID,
    *,
    status: str,
    payment_status: str,
    reason: str | None = None,
) -> None:
    await conn.execute(
        update(claims)
        .where(claims.c.claim_id == claim_id)
        .values(
            status=status,
            payment_status=payment_status,
            payment_reason=reason,
            settled_at=func.now(),
            updated_at=func.now(),
        )
    )


@dataclass(frozen=True)
class ClaimEffects:
    """What a standing claim contributes to histories and provider totals: what a reversal
    takes back."""

    usage: dict[HistoryKey, UsageDelta]
    providers: dict[str, ProviderDelta]


async def effects_of(conn: AsyncConnection, claim_ids: Sequence[uuid.UUID]) -> ClaimEffects:
    lines = claim_line_results.c
    rows = await conn.execute(
        select(
            lines.claim_id,
            lines.plan_id,
            lines.subscriber_number,
            lines.benefit_year,
            lines.provider_npi,
            lines.net_fee,
            lines.deductible,
            lines.benefit,
            lines.counted,
        ).where(lines.claim_id.in_(list(claim_ids)))
    )
    usage: dict[HistoryKey, UsageDelta] = {}
    net_fees: dict[str, Decimal] = defaultdict(lambda: ZERO)
    claims_of: dict[str, set[uuid.UUID]] = defaultdict(set)
    for r in rows:
        net_fees[r.provider_npi] += r.net_fee
        claims_of[r.provider_npi].add(r.claim_id)
        if r.counted:
            key = HistoryKey(r.plan_id, r.subscriber_number, r.benefit_year)
            before = usage.get(key, UsageDelta())
            usage[key] = UsageDelta(before.deductible + r.deductible, before.benefit + r.benefit)
    providers = {npi: ProviderDelta(net_fees[npi], len(claims_of[npi])) for npi in sorted(net_fees)}
    return ClaimEffects(usage, providers)


async def uncount_lines(conn: AsyncConnection, claim_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute(
        update(claim_line_results)
        .where(claim_line_results.c.claim_id.in_(list(claim_ids)), claim_line_results.c.counted)
        .values(counted=False)
    )


# --- reads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderTotal:
    provider_npi: str
    net_fee_total: Decimal
    claim_count: int


async def top_providers(conn: AsyncConnection, limit: int) -> list[ProviderTotal]:
    """The first `limit` entries of provider_totals_rank: an index scan, never a sort."""
    t = provider_totals.c
    rows = await conn.execute(
        select(t.provider_npi, t.net_fee_total, t.claim_count)
        .order_by(t.net_fee_total.desc(), t.provider_npi.asc())
        .limit(limit)
    )
    return [ProviderTotal(r.provider_npi, r.net_fee_total, r.claim_count) for r in rows]


async def provider_total(conn: AsyncConnection, npi: str) -> ProviderTotal | None:
    t = provider_totals.c
    row = (
        await conn.execute(
            select(t.provider_npi, t.net_fee_total, t.claim_count).where(t.provider_npi == npi)
        )
    ).first()
    return ProviderTotal(row.provider_npi, row.net_fee_total, row.claim_count) if row else None
