"""Bearer API keys: configured as SHA-256 hashes, each with a principal and roles."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from claimflow_shared.settings import PAYER_ROLES, ApiKey

from .problems import ProblemError


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]
    organisation: str

    @property
    def sees_every_organisation(self) -> bool:
        """A payer role reads across organisations; everyone else reads their own."""
        return not self.roles.isdisjoint(PAYER_ROLES)


class ApiKeyAuthenticator:
    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = {k.sha256: k for k in keys}

    def authenticate(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).hexdigest()
        for known, key in self._keys.items():
            # Constant-time comparison so timing does not reveal how much of a hash matched.
            if hmac.compare_digest(known, digest):
                return Principal(key.principal, key.roles, key.organisation or key.principal)
        return None


_bearer = HTTPBearer(auto_error=False, description="API key issued by the operator")

_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="claimflow"'}


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise ProblemError(
            401,
            "unauthorized",
            "Authentication required",
            "Send Authorization: Bearer <api key>.",
            headers=_UNAUTHORIZED,
        )
    authenticator: ApiKeyAuthenticator = request.app.state.authenticator
    principal = authenticator.authenticate(credentials.credentials)
    if principal is None:
        raise ProblemError(
            401,
            "unauthorized",
            "Authentication required",
            "Unknown API key.",
            headers=_UNAUTHORIZED,
        )
    request.state.principal = principal.name
    return principal


def require_role(role: str, *alternatives: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting principals with `role` or any of `alternatives`; 403 otherwise."""
    accepted = frozenset({role, *alternatives})
    needed = (
        f"the '{role}' role"
        if not alternatives
        else "one of the roles " + ", ".join(f"'{r}'" for r in sorted(accepted))
    )

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if principal.roles.isdisjoint(accepted):
            raise ProblemError(403, "forbidden", "Not allowed", f"This operation needs {needed}.")
        return principal

    return dependency
