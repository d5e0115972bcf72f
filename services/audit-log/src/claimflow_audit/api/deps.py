"""FastAPI dependencies of the audit-log API, as Annotated aliases."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.settings import AuditSettings
from claimflow_shared.settings import ROLE_AUDITOR
from claimflow_shared.web.auth import Principal, require_role


def _settings(request: Request) -> AuditSettings:
    settings: AuditSettings = request.app.state.settings
    return settings


def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def _verify_slots(request: Request) -> asyncio.Semaphore:
    slots: asyncio.Semaphore = request.app.state.verify_slots
    return slots


SettingsDep = Annotated[AuditSettings, Depends(_settings)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
VerifySlotsDep = Annotated[asyncio.Semaphore, Depends(_verify_slots)]
Auditor = Annotated[Principal, Depends(require_role(ROLE_AUDITOR))]
