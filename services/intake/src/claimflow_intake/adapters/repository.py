"""SQL for claims: inserting accepted claims, reading them back, moving their status."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, and_, exists, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow_intake.domain import Claim

from .tables import claim_lines, claims, idempotency_keys, outbox

QUEUED = "queued"
# Later statuses outrank earlier ones; a status update never moves a claim backwards.
STATUS_RANK = {
    "queued": 0,
    "adjudicated": 1,
    "rejected": 1,
    "paid": 2,
    "payment_failed": 2,
    "reversed": 3,
}


@dataclass(frozen=True)
class NewClaim:
    id: uuid.UUID
    claim: Claim


def insert_claims(
    new_claims: Sequence[NewClaim],
    principal: str,
    created_at: datetime,
    outbox_rows: list[dict[str, Any]],
) -> Insert:
    """One statement that inserts the claims, their lines and their outbox rows.

    One statement is one round trip and, run on its own, its own transaction: the hot path
    of intake needs no BEGIN/COMMIT exchange. Data-modifying CTEs all run, referenced or not.
    """
    claim_rows = insert(claims).values(
        [
            {
                "id": c.id,
                "external_id": c.claim.external_id,
                "status": QUEUED,
                "status_rank": STATUS_RANK[QUEUED],
                "submitted_by": principal,
                "created_at": created_at,
                "updated_at": created_at,
                "line_count": len(c.claim.lines),
                "net_fee_total": c.claim.total_net_fee,
            }
            for c in new_claims
        ]
    )
    event_rows = insert(outbox).values(outbox_rows)
    line_rows = insert(claim_lines).values(
        [
            {
                "claim_id": c.id,
                "line_no": number,
                "service_date": line.service_date,
                "submitted_procedure": line.submitted_procedure,
                "quadrant": line.quadrant,
                "plan_group": line.plan_group,
                "subscriber_number": line.subscriber_number,
                "provider_npi": line.provider_npi,
                "provider_fees": line.provider_fees,
                "allowed_fees": line.allowed_fees,
                "member_coinsurance": line.member_coinsurance,
                "member_copay": line.member_copay,
                "net_fee": line.net_fee,
            }
            for c in new_claims
            for number, line in enumerate(c.claim.lines, start=1)
        ]
    )
    return line_rows.add_cte(claim_rows.cte("new_claims"), event_rows.cte("new_events"))


async def fetch_claim(conn: AsyncConnection, claim_id: uuid.UUID) -> tuple[Any, list[Any]] | None:
    claim = (await conn.execute(select(claims).where(claims.c.id == claim_id))).first()
    if claim is None:
        return None
    lines = (
        await conn.execute(
            select(claim_lines)
            .where(claim_lines.c.claim_id == claim_id)
            .order_by(claim_lines.c.line_no)
        )
    ).all()
    return claim, list(lines)


class BadCursorError(ValueError):
    pass


def encode_cursor(created_at: datetime, claim_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(claim_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, claim_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(created), uuid.UUID(claim_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursorError("cursor is not one this API issued") from exc


async def list_claims(
    conn: AsyncConnection,
    *,
    status: str | None,
    provider_npi: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    """Newest first, keyset-paginated on (created_at, id) so deep pages stay index scans."""
    query = select(claims).order_by(claims.c.created_at.desc(), claims.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(claims.c.status == status)
    if provider_npi is not None:
        query = query.where(
            exists().where(
                and_(
                    claim_lines.c.claim_id == claims.c.id,
                    claim_lines.c.provider_npi == provider_npi,
                )
            )
        )
    if after is not None:
        created, claim_id = after
        query = query.where(
            or_(
                claims.c.created_at < created,
                and_(claims.c.created_at == created, claims.c.id < claim_id),
            )
        )
    return list((await conn.execute(query)).all())


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status: int | None
    body: Any
    location: str | None


async def reserve_idempotency_key(
    conn: AsyncConnection, principal: str, key: str, request_hash: str
) -> StoredResponse | None:
    """Claim the key for this request, or return what an earlier request stored under it.

    A concurrent request with the same key blocks on the primary key until the first one
    commits, then reads its stored response: exactly one of them creates claims.
    """
    inserted = await conn.execute(
        pg_insert(idempotency_keys)
        .values(principal=principal, key=key, request_hash=request_hash)
        .on_conflict_do_nothing()
        .returning(idempotency_keys.c.key)
    )
    if inserted.first() is not None:
        return None
    row = (
        await conn.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.principal == principal, idempotency_keys.c.key == key
            )
        )
    ).one()
    return StoredResponse(row.request_hash, row.response_status, row.response_body, row.location)


async def store_idempotent_response(
    conn: AsyncConnection,
    principal: str,
    key: str,
    status: int,
    body: Any,
    location: str | None,
) -> None:
    await conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
        .values(response_status=status, response_body=body, location=location)
    )


async def advance_status(conn: AsyncConnection, claim_id: uuid.UUID, status: str) -> bool:
    """Move a claim forward to status (never back); False when the claim is unknown."""
    result = await conn.execute(
        update(claims)
        .where(claims.c.id == claim_id, claims.c.status_rank < STATUS_RANK[status])
        .values(status=status, status_rank=STATUS_RANK[status], updated_at=func.now())
        .returning(claims.c.id)
    )
    if result.first() is not None:
        return True
    return await conn.scalar(select(claims.c.id).where(claims.c.id == claim_id)) is not None


async def record_adjudication(
    conn: AsyncConnection,
    claim_id: uuid.UUID,
    adjudication: dict[str, Any],
    line_results: dict[int, dict[str, Any]],
) -> None:
    await conn.execute(
        update(claims).where(claims.c.id == claim_id).values(adjudication=adjudication)
    )
    for line_no, result in line_results.items():
        await conn.execute(
            update(claim_lines)
            .where(claim_lines.c.claim_id == claim_id, claim_lines.c.line_no == line_no)
            .values(adjudication=result)
        )
