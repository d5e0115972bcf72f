"""The HTTP API's contract, and the database roles the migration sets up."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.adapters.roles import PrivilegedRoleError, RoleSetupError
from claimflow_audit.cli import migrate
from claimflow_audit.domain.chain import Entry
from claimflow_audit.main import create_app
from claimflow_audit.settings import AuditSettings

from ..conftest import READER_KEY, as_role, audit_settings, auth

CLAIM = "7d1c1c3e-2f0a-4a8b-9a1e-0f3c2b1a9d8e"
ACCESS_BY_AUDITOR = ("io.claimflow.audit.access.v1", "auditor")


async def record_claim_events(engine: AsyncEngine, count: int) -> None:
    async with engine.begin() as conn:
        await store.append(
            conn,
            [
                Entry(
                    event_id=f"a-{n}",
                    type="io.claimflow.audit.access.v1",
                    event_time=datetime.now(UTC),
                    subject=CLAIM,
                    actor="dashboard",
                )
                for n in range(count)
            ]
            + [Entry(event_id="other", type="x.v1", event_time=datetime.now(UTC), subject="o")],
        )


async def test_every_endpoint_needs_the_auditor_role(client: httpx.AsyncClient) -> None:
    for path in (f"/v1/audit/claims/{CLAIM}", "/v1/audit/verify", "/v1/audit/head"):
        anonymous = await client.get(path)
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        reader = await client.get(path, headers=auth(READER_KEY))
        assert reader.status_code == 403
        assert reader.json()["type"].endswith("/forbidden")


async def test_a_claim_without_records_is_not_found(client: httpx.AsyncClient) -> None:
    for claim in (CLAIM, "not-a-uuid"):
        response = await client.get(f"/v1/audit/claims/{claim}", headers=auth())
        assert response.status_code == 404
        assert response.json()["type"].endswith("/claim-not-found")
    bad = await client.get(f"/v1/audit/claims/{CLAIM}?cursor=%%%", headers=auth())
    assert bad.status_code == 400
    assert bad.json()["type"].endswith("/bad-cursor")


async def test_the_timeline_pages_in_chain_order(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await record_claim_events(engine, 5)
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor is not None else {})
        answer = await client.get(
            f"/v1/audit/claims/{CLAIM.upper()}", params=params, headers=auth()
        )
        # Who read which claim when is PHI too: no cache may keep it.
        assert answer.headers["cache-control"] == "no-store"
        page = answer.json()
        assert page["claim_id"] == CLAIM
        seen += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Each page read is recorded after the seeded events, so later pages show earlier reads.
    pages = len(seen) - 5
    assert [e["event_id"] for e in seen[:5]] == [f"a-{n}" for n in range(5)]
    assert [(e["type"], e["actor"]) for e in seen[5:]] == [ACCESS_BY_AUDITOR] * pages
    event = seen[4]
    assert set(event) >= {"seq", "type", "actor", "trace_id", "payload_digest", "hash"}
    assert "data" not in event


async def test_every_timeline_read_is_recorded_in_the_chain(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Who read a claim's trail is itself PHI access: each page served appends an audit.access
    record naming the principal, in the read's trace, and the chain still verifies."""
    await record_claim_events(engine, 2)
    trace_id = secrets.token_hex(16)
    traced = auth() | {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    first = (await client.get(f"/v1/audit/claims/{CLAIM}", headers=traced)).json()
    assert [e["event_id"] for e in first["events"]] == ["a-0", "a-1"]

    second = (await client.get(f"/v1/audit/claims/{CLAIM}", headers=auth())).json()
    recorded = second["events"][2:]
    assert [(e["type"], e["actor"]) for e in recorded] == [ACCESS_BY_AUDITOR]
    assert recorded[0]["trace_id"] == trace_id
    assert len(recorded[0]["payload_digest"]) == 64
    assert recorded[0]["subject"] == CLAIM

    # A refused or fruitless read records nothing.
    refused = await client.get(f"/v1/audit/claims/{CLAIM}", headers=auth(READER_KEY))
    assert refused.status_code == 403
    missing = "0b9c2c1e-2f0a-4a8b-9a1e-0f3c2b1a9d8e"
    assert (await client.get(f"/v1/audit/claims/{missing}", headers=auth())).status_code == 404
    third = (await client.get(f"/v1/audit/claims/{CLAIM}", headers=auth())).json()
    assert len(third["events"]) == 4  # the two seeded, the first and the second read

    verified = (await client.get("/v1/audit/verify", headers=auth())).json()
    assert verified["valid"] is True


async def test_head_and_verify_report_the_same_anchor(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await record_claim_events(engine, 3)
    head = (await client.get("/v1/audit/head", headers=auth())).json()
    report = (await client.get("/v1/audit/verify", headers=auth())).json()
    assert head["chain_length"] == 4
    assert report == report | {
        "valid": True,
        "checked": 4,
        "first_invalid": None,
        "reason": None,
        "from_seq": 1,
        "to_seq": 4,
        "last_hash": head["head_hash"],
    }


async def test_verify_rejects_bad_ranges_and_a_second_run_at_once(
    client: httpx.AsyncClient,
) -> None:
    backwards = await client.get("/v1/audit/verify?from_seq=5&to_seq=2", headers=auth())
    assert backwards.status_code == 422
    zero = await client.get("/v1/audit/verify?from_seq=0", headers=auth())
    assert zero.status_code == 422
    app: FastAPI = client._transport.app  # type: ignore[attr-defined]
    async with app.state.verify_slots:
        busy = await client.get("/v1/audit/verify", headers=auth())
    assert busy.status_code == 429
    assert busy.headers["retry-after"] == "30"


async def test_the_openapi_document_describes_the_audit_api(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert {"/v1/audit/claims/{claim_id}", "/v1/audit/verify", "/v1/audit/head"} <= set(
        document["paths"]
    )


async def test_migrate_is_repeatable_and_grants_only_insert_and_select(
    settings: AuditSettings, owner: AsyncEngine
) -> None:
    await asyncio.to_thread(migrate, settings)
    async with owner.connect() as conn:
        rights = (
            await conn.execute(
                text(
                    "SELECT privilege_type FROM information_schema.role_table_grants "
                    "WHERE grantee = :role AND table_name = 'audit_records'"
                ),
                {"role": settings.app_role()},
            )
        ).scalars()
        assert sorted(rights) == ["INSERT", "SELECT"]


async def test_migrate_creates_the_role_with_the_urls_password(
    database_url: str, topic_prefix: str, owner: AsyncEngine
) -> None:
    role = "claimflow_audit_pw_test"
    url = make_url(as_role(database_url, role)).set(password="it's 100% 'quoted'")
    configured = audit_settings(
        database_url,
        "127.0.0.1:1",
        topic_prefix,
        database_url=url.render_as_string(hide_password=False),
    )
    await asyncio.to_thread(migrate, configured)
    async with owner.connect() as conn:
        found = (
            await conn.execute(
                text(
                    "SELECT rolcanlogin, rolpassword IS NOT NULL AS has_password, rolsuper "
                    "FROM pg_authid WHERE rolname = :r"
                ),
                {"r": role},
            )
        ).one()
    assert (found.rolcanlogin, found.has_password, found.rolsuper) == (True, True, False)


async def test_the_owner_is_never_made_the_application_role(
    database_url: str, topic_prefix: str
) -> None:
    as_owner = audit_settings(database_url, "127.0.0.1:1", topic_prefix, database_url=database_url)
    with pytest.raises(RoleSetupError, match="is the migration role"):
        await asyncio.to_thread(migrate, as_owner)


async def test_the_services_refuse_to_run_with_rights_to_rewrite_history(
    settings: AuditSettings,
) -> None:
    privileged = settings.model_copy(update={"database_url": settings.migration_database_url})
    app = create_app(privileged)
    with pytest.raises(PrivilegedRoleError, match="can change or delete audit records"):
        async with app.router.lifespan_context(app):
            pass
