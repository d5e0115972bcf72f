"""FastAPI dependencies of the adjudication API, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.adapters.plans import PlanRegistry
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_shared.settings import ROLE_PAYER_ADMIN, ROLE_PAYER_READER
from claimflow_shared.web.auth import Principal, require_role
from claimflow_shared.web.ratelimit import RateLimiter, charge
from claimflow_shared.web.state import from_state

SettingsDep = Annotated[AdjudicationSettings, from_state("settings")]
EngineDep = Annotated[AsyncEngine, from_state("read_engine")]
PlansDep = Annotated[PlanRegistry, from_state("plans")]
# Provider totals and plans span every organisation's claims: the payer's staff only.
PayerReader = Annotated[Principal, Depends(require_role(ROLE_PAYER_READER, ROLE_PAYER_ADMIN))]


async def _top_providers_budget(
    request: Request, response: Response, principal: PayerReader
) -> None:
    """One request of the principal's budget for the top-providers read; 429 when spent."""
    limiter: RateLimiter = request.app.state.top_providers_limiter
    await charge(limiter, principal.name, response)


TopProvidersBudget = Depends(_top_providers_budget)
