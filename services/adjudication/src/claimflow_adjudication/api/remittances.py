"""/v1/remittances: the stored 835s of the remittance runs, and each one's X12 text."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from claimflow_adjudication.service_layer import remittances
from claimflow_shared.web.problems import problem_responses

from .deps import EngineDep, PayerReader, SettingsDep
from .schemas import RemittanceOut, RemittancePage

router = APIRouter(prefix="/v1/remittances", tags=["remittances"])

X12 = "application/edi-x12"


def _out(r: remittances.StoredRemittance) -> RemittanceOut:
    return RemittanceOut(
        id=r.remittance_id,
        payee_npi=r.payee_npi,
        period_from=r.period_from,
        period_to=r.period_to,
        control_number=r.control_number,
        claim_count=r.claim_count,
        total_charge=r.total_charge,
        total_paid=r.total_paid,
        net_fee=r.net_fee,
        balance_forward=r.balance_forward,
        created_at=r.created_at,
    )


@router.get(
    "",
    response_model=RemittancePage,
    summary="List remittances (835)",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_remittances(
    _principal: PayerReader,
    engine: EngineDep,
    payee_npi: Annotated[
        str | None, Query(pattern=r"^\d{10}$", description="only this payee's remittances")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> RemittancePage:
    """Newest first, with an opaque cursor for the next page. Runs are made by
    `claimflow-adjudication remittance --from DATE --to DATE`."""
    page = await remittances.list_remittances(
        engine, payee_npi=payee_npi, limit=limit, cursor=cursor
    )
    return RemittancePage(items=[_out(r) for r in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{remittance_id}",
    summary="One remittance's 835 (X12)",
    response_class=Response,
    responses={
        **problem_responses(401, 403, 404, 422),
        200: {"content": {X12: {"schema": {"type": "string"}}}, "description": "the 835"},
    },
)
async def get_remittance(
    principal: PayerReader, engine: EngineDep, settings: SettingsDep, remittance_id: uuid.UUID
) -> Response:
    """The interchange exactly as the run stored it (ISA..IEA, one 835, `~` + newline
    after each segment). Every read is audited: one `audit.access` (`remittance.read`) per
    claim the 835 carries, in the read's transaction."""
    _, x12 = await remittances.remittance_835(
        engine, settings, remittance_id, principal=principal.name
    )
    return Response(content=x12, media_type=X12)
