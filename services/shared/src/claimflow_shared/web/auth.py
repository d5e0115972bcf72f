"""Bearer API keys: configured as SHA-256 hashes, each with a principal and roles."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter

from claimflow_shared.settings import PAYER_ROLES, ApiKey, parse_api_keys

from .oidc import InvalidToken, OidcVerifier, looks_like_jwt
from .problems import ProblemError
from .ratelimit import RateLimiter, too_many_requests


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]
    organisation: str

    @property
    def sees_every_organisation(self) -> bool:
        """A payer role reads across organisations; everyone else reads their own."""
        return not self.roles.isdisjoint(PAYER_ROLES)


log = logging.getLogger(__name__)

KEY_RELOADS = Counter(
    "claimflow_api_key_reloads_total",
    "Changes of the API key file: loaded, or failed (the keys in force stayed)",
    ["service", "result"],
)


class ApiKeyAuthenticator:
    """Bearer keys by their SHA-256. With a key file, the keys are the file's, re-read when it
    changes (looked at no more than once per `recheck_seconds`): a Secret mounted as a volume
    is swapped in place by the kubelet, so a key added or revoked there counts within a
    minute or so, without a restart. A file that no longer parses keeps the keys in force."""

    def __init__(
        self,
        keys: Iterable[ApiKey],
        *,
        key_file: Path | None = None,
        service: str = "claimflow",
        recheck_seconds: float = 1.0,
    ) -> None:
        self._keys = _by_digest(keys)
        self._file = key_file
        self._service = service
        self._recheck_seconds = recheck_seconds
        self._next_check = 0.0
        self._signature: tuple[int, int, int] | None = None
        if key_file is not None:
            # At start a missing or broken file is a configuration error: fail loudly.
            self._signature = _signature(key_file)
            self._keys = _by_digest(parse_api_keys(key_file.read_text()))

    def authenticate(self, presented: str) -> Principal | None:
        self._reload_if_changed()
        digest = hashlib.sha256(presented.encode()).hexdigest()
        for known, key in self._keys.items():
            # Constant-time comparison so timing does not reveal how much of a hash matched.
            if hmac.compare_digest(known, digest):
                return Principal(key.principal, key.roles, key.organisation or key.principal)
        return None

    def _reload_if_changed(self) -> None:
        if self._file is None:
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._recheck_seconds
        try:
            signature = _signature(self._file)
        except OSError as exc:
            self._failed(exc)
            return
        if signature == self._signature:
            return
        # Tried once per change: a broken file is reported once, not on every check.
        self._signature = signature
        try:
            keys = parse_api_keys(self._file.read_text())
        except (OSError, ValueError) as exc:
            self._failed(exc)
            return
        self._keys = _by_digest(keys)
        KEY_RELOADS.labels(self._service, "loaded").inc()
        log.info("API key file reloaded: %d keys", len(keys))

    def _failed(self, exc: Exception) -> None:
        KEY_RELOADS.labels(self._service, "failed").inc()
        # The type only, never a traceback or message: they would quote hashes and principals.
        log.error("API key file unusable (%s); the keys in force stay", type(exc).__name__)


def _signature(path: Path) -> tuple[int, int, int]:
    stat = path.stat()  # follows the kubelet's ..data symlink to the current file
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _by_digest(keys: Iterable[ApiKey]) -> dict[str, ApiKey]:
    return {k.sha256: k for k in keys}


AUTH_REFUSALS = Counter(
    "claimflow_auth_refusals_total",
    "Requests refused before they reached a route: 401 (missing or unknown credential), "
    "403 (a role the principal lacks) and 429 (a client past its failed-authentication "
    "budget), by reason",
    ["service", "reason"],
)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _refused(request: Request, status: int, reason: str, principal: str | None = None) -> None:
    """Every refusal is visible: a counter, and a log line naming the route template, the
    client address and, for a 403, the principal; never the credential presented."""
    service = request.app.state.settings.service_name
    AUTH_REFUSALS.labels(service, reason).inc()
    route = getattr(request.scope.get("route"), "path", "unmatched")
    client = _client(request)
    log.warning(
        "request refused: %s %s",
        status,
        reason,
        extra={"route": route, "client": client, "principal": principal},
    )


_bearer = HTTPBearer(
    auto_error=False, description="An API key issued by the operator, or an OIDC access token"
)

_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="claimflow"'}


async def _unauthenticated(request: Request, reason: str, detail: str) -> ProblemError:
    """The 401, counted against the client's failure budget."""
    _refused(request, 401, reason)
    failures: RateLimiter = request.app.state.auth_failures
    await failures.hit(_client(request))
    return ProblemError(
        401, "unauthorized", "Authentication required", detail, headers=_UNAUTHORIZED
    )


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # A client that keeps failing is guessing: past its budget it is refused before its
    # credential is even looked at, so a right guess teaches it nothing until the window ends.
    failures: RateLimiter = request.app.state.auth_failures
    spent = await failures.spent(_client(request))
    if spent is not None:
        _refused(request, 429, "too-many-failures")
        raise too_many_requests(spent, "failed authentications")
    if credentials is None:
        raise await _unauthenticated(
            request, "missing-credential", "Send Authorization: Bearer <api key>."
        )
    verifier: OidcVerifier | None = request.app.state.oidc
    if verifier is not None and looks_like_jwt(credentials.credentials):
        try:
            name, organisation, roles = await verifier.verify(credentials.credentials)
        except InvalidToken as exc:
            # Why, for the service's log only; the caller learns no more than for a bad key.
            log.info("bearer token refused: %s", exc)
            raise await _unauthenticated(request, "invalid-token", "Invalid token.") from None
        principal = Principal(name, roles, organisation)
    else:
        authenticator: ApiKeyAuthenticator = request.app.state.authenticator
        found = authenticator.authenticate(credentials.credentials)
        if found is None:
            raise await _unauthenticated(request, "unknown-credential", "Unknown API key.")
        principal = found
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
