"""Provider totals: the top providers by summed net fee, and one provider's totals.

Both read the totals the adjudication transaction keeps (never a scan of the results).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.adapters import repository
from claimflow_adjudication.domain.errors import ProviderNotFoundError


@dataclass(frozen=True)
class ProviderTotal:
    provider_npi: str
    net_fee_total: Decimal
    claim_count: int


@dataclass(frozen=True)
class TopProviders:
    providers: list[ProviderTotal]
    as_of: datetime


async def top_providers(engine: AsyncEngine, limit: int) -> TopProviders:
    """The `limit` providers with the largest summed net fee over their standing claims."""
    as_of = datetime.now(UTC)
    async with engine.connect() as conn:
        rows = await repository.top_providers(conn, limit)
    return TopProviders(
        providers=[ProviderTotal(r.provider_npi, r.net_fee_total, r.claim_count) for r in rows],
        as_of=as_of,
    )


async def provider_totals(engine: AsyncEngine, provider_npi: str) -> ProviderTotal:
    async with engine.connect() as conn:
        row = await repository.provider_total(conn, provider_npi)
    if row is None:
        raise ProviderNotFoundError("No standing claims for this provider.")
    return ProviderTotal(row.provider_npi, row.net_fee_total, row.claim_count)
