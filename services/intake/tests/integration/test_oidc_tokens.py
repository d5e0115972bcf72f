"""OIDC bearer tokens through the real HTTP API, issued by a real OAuth2/OIDC server (Ory
Hydra, client_credentials, one client per organisation): good tokens act for their
organisation with the roles of their scopes; expired, wrong-audience, wrong-issuer, tampered
and unsigned tokens are 401; a rotated signing key is picked up; API keys keep working."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from claimflow_devstack.testing import bearer, claim_body, in_process
from claimflow_intake.main import create_app
from claimflow_intake.settings import IntakeSettings

from .conftest import SUBMITTER_KEY

AUDIENCE = "claimflow"


@pytest.fixture
def oidc_settings(settings: IntakeSettings, oidc_server: Any) -> IntakeSettings:
    return settings.model_copy(
        update={
            "oidc_issuer": oidc_server.issuer,
            "oidc_audience": AUDIENCE,
            "oidc_leeway_seconds": 0,
            "oidc_jwks_refetch_seconds": 0.5,
        }
    )


@pytest.fixture
async def client(oidc_settings: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(create_app(oidc_settings), "intake") as c:
        yield c


def _organisation(oidc_server: Any, roles: list[str], **extra: Any) -> Any:
    name = f"org-{uuid.uuid4().hex[:8]}"
    return oidc_server.create_client(name, roles, [AUDIENCE, "some-other-api"], **extra)


async def _token(oidc_server: Any, org: Any, audience: str = AUDIENCE) -> str:
    return await asyncio.to_thread(oidc_server.token, org, audience)


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "Invalid token."


async def test_a_token_acts_for_its_organisation_with_its_scopes_as_roles(
    client: httpx.AsyncClient, oidc_server: Any
) -> None:
    a = _organisation(oidc_server, ["submitter", "reader"])
    b = _organisation(oidc_server, ["submitter", "reader"])
    readonly = _organisation(oidc_server, ["reader"])
    token_a = await _token(oidc_server, a)
    assert jwt.get_unverified_header(token_a)["alg"] == "RS256"

    accepted = await client.post("/v1/claims", json=claim_body(), headers=bearer(token_a))
    assert accepted.status_code == 202, accepted.text
    claim = (await client.get(accepted.headers["location"], headers=bearer(token_a))).json()
    assert claim["organisation"] == a.client_id

    # Another organisation's token neither reads nor lists it.
    token_b = await _token(oidc_server, b)
    other = await client.get(accepted.headers["location"], headers=bearer(token_b))
    assert other.status_code == 404
    listed = (await client.get("/v1/claims", headers=bearer(token_b))).json()["items"]
    assert claim["id"] not in {item["id"] for item in listed}

    # Roles are the token's scopes: a reader may not submit.
    token_r = await _token(oidc_server, readonly)
    refused = await client.post("/v1/claims", json=claim_body(), headers=bearer(token_r))
    assert refused.status_code == 403

    # API keys work beside tokens.
    keyed = await client.post("/v1/claims", json=claim_body(), headers=bearer(SUBMITTER_KEY))
    assert keyed.status_code == 202


async def test_a_token_for_another_audience_is_refused(
    client: httpx.AsyncClient, oidc_server: Any
) -> None:
    org = _organisation(oidc_server, ["reader"])
    elsewhere = await _token(oidc_server, org, audience="some-other-api")
    _assert_refused(await client.get("/v1/claims", headers=bearer(elsewhere)))


async def test_an_expired_token_is_refused(client: httpx.AsyncClient, oidc_server: Any) -> None:
    org = _organisation(oidc_server, ["reader"])
    await asyncio.to_thread(oidc_server.set_token_lifespan, org, "2s")
    token = await _token(oidc_server, org)
    assert (await client.get("/v1/claims", headers=bearer(token))).status_code == 200
    expiry = jwt.decode(token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, expiry - time.time()) + 1.5)
    _assert_refused(await client.get("/v1/claims", headers=bearer(token)))


async def test_a_token_of_another_issuer_is_refused(
    oidc_settings: IntakeSettings, oidc_server: Any
) -> None:
    """The same keys (as if the issuer's JWKS were shared), but an issuer the service does not
    trust: the signature verifies, the issuer does not."""
    impostor = oidc_settings.model_copy(
        update={
            "oidc_issuer": "https://login.example.org/",
            "oidc_jwks_url": f"{oidc_server.public_url}/.well-known/jwks.json",
        }
    )
    org = _organisation(oidc_server, ["reader"])
    token = await _token(oidc_server, org)
    async with in_process(create_app(impostor), "intake") as client:
        _assert_refused(await client.get("/v1/claims", headers=bearer(token)))


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_tampered_unsigned_and_symmetric_tokens_are_refused(
    client: httpx.AsyncClient, oidc_server: Any
) -> None:
    org = _organisation(oidc_server, ["reader"])
    token = await _token(oidc_server, org)
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})

    # The organisation changed, the signature kept.
    forged = {**claims, "client_id": "someone-else"}
    _assert_refused(
        await client.get("/v1/claims", headers=bearer(f"{header}.{_b64(forged)}.{signature}"))
    )
    # alg none, no signature.
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    _assert_refused(await client.get("/v1/claims", headers=bearer(unsigned)))
    # HS256 keyed with anything: the service never accepts a symmetric algorithm.
    kid = jwt.get_unverified_header(token)["kid"]
    guess = "a shared secret the service never has"
    symmetric = jwt.encode(claims, guess, algorithm="HS256", headers={"kid": kid})
    _assert_refused(await client.get("/v1/claims", headers=bearer(symmetric)))
    # The genuine token still works: the refusals were about the tokens.
    assert (await client.get("/v1/claims", headers=bearer(token))).status_code == 200


async def test_a_rotated_signing_key_is_fetched_when_its_tokens_arrive(
    client: httpx.AsyncClient, oidc_server: Any
) -> None:
    org = _organisation(oidc_server, ["reader"])
    before = await _token(oidc_server, org)
    assert (await client.get("/v1/claims", headers=bearer(before))).status_code == 200

    kid = await asyncio.to_thread(oidc_server.rotate_signing_key)
    after = await _token(oidc_server, org)
    assert jwt.get_unverified_header(after)["kid"] == kid
    await asyncio.sleep(0.6)  # past the refetch interval of these settings
    assert (await client.get("/v1/claims", headers=bearer(after))).status_code == 200
