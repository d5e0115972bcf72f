"""The HTTP API: auth, validation as problem+json, provider reads, and the rate limit, in memory
and shared through a real Redis across two app instances."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_devstack.testing import assert_rate_limited

from .conftest import CLEARINGHOUSE_READER_KEY, SUBMITTER_KEY, app_client, auth

PROBLEM = "application/problem+json"


async def _seed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO provider_totals (provider_npi, net_fee_total, claim_count) VALUES"
                " ('1111111111', 10.00, 1), ('2222222222', 116.85, 2),"
                " ('3333333333', 116.85, 1), ('4444444444', -5.00, 1)"
            )
        )


async def test_top_providers_ranks_by_net_fee_then_npi(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await _seed(engine)
    response = await client.get("/v1/providers/top", params={"limit": 3}, headers=auth())
    assert response.status_code == 200
    body = response.json()
    assert body["providers"] == [
        {"provider_npi": "2222222222", "net_fee_total": "116.85", "claim_count": 2},
        {"provider_npi": "3333333333", "net_fee_total": "116.85", "claim_count": 1},
        {"provider_npi": "1111111111", "net_fee_total": "10.00", "claim_count": 1},
    ]
    assert body["as_of"].endswith("Z") or "+00:00" in body["as_of"]
    assert response.headers["RateLimit-Limit"] == "10"
    assert response.headers["RateLimit-Remaining"] == "9"
    assert response.headers["RateLimit-Policy"] == "10;w=60"
    assert response.headers["Cache-Control"] == "no-store"
    default = (await client.get("/v1/providers/top", headers=auth())).json()
    assert len(default["providers"]) == 4


async def test_one_provider_and_unknown_providers(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await _seed(engine)
    found = await client.get("/v1/providers/4444444444", headers=auth())
    assert found.json() == {
        "provider_npi": "4444444444",
        "net_fee_total": "-5.00",
        "claim_count": 1,
    }
    missing = await client.get("/v1/providers/9999999999", headers=auth())
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
    bad = await client.get("/v1/providers/12345", headers=auth())
    assert bad.status_code == 422


async def test_auth_and_validation_errors_are_problems(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/v1/providers/top")
    assert (anonymous.status_code, anonymous.headers["content-type"]) == (401, PROBLEM)
    assert "WWW-Authenticate" in anonymous.headers
    wrong_role = await client.get("/v1/providers/top", headers=auth(SUBMITTER_KEY))
    assert (wrong_role.status_code, wrong_role.json()["type"]) == (
        403,
        "https://claimflow.dev/problems/forbidden",
    )
    for limit in ("0", "101", "ten"):
        response = await client.get("/v1/providers/top", params={"limit": limit}, headers=auth())
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["field"] == "limit"


async def test_provider_totals_and_plans_are_for_the_payer_only(
    client: httpx.AsyncClient,
) -> None:
    # They add up every organisation's claims: a clearinghouse's reader sees none of it.
    for path in ("/v1/providers/top", "/v1/providers/1497775530", "/v1/plans", "/v1/plans/x"):
        refused = await client.get(path, headers=auth(CLEARINGHOUSE_READER_KEY))
        assert refused.status_code == 403, path
        assert "payer-reader" in refused.json()["detail"]
    assert (await client.get("/v1/plans", headers=auth())).status_code == 200


async def _spend(client: httpx.AsyncClient, calls: int) -> list[httpx.Response]:
    return [await client.get("/v1/providers/top", headers=auth()) for _ in range(calls)]


async def test_the_eleventh_call_in_a_minute_is_refused(client: httpx.AsyncClient) -> None:
    responses = await _spend(client, 11)
    assert [r.status_code for r in responses[:10]] == [200] * 10
    assert [r.headers["RateLimit-Remaining"] for r in responses[:10]] == [
        str(n) for n in range(9, -1, -1)
    ]
    assert_rate_limited(responses[10])
    # Other endpoints and other principals have their own budgets.
    assert (await client.get("/v1/plans", headers=auth())).status_code == 200


async def test_in_memory_budgets_are_per_instance(settings: AdjudicationSettings) -> None:
    async with app_client(settings) as first, app_client(settings) as second:
        assert [r.status_code for r in await _spend(first, 10)] == [200] * 10
        assert (await second.get("/v1/providers/top", headers=auth())).status_code == 200


async def test_with_redis_two_instances_share_one_budget(
    settings: AdjudicationSettings, redis_server: Any
) -> None:
    shared = settings.model_copy(update={"rate_limit_storage_url": _secret(redis_server.url)})
    async with app_client(shared) as first, app_client(shared) as second:
        spent = [
            await (first if n % 2 else second).get("/v1/providers/top", headers=auth())
            for n in range(10)
        ]
        assert [r.status_code for r in spent] == [200] * 10
        assert_rate_limited(await first.get("/v1/providers/top", headers=auth()))
        assert_rate_limited(await second.get("/v1/providers/top", headers=auth()))
        ready = (await first.get("/readyz")).json()
        assert ready["checks"]["rate_limit_storage"] == "ok"


async def test_an_unreachable_redis_fails_open(settings: AdjudicationSettings) -> None:
    from claimflow_devstack.processes import free_port  # noqa: PLC0415

    broken = settings.model_copy(
        update={"rate_limit_storage_url": _secret(f"redis://127.0.0.1:{free_port()}/0")}
    )
    async with app_client(broken) as client:
        response = await client.get("/v1/providers/top", headers=auth())
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response.headers
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["rate_limit_storage"] != "ok"


def _secret(value: str) -> Any:
    from pydantic import SecretStr  # noqa: PLC0415

    return SecretStr(value)


async def test_openapi_documents_the_endpoints(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert {"/v1/providers/top", "/v1/providers/{provider_npi}", "/v1/plans"} <= set(
        document["paths"]
    )
    top = document["paths"]["/v1/providers/top"]["get"]
    assert {"200", "401", "403", "422", "429"} <= set(top["responses"])
