"""Response bodies of the audit-log API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from claimflow_audit.domain.chain import AuditRecord
from claimflow_audit.domain.walk import Reason
from claimflow_audit.service_layer.verification import Verification


class AuditEventOut(BaseModel):
    """One audit record: what happened, who, when, in which trace; a digest, never the data."""

    seq: int = Field(description="position in the chain, from 1, without gaps")
    event_id: str
    type: str = Field(examples=["io.claimflow.claim.submitted.v1"])
    source: str | None
    subject: str | None = Field(description="the claim id")
    actor: str | None = Field(description="the principal who acted, where the event names one")
    trace_id: str | None = Field(description="W3C trace id of the message that carried it")
    event_time: datetime
    recorded_at: datetime
    topic: str | None
    kafka_partition: int | None
    kafka_offset: int | None
    payload_digest: str | None = Field(description="SHA-256 of the RFC 8785 form of the data")
    detail: dict[str, Any] | None = Field(description="checkpoints only: chain length, head")
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, record: AuditRecord) -> AuditEventOut:
        return cls.model_validate(record, from_attributes=True)


class ClaimTimeline(BaseModel):
    claim_id: str
    events: list[AuditEventOut] = Field(description="in event time order, then chain order")
    next_cursor: str | None = Field(
        description="pass as cursor for the next page; null on the last page"
    )


class VerifyReport(BaseModel):
    valid: bool
    checked: int = Field(description="records found intact before the first invalid one")
    first_invalid: int | None = Field(description="seq of the first record that does not hold")
    reason: Reason | None
    detail: str | None = None
    from_seq: int
    to_seq: int
    last_hash: str | None = Field(description="hash of the last intact record: an anchor")
    duration_seconds: float

    @classmethod
    def of(cls, result: Verification) -> VerifyReport:
        finding = result.finding
        return cls(
            valid=result.valid,
            checked=result.checked,
            first_invalid=finding.seq if finding else None,
            reason=finding.reason if finding else None,
            detail=finding.explain() if finding else None,
            from_seq=result.from_seq,
            to_seq=result.to_seq,
            last_hash=result.last_hash,
            duration_seconds=round(result.seconds, 3),
        )


class ChainHeadOut(BaseModel):
    chain_length: int
    head_hash: str
    recorded_at: datetime | None
