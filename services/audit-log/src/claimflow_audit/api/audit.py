"""/v1/audit: a claim's timeline, the chain's verification and its head (auditor role)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from claimflow_audit.adapters import store
from claimflow_audit.verification import verify_chain
from claimflow_shared.web.problems import ProblemError, problem_responses

from .cursors import BadCursorError, decode_cursor, encode_cursor
from .deps import Auditor, EngineDep, SettingsDep, VerifySlotsDep
from .schemas import AuditEventOut, ChainHeadOut, ClaimTimeline, VerifyReport

router = APIRouter(prefix="/v1/audit", tags=["audit"])

DEFAULT_PAGE = 500
# Sequence numbers are PostgreSQL bigints: a larger bound would fail in the database (a 500).
MAX_SEQ = 2**63 - 1
VERIFY_RETRY_AFTER_SECONDS = 30


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
    and its place in the chain (seq, hash)."""
    del principal  # authorisation only
    not_found = ProblemError(
        404, "claim-not-found", "No audit records", "The audit log holds no records of this claim."
    )
    try:
        subject = str(uuid.UUID(claim_id))
    except ValueError:
        raise not_found from None
    try:
        after = decode_cursor(cursor) if cursor else None
    except BadCursorError as exc:
        raise ProblemError(400, "bad-cursor", "Bad cursor", str(exc)) from None
    page = min(limit or DEFAULT_PAGE, settings.timeline_max_limit)
    async with engine.connect() as conn:
        records = await store.timeline(conn, subject, after=after, limit=page + 1)
    if not records and after is None:
        raise not_found
    more = len(records) > page
    records = records[:page]
    return ClaimTimeline(
        claim_id=subject,
        events=[AuditEventOut.of(r) for r in records],
        next_cursor=encode_cursor(records[-1]) if more else None,
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
    if to_seq is not None and to_seq < from_seq:
        raise ProblemError(
            422, "bad-range", "Bad range", "to_seq must not be smaller than from_seq."
        )
    if slots.locked():
        raise ProblemError(
            429,
            "verify-busy",
            "A verification is already running",
            "Verification reads the whole range; try again when the running one has finished.",
            headers={"Retry-After": str(VERIFY_RETRY_AFTER_SECONDS)},
        )
    async with slots:
        result = await verify_chain(
            engine, from_seq=from_seq, to_seq=to_seq, chunk_size=settings.verify_chunk_size
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
    async with engine.connect() as conn:
        current = await store.chain_head(conn)
    return ChainHeadOut(
        chain_length=current.seq, head_hash=current.hash, recorded_at=current.recorded_at
    )
