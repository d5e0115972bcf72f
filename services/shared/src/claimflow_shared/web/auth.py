"""Bearer API keys: configured as SHA-256 hashes, each with a principal and roles."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter

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


log = logging.getLogger(__name__)

AUTH_REFUSALS = Counter(
    "claimflow_auth_refusals_total",
    "Requests refused before they reached a route: 401 (missing or unknown credential) and "
    "403 (a role the principal lacks), by reason",
    ["service", "reason"],
)


def _refused(request: Request, status: int, reason: str, principal: str | None = None) -> None:
    """Every refusal is visible: a counter, and a log line naming the route template, the
    client address and, for a 403, the principal; never the credential presented."""
    service = request.app.state.settings.service_name
    AUTH_REFUSALS.labels(service, reason).inc()
    route = getattr(request.scope.get("route"), "path", "unmatched")
    client = request.client.host if request.client else None
    log.warning(
        "request refused: %s %s",
        status,
        reason,
        extra={"route": route, "client": client, "principal": principal},
    )


_bearer = HTTPBearer(auto_error=False, description="API key issued by the operator")

_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="claimflow"'}


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        _refused(request, 401, "missing-credential")
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
        _refused(request, 401, "unknown-credential")
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
        request: Request,
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if principal.roles.isdisjoint(accepted):
            _refused(request, 403, "missing-role", principal.name)
            raise ProblemError(403, "forbidden", "Not allowed", f"This operation needs {needed}.")
        return principal

    return dependency
