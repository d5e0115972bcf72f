"""FastAPI dependencies of the audit-log API, as Annotated aliases."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.settings import AuditSettings
from claimflow_shared.settings import ROLE_AUDITOR
from claimflow_shared.web.auth import Principal, require_role
from claimflow_shared.web.state import from_state

SettingsDep = Annotated[AuditSettings, from_state("settings")]
EngineDep = Annotated[AsyncEngine, from_state("engine")]
VerifySlotsDep = Annotated[asyncio.Semaphore, from_state("verify_slots")]
Auditor = Annotated[Principal, Depends(require_role(ROLE_AUDITOR))]
