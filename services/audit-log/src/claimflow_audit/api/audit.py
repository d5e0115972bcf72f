"""/v1/audit: a claim's timeline, the chain's verification and its head (auditor role)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from claimflow_audit.service_layer import timeline
from claimflow_audit.service_layer.verification import verify_on_request
from claimflow_shared.web.problems import problem_responses

from .deps import Auditor, EngineDep, SettingsDep, VerifySlotsDep
from .schemas import AuditEventOut, ChainHeadOut, ClaimTimeline, VerifyReport

router = APIRouter(prefix="/v1/audit", tags=["audit"])

# Sequence numbers are PostgreSQL bigints: a larger bound would fail in the database (a 500).
MAX_SEQ = 2**63 - 1


@router.get(
    "/claims/{claim_id}",
    response_model=ClaimTimeline,
    summary="A claim's audit timeline",
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def claim_timeline(
    claim_id: str,
    principal: Auditor,
    engine: EngineDep,
    settings: SettingsDep,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, description="records per page (500)")] = None,
) -> ClaimTimeline:
    """Every audit record of the claim in the order things happened (event time, then chain
    order): submitted, read, adjudicated, paid, reversed... each with its actor and trace id,
    and its place in the chain (seq, hash). Each page read is itself recorded in the chain
    (an `audit.access` record, action `audit.timeline`, naming the principal)."""
    found = await timeline.claim_timeline(
        engine,
        claim_id,
        principal=principal.name,
        cursor=cursor,
        limit=limit,
        max_limit=settings.timeline_max_limit,
    )
    return ClaimTimeline(
        claim_id=found.claim_id,
        events=[AuditEventOut.of(r) for r in found.records],
        next_cursor=found.next_cursor,
    )


@router.get(
    "/verify",
    response_model=VerifyReport,
    summary="Re-walk the hash chain",
    responses=problem_responses(401, 403, 422, 429),
)
async def verify(
    principal: Auditor,
    engine: EngineDep,
    settings: SettingsDep,
    slots: VerifySlotsDep,
    from_seq: Annotated[int, Query(ge=1, le=MAX_SEQ, description="first record to check")] = 1,
    to_seq: Annotated[
        int | None,
        Query(ge=1, le=MAX_SEQ, description="last record to check (the current head)"),
    ] = None,
) -> VerifyReport:
    """Recompute every record's hash from its contents and its link to the one before, and
    report the first record that does not hold: a gap (deleted), a hash mismatch (changed)
    or a broken link (changed and re-hashed). `valid` with `checked` records otherwise."""
    del principal  # authorisation only
    result = await verify_on_request(
        engine,
        slots,
        from_seq=from_seq,
        to_seq=to_seq,
        chunk_size=settings.verify_chunk_size,
    )
    return VerifyReport.of(result)


@router.get(
    "/head",
    response_model=ChainHeadOut,
    summary="The chain's current head",
    responses=problem_responses(401, 403),
)
async def head(principal: Auditor, engine: EngineDep) -> ChainHeadOut:
    """Length and last hash of the chain: an anchor to record outside the system."""
    del principal  # authorisation only
    current = await timeline.chain_head(engine)
    return ChainHeadOut(
        chain_length=current.seq, head_hash=current.hash, recorded_at=current.recorded_at
    )
