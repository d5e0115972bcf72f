"""What adjudication's use cases refuse, in the domain's words (api/errors.py maps the
API's to HTTP; the worker retries or dead-letters the rest)."""

from __future__ import annotations

from claimflow_shared.errors import DomainError

__all__ = [
    "BadPeriodError",
    "DomainError",
    "NoPlanError",
    "PlanNotFoundError",
    "ProviderNotFoundError",
    "RemittanceNotFoundError",
]


class NoPlanError(DomainError):
    """No plan matches the claim and there is no default plan: retried until one is
    published."""

    code = "no-plan"


class ProviderNotFoundError(DomainError):
    """The provider has no standing claims."""

    code = "not-found"


class PlanNotFoundError(DomainError):
    """No plan in force has this id."""

    code = "not-found"


class RemittanceNotFoundError(DomainError):
    """No stored remittance has this id."""

    code = "not-found"


class BadPeriodError(DomainError):
    """A remittance period that ends before it starts."""

    code = "bad-period"
