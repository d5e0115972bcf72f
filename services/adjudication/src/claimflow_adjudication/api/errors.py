"""adjudication's domain errors as RFC 9457 problems: the one table that says which HTTP
answer each refusal of a use case gets (the problem type is the error's code)."""

from __future__ import annotations

from fastapi import FastAPI

from claimflow_adjudication.domain.errors import (
    BadPeriodError,
    PlanNotFoundError,
    ProviderNotFoundError,
    RemittanceNotFoundError,
)
from claimflow_shared.errors import BadCursorError, DomainError
from claimflow_shared.web.problems import DomainProblem, install_domain_problems

PROBLEMS: dict[type[DomainError], DomainProblem] = {
    ProviderNotFoundError: DomainProblem(404, "Not found"),
    PlanNotFoundError: DomainProblem(404, "Not found"),
    RemittanceNotFoundError: DomainProblem(404, "Not found"),
    BadCursorError: DomainProblem(400, "Bad cursor"),
    BadPeriodError: DomainProblem(422, "Bad period"),
}


def install_error_handlers(app: FastAPI) -> None:
    install_domain_problems(app, PROBLEMS)
