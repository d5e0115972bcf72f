"""FastAPI dependencies of the intake API, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_intake.settings import IntakeSettings
from claimflow_shared.settings import ROLE_READER, ROLE_SUBMITTER
from claimflow_shared.web.auth import Principal, require_role


def _settings(request: Request) -> IntakeSettings:
    settings: IntakeSettings = request.app.state.settings
    return settings


def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


SettingsDep = Annotated[IntakeSettings, Depends(_settings)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
Submitter = Annotated[Principal, Depends(require_role(ROLE_SUBMITTER))]
Reader = Annotated[Principal, Depends(require_role(ROLE_READER))]
