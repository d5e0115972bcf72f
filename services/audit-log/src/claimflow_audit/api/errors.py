"""The audit log's domain errors as RFC 9457 problems: the one table that says which HTTP
answer each refusal of a use case gets (the problem type is the error's code)."""

from __future__ import annotations

from fastapi import FastAPI

from claimflow_audit.domain.errors import (
    BadCursorError,
    BadRangeError,
    ClaimNotFoundError,
    VerificationBusyError,
)
from claimflow_shared.errors import DomainError
from claimflow_shared.web.problems import DomainProblem, install_domain_problems

# A verification of a long chain takes a while: come back later rather than at once.
VERIFY_RETRY_AFTER_SECONDS = 30

PROBLEMS: dict[type[DomainError], DomainProblem] = {
    ClaimNotFoundError: DomainProblem(404, "No audit records"),
    BadCursorError: DomainProblem(400, "Bad cursor"),
    BadRangeError: DomainProblem(422, "Bad range"),
    VerificationBusyError: DomainProblem(
        429,
        "A verification is already running",
        headers={"Retry-After": str(VERIFY_RETRY_AFTER_SECONDS)},
    ),
}


def install_error_handlers(app: FastAPI) -> None:
    install_domain_problems(app, PROBLEMS)
