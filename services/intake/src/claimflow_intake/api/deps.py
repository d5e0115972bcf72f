"""FastAPI dependencies of the intake API, as Annotated aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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


def _charged(limiter: str) -> Callable[..., Awaitable[Principal]]:
    """A submitter, charged one request of its budget in `app.state.<limiter>` (429 when
    spent)."""

    async def dependency(
        request: Request,
        response: Response,
        principal: Annotated[Principal, Depends(_submitter)],
    ) -> Principal:
        await charge(getattr(request.app.state, limiter), principal.name, response)
        return principal

    return dependency


Submitter = Annotated[Principal, Depends(_charged("submission_limiter"))]
Importer = Annotated[Principal, Depends(_charged("import_limiter"))]
# Readers read their organisation's claims; payer roles read every organisation's.
Reader = Annotated[
    Principal, Depends(require_role(ROLE_READER, ROLE_PAYER_READER, ROLE_PAYER_ADMIN))
]


def readable_organisation(principal: Principal) -> str | None:
    """Whose claims the caller may read: its own organisation's, or all (None) for a payer."""
    return None if principal.sees_every_organisation else principal.organisation
