"""/v1/providers: the top providers by summed net fee, and one provider's totals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from claimflow_adjudication.adapters import repository
from claimflow_shared.web.problems import ProblemError, problem_responses

from .deps import EngineDep, Reader, TopProvidersBudget
from .schemas import ProviderTotal, TopProviders

router = APIRouter(prefix="/v1/providers", tags=["providers"])

NO_STORE = {"Cache-Control": "no-store"}


@router.get(
    "/top",
    response_model=TopProviders,
    summary="Top providers by summed net fee",
    dependencies=[TopProvidersBudget],
    responses={
        **problem_responses(401, 403, 422, 429),
        200: {
            "headers": {
                "RateLimit-Limit": {"schema": {"type": "integer"}},
                "RateLimit-Remaining": {"schema": {"type": "integer"}},
                "RateLimit-Reset": {"schema": {"type": "integer"}},
                "RateLimit-Policy": {"schema": {"type": "string"}},
            }
        },
    },
)
async def top_providers(
    _principal: Reader,
    engine: EngineDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=100, description="how many providers")] = 10,
) -> TopProviders:
    """The providers with the largest summed net fee over their standing claims (adjudicated
    or paid; a claim whose payment failed is taken back out), exact to the cent.

    Served from totals kept in the adjudication transaction, by an index scan that reads
    only `limit` entries. Rate-limited per API key (`RateLimit-*` headers; 429 with
    `Retry-After` when the budget is spent).
    """
    as_of = datetime.now(UTC)
    async with engine.connect() as conn:
        rows = await repository.top_providers(conn, limit)
    response.headers.update(NO_STORE)
    return TopProviders(
        providers=[
            ProviderTotal(
                provider_npi=r.provider_npi,
                net_fee_total=r.net_fee_total,
                claim_count=r.claim_count,
            )
            for r in rows
        ],
        as_of=as_of,
    )


@router.get(
    "/{provider_npi}",
    response_model=ProviderTotal,
    summary="One provider's totals",
    responses=problem_responses(401, 403, 404, 422),
)
async def provider_totals(
    _principal: Reader,
    engine: EngineDep,
    response: Response,
    provider_npi: Annotated[str, Path(pattern=r"^\d{10}$", description="10-digit NPI")],
) -> ProviderTotal:
    async with engine.connect() as conn:
        row = await repository.provider_total(conn, provider_npi)
    if row is None:
        raise ProblemError(404, "not-found", "Not found", "No standing claims for this provider.")
    response.headers.update(NO_STORE)
    return ProviderTotal(
        provider_npi=row.provider_npi, net_fee_total=row.net_fee_total, claim_count=row.claim_count
    )
