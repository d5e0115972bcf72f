"""OIDC bearer tokens: JWT access tokens verified against the issuer's published keys.

A token is accepted when its signature verifies with a key of the issuer's JWKS (RS256 or
ES256 only: `none`, HMAC and anything else are refused before a key is looked at), its `iss`
is the configured issuer, its `aud` holds the configured audience, and `exp` (with a small
leeway for clock skew) has not passed. The principal is the token's `sub`, its organisation
and roles come from configurable claims (by default Ory Hydra's `client_id` and `scp`: one
client per organisation, its roles as scopes such as `claimflow:submitter`).

Keys rotate: a token whose `kid` is not in the cached key set makes the set be fetched again,
at most once per `oidc_jwks_refetch_seconds`, so a stream of made-up kids cannot turn into a
stream of requests to the issuer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import httpx
import jwt

from claimflow_shared.settings import ROLES, ServiceSettings

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
FETCH_TIMEOUT_SECONDS = 5.0


class InvalidToken(Exception):  # noqa: N818 - reads as what it is
    """The token is not one this service accepts; the reason stays in the service's log."""


def looks_like_jwt(credential: str) -> bool:
    """Three base64url segments: a JWS in compact form. API keys never have dots."""
    return credential.count(".") == 2


class OidcVerifier:
    def __init__(self, settings: ServiceSettings) -> None:
        if settings.oidc_issuer is None or settings.oidc_audience is None:
            raise ValueError("OIDC needs oidc_issuer and oidc_audience")
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self._jwks_url = settings.oidc_jwks_url
        self._organisation_claim = settings.oidc_organisation_claim
        self._roles_claim = settings.oidc_roles_claim
        self._role_prefix = settings.oidc_role_prefix
        self._leeway = settings.oidc_leeway_seconds
        self._refetch_seconds = settings.oidc_jwks_refetch_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS)

    async def close(self) -> None:
        await self._http.aclose()

    async def verify(self, token: str) -> tuple[str, str, frozenset[str]]:
        """(principal, organisation, roles) of a valid token; InvalidToken otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token ({type(exc).__name__})") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise InvalidToken(f"algorithm {algorithm!r} is not accepted")
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token refused ({type(exc).__name__})") from None
        organisation = claims.get(self._organisation_claim)
        if not isinstance(organisation, str) or not organisation:
            raise InvalidToken(f"no {self._organisation_claim} claim")
        return str(claims["sub"]), organisation, self._roles(claims.get(self._roles_claim))

    def _roles(self, value: object) -> frozenset[str]:
        granted: Iterable[object]
        if isinstance(value, str):
            granted = value.split()
        elif isinstance(value, list):
            granted = value
        else:
            granted = ()
        prefix = self._role_prefix
        roles = {
            item.removeprefix(prefix)
            for item in granted
            if isinstance(item, str) and item.startswith(prefix)
        }
        return frozenset(roles & ROLES)

    async def _key(self, kid: object) -> jwt.PyJWK:
        if not isinstance(kid, str):
            raise InvalidToken("no kid")
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            if kid not in self._keys and self._may_refetch():
                await self._fetch()
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown kid")
        return key

    def _may_refetch(self) -> bool:
        fetched = self._fetched_at
        return fetched is None or time.monotonic() - fetched >= self._refetch_seconds

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            url = self._jwks_url or await self._discover()
            response = await self._http.get(url)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_json(json.dumps(response.json())).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            # The keys in hand stay; the next unknown kid tries again after the interval.
            log.warning("fetching the issuer's keys failed (%s)", type(exc).__name__)
            return
        self._keys = {k.key_id: k for k in keys if k.key_id and k.algorithm_name in ALGORITHMS}
        log.info("issuer keys fetched: %d", len(self._keys))

    async def _discover(self) -> str:
        config_url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = await self._http.get(config_url)
        response.raise_for_status()
        jwks_uri = response.json().get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("the discovery document names no jwks_uri")  # noqa: TRY004
        self._jwks_url = jwks_uri
        return jwks_uri
