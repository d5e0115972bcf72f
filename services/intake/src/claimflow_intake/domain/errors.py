"""What intake's use cases refuse, in the domain's words (api/errors.py maps them to HTTP)."""

from __future__ import annotations

from collections.abc import Sequence

from claimflow_shared.errors import BadCursorError, DomainError, RuleFailure

__all__ = [
    "BadCursorError",
    "ClaimNotAdjudicatedError",
    "ClaimNotFoundError",
    "IdempotencyKeyReusedError",
    "InterchangeRejectedError",
    "InvalidClaimError",
    "RuleFailure",
]


class InvalidClaimError(DomainError):
    """Rules failed; `failures` lists every one of them, per claim, line and field."""

    code = "validation-error"


class InterchangeRejectedError(InvalidClaimError):
    """An X12 interchange's envelope (ISA/IEA, GS/GE, ST/SE) is broken: nothing of it is
    stored; `ack` is the 999 that rejects it, `sender` (ISA05:ISA06) and `control_number`
    (ISA13) what of the interchange's identity could be read."""

    code = "x12-interchange-rejected"

    def __init__(
        self,
        detail: str,
        *,
        failures: Sequence[RuleFailure],
        ack: str | None,
        sender: str | None = None,
        control_number: str | None = None,
    ) -> None:
        super().__init__(detail, failures=failures)
        self.ack = ack
        self.sender = sender
        self.control_number = control_number


class IdempotencyKeyReusedError(DomainError):
    """The Idempotency-Key was first used with another request."""

    code = "idempotency-key-reused"


class ClaimNotFoundError(DomainError):
    """No claim has this id (or the id is not one intake issues)."""

    code = "claim-not-found"


class ClaimNotAdjudicatedError(DomainError):
    """The claim has no adjudication yet, so no ClaimResponse or ExplanationOfBenefit."""

    code = "claim-not-adjudicated"
