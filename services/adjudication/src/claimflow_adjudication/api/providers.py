"""/v1/providers: the top providers by summed net fee, and one provider's totals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from claimflow_adjudication.service_layer import providers
from claimflow_shared.web.problems import problem_responses
from claimflow_shared.web.ratelimit import RATE_LIMIT_HEADERS

from .deps import EngineDep, PayerReader, TopProvidersBudget
from .schemas import ProviderTotal, TopProviders

router = APIRouter(prefix="/v1/providers", tags=["providers"])


def _out(total: providers.ProviderTotal) -> ProviderTotal:
    return ProviderTotal(
        provider_npi=total.provider_npi,
        net_fee_total=total.net_fee_total,
        claim_count=total.claim_count,
    )


@router.get(
    "/top",
    response_model=TopProviders,
    summary="Top providers by summed net fee",
    dependencies=[TopProvidersBudget],
    responses={
        **problem_responses(401, 403, 422, 429),
        200: {"headers": RATE_LIMIT_HEADERS},
    },
)
async def top_providers(
    _principal: PayerReader,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=100, description="how many providers")] = 10,
) -> TopProviders:
    """The providers with the largest summed net fee over their standing claims (adjudicated
    or paid; a claim whose payment failed is taken back out), exact to the cent.

    Served from totals kept in the adjudication transaction, by an index scan that reads
    only `limit` entries. Rate-limited per API key (`RateLimit-*` headers; 429 with
    `Retry-After` when the budget is spent).
    """
    top = await providers.top_providers(engine, limit)
    return TopProviders(providers=[_out(p) for p in top.providers], as_of=top.as_of)


@router.get(
    "/{provider_npi}",
    response_model=ProviderTotal,
    summary="One provider's totals",
    responses=problem_responses(401, 403, 404, 422),
)
async def provider_totals(
    _principal: PayerReader,
    engine: EngineDep,
    provider_npi: Annotated[str, Path(pattern=r"^\d{10}$", description="10-digit NPI")],
) -> ProviderTotal:
    total = await providers.provider_totals(engine, provider_npi)
    return _out(total)
