"""What the audit log's use cases refuse, in the domain's words (api/errors.py maps them to
HTTP)."""

from __future__ import annotations

from claimflow_shared.errors import BadCursorError, DomainError

__all__ = ["BadCursorError", "BadRangeError", "ClaimNotFoundError", "VerificationBusyError"]


class ClaimNotFoundError(DomainError):
    """The chain holds no records of this claim."""

    code = "claim-not-found"


class BadRangeError(DomainError):
    """A range of sequence numbers that ends before it starts."""

    code = "bad-range"


class VerificationBusyError(DomainError):
    """Every verification slot is taken: a verification reads its whole range, so how many
    run at once is bounded."""

    code = "verify-busy"
