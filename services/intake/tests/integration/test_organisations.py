"""Each organisation sees only its own claims (OWASP API1, broken object-level authorisation);
the payer's roles see every organisation's. Through the real HTTP API and database."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from claimflow_devstack.testing import claim_body
from claimflow_intake.adapters.tables import claims, outbox
from claimflow_intake.cli import MIGRATIONS
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.migrate import upgrade

from .conftest import OTHER_ORG_KEY, PAYER_KEY, READER_KEY, SUBMITTER_KEY, auth

NPI = "1497775530"


async def _submit(client: httpx.AsyncClient, key: str) -> str:
    response = await client.post("/v1/claims", json=claim_body(provider_npi=NPI), headers=auth(key))
    assert response.status_code == 202, response.text
    claim_id: str = response.json()["id"]
    return claim_id


async def _listed(client: httpx.AsyncClient, key: str, **params: str) -> list[str]:
    response = await client.get("/v1/claims", params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def _audited(settings: IntakeSettings) -> list[tuple[str, str, str]]:
    """(action, claim id, principal) of every audit.access event intake has written."""
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            topic = settings.topic("audit.access")
            payloads = (
                await conn.execute(
                    select(outbox.c.payload).where(outbox.c.topic == topic).order_by(outbox.c.id)
                )
            ).scalars()
            events = [json.loads(payload)["data"] for payload in payloads]
    finally:
        await engine.dispose()
    return [(e["action"], e["claim_id"], e["principal"]) for e in events]


async def test_an_organisation_never_sees_another_organisations_claims(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    ours = await _submit(client, SUBMITTER_KEY)
    theirs = await _submit(client, OTHER_ORG_KEY)

    # Another organisation's claim is as absent as one that does not exist: same status, same
    # problem, and nothing of it in the answer.
    foreign = await client.get(f"/v1/claims/{ours}", headers=auth(OTHER_ORG_KEY))
    missing = await client.get(f"/v1/claims/{uuid.uuid4()}", headers=auth(OTHER_ORG_KEY))
    assert foreign.status_code == missing.status_code == 404

    def problem(response: httpx.Response) -> dict[str, object]:
        return {k: v for k, v in response.json().items() if k not in ("instance", "trace_id")}

    assert problem(foreign) == problem(missing)
    assert await _listed(client, OTHER_ORG_KEY) == [theirs]
    assert await _listed(client, OTHER_ORG_KEY, provider_npi=NPI) == [theirs]
    assert await _listed(client, OTHER_ORG_KEY, status="queued") == [theirs]

    # Our dashboard (a reader of our organisation) sees ours only.
    assert await _listed(client, READER_KEY) == [ours]
    mine = await client.get(f"/v1/claims/{ours}", headers=auth(READER_KEY))
    assert (mine.status_code, mine.json()["organisation"]) == (200, "clearinghouse")
    assert (await client.get(f"/v1/claims/{theirs}", headers=auth(READER_KEY))).status_code == 404

    # The payer sees both, each with its owner.
    assert set(await _listed(client, PAYER_KEY)) == {ours, theirs}
    owner = await client.get(f"/v1/claims/{theirs}", headers=auth(PAYER_KEY))
    assert (owner.status_code, owner.json()["organisation"]) == (200, "other-clearinghouse")


async def test_claims_stored_before_organisations_belong_to_their_submitter(
    database_url: str,
) -> None:
    # Before organisations every key acted for itself; a key without an organisation still
    # does (its principal is its organisation), so the migration gives each older claim to
    # the principal that submitted it.
    await asyncio.to_thread(upgrade, MIGRATIONS, database_url, "0001")
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO claims (id, status, status_rank, submitted_by, line_count,"
                    " net_fee_total) VALUES (:id, 'queued', 0, 'legacy-clearinghouse', 1, 81.25)"
                ),
                {"id": uuid.uuid4()},
            )
        await asyncio.to_thread(upgrade, MIGRATIONS, database_url)
        async with engine.connect() as conn:
            owners = (await conn.execute(select(claims.c.organisation))).scalars().all()
            nullable = await conn.scalar(
                text(
                    "SELECT is_nullable FROM information_schema.columns"
                    " WHERE table_name = 'claims' AND column_name = 'organisation'"
                )
            )
    finally:
        await engine.dispose()
    assert owners == ["legacy-clearinghouse"]
    assert nullable == "NO"


async def test_no_answer_of_the_api_may_be_cached(client: httpx.AsyncClient) -> None:
    claim_id = await _submit(client, SUBMITTER_KEY)
    answers = [
        await client.get(f"/v1/claims/{claim_id}", headers=auth(READER_KEY)),
        await client.get("/v1/claims", headers=auth(READER_KEY)),
        await client.get(f"/v1/claims/{claim_id}", headers=auth(OTHER_ORG_KEY)),
        await client.get("/v1/claims"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 404, 401]
    assert all(a.headers["cache-control"] == "no-store" for a in answers)
    # Operations endpoints are no PHI: the middleware leaves them alone.
    assert "cache-control" not in (await client.get("/healthz")).headers


async def test_every_claim_read_or_listed_is_audited_and_a_refused_read_is_not(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    ids = [await _submit(client, SUBMITTER_KEY) for _ in range(3)]
    assert sorted(await _listed(client, READER_KEY)) == sorted(ids)
    assert (
        await client.get(f"/v1/claims/{ids[0]}", headers=auth(OTHER_ORG_KEY))
    ).status_code == 404
    assert await _listed(client, OTHER_ORG_KEY) == []
    assert (await client.get(f"/v1/claims/{ids[0]}", headers=auth(READER_KEY))).status_code == 200

    audited = await _audited(settings)
    assert sorted(audited[:3]) == sorted(("claim.list", i, "dashboard") for i in ids)
    assert audited[3:] == [("claim.read", ids[0], "dashboard")]
