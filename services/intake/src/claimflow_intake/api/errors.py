"""intake's domain errors as RFC 9457 problems: the one table that says which HTTP answer
each refusal of a use case gets (the problem type is the error's code)."""

from __future__ import annotations

from fastapi import FastAPI

from claimflow_intake.domain.errors import (
    BadCursorError,
    ClaimNotAdjudicatedError,
    ClaimNotFoundError,
    IdempotencyKeyReusedError,
    InterchangeRejectedError,
    InvalidClaimError,
)
from claimflow_shared.errors import DomainError
from claimflow_shared.web.problems import DomainProblem, install_domain_problems

PROBLEMS: dict[type[DomainError], DomainProblem] = {
    InterchangeRejectedError: DomainProblem(422, "Interchange rejected"),
    InvalidClaimError: DomainProblem(422, "Claim is not valid"),
    IdempotencyKeyReusedError: DomainProblem(
        422, "Idempotency-Key reused with a different request"
    ),
    ClaimNotFoundError: DomainProblem(404, "Claim not found"),
    BadCursorError: DomainProblem(400, "Bad cursor"),
    ClaimNotAdjudicatedError: DomainProblem(409, "Claim not adjudicated yet"),
}


def install_error_handlers(app: FastAPI) -> None:
    install_domain_problems(app, PROBLEMS)
