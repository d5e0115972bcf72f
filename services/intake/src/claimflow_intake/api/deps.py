"""FastAPI dependencies of the intake API, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_intake.settings import IntakeSettings
from claimflow_shared.settings import (
    ROLE_PAYER_ADMIN,
    ROLE_PAYER_READER,
    ROLE_READER,
    ROLE_SUBMITTER,
)
from claimflow_shared.web.auth import Principal, require_role
from claimflow_shared.web.state import from_state

SettingsDep = Annotated[IntakeSettings, from_state("settings")]
EngineDep = Annotated[AsyncEngine, from_state("engine")]
Submitter = Annotated[Principal, Depends(require_role(ROLE_SUBMITTER))]
# Readers read their organisation's claims; payer roles read every organisation's.
Reader = Annotated[
    Principal, Depends(require_role(ROLE_READER, ROLE_PAYER_READER, ROLE_PAYER_ADMIN))
]
