"""FastAPI dependencies of the intake API, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_intake.settings import IntakeSettings
from claimflow_shared.settings import (
    ROLE_PAYER_ADMIN,
    ROLE_PAYER_READER,
    ROLE_READER,
    ROLE_SUBMITTER,
)
from claimflow_shared.web.auth import Principal, require_role
from claimflow_shared.web.ratelimit import charge
from claimflow_shared.web.state import from_state

SettingsDep = Annotated[IntakeSettings, from_state("settings")]
EngineDep = Annotated[AsyncEngine, from_state("engine")]
_submitter = require_role(ROLE_SUBMITTER)


async def _submission_budget(
    request: Request, response: Response, principal: Annotated[Principal, Depends(_submitter)]
) -> Principal:
    """A submitter, charged one submission of its budget (429 when spent)."""
    await charge(request.app.state.submission_limiter, principal.name, response)
    return principal


async def _import_budget(
    request: Request, response: Response, principal: Annotated[Principal, Depends(_submitter)]
) -> Principal:
    """A submitter, charged one import of its budget (429 when spent)."""
    await charge(request.app.state.import_limiter, principal.name, response)
    return principal


Submitter = Annotated[Principal, Depends(_submission_budget)]
Importer = Annotated[Principal, Depends(_import_budget)]
# Readers read their organisation's claims; payer roles read every organisation's.
Reader = Annotated[
    Principal, Depends(require_role(ROLE_READER, ROLE_PAYER_READER, ROLE_PAYER_ADMIN))
]
