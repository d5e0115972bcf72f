"""What intake's use cases refuse, in the domain's words (api/errors.py maps them to HTTP)."""

from __future__ import annotations

from claimflow_shared.errors import BadCursorError, DomainError, RuleFailure

__all__ = [
    "BadCursorError",
    "ClaimNotAdjudicatedError",
    "ClaimNotFoundError",
    "IdempotencyKeyReusedError",
    "InvalidClaimError",
    "RuleFailure",
]


class InvalidClaimError(DomainError):
    """Rules failed; `failures` lists every one of them, per claim, line and field."""

    code = "validation-error"


class IdempotencyKeyReusedError(DomainError):
    """The Idempotency-Key was first used with another request."""

    code = "idempotency-key-reused"


class ClaimNotFoundError(DomainError):
    """No claim has this id (or the id is not one intake issues)."""

    code = "claim-not-found"


class ClaimNotAdjudicatedError(DomainError):
    """The claim has no adjudication yet, so no ClaimResponse or ExplanationOfBenefit."""

    code = "claim-not-adjudicated"
