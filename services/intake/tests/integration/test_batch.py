"""POST /v1/claims/batch: each claim accepted or refused on its own, replays per claim."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from claimflow_devstack.testing import claim_body, in_process
from claimflow_intake.adapters.tables import claims, outbox
from claimflow_intake.main import create_app
from claimflow_intake.settings import IntakeSettings

from .conftest import auth

BAD_NPI = "1497775531"


def item(
    key: str | None = None, *, external_id: str | None = None, lines: int = 1, **line: Any
) -> dict[str, Any]:
    """A batch element: a claim of `lines` lines (with `line`'s fields) under `key`."""
    element: dict[str, Any] = {"claim": claim_body(lines, **line)}
    if external_id is not None:
        element["claim"]["external_id"] = external_id
    if key is not None:
        element["idempotency_key"] = key
    return element


async def _stored(settings: IntakeSettings) -> tuple[set[str], list[str]]:
    """The stored claims' ids and the claim id of every outbox event."""
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            ids = {str(r.id) for r in await conn.execute(select(claims.c.id))}
            keys = [r.key for r in await conn.execute(select(outbox.c.key))]
            return ids, keys
    finally:
        await engine.dispose()


async def test_valid_claims_are_stored_and_each_refusal_is_reported(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    batch = [
        item(external_id="a"),
        item(external_id="b"),
        item(provider_npi=BAD_NPI, member_copay="-1"),
        "not an object",
        item(external_id="c"),
    ]
    response = await client.post("/v1/claims/batch", json=batch, headers=auth())

    assert response.status_code == 207, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == [202, 202, 422, 422, 202]
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3, 4]
    assert (body["accepted"], body["rejected"]) == (3, 2)
    bad = body["results"][2]["problem"]
    assert bad["type"].endswith("/validation-error")
    assert {e["field"] for e in bad["errors"]} == {"provider_npi", "member_copay"}
    assert BAD_NPI not in json.dumps(bad)
    assert body["results"][3]["problem"]["errors"][0]["rule"] == "type"

    accepted = [r for r in body["results"] if r["status"] == 202]
    ids = {r["claim"]["id"] for r in accepted}
    assert all(r["location"] == f"/v1/claims/{r['claim']['id']}" for r in accepted)
    assert [r["claim"]["external_id"] for r in accepted] == ["a", "b", "c"]
    assert [r["claim"]["totals"]["net_fee"] for r in accepted] == ["81.25"] * 3
    stored, events = await _stored(settings)
    # Exactly one claims.submitted per stored claim, keyed by the claim.
    assert stored == ids
    assert sorted(events) == sorted(ids)


async def test_ndjson_batches_report_a_malformed_line_as_that_claims_error(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    lines = [json.dumps(item(external_id="x")), "{not json", "", json.dumps(item())]
    response = await client.post(
        "/v1/claims/batch",
        content="\n".join(lines).encode(),
        headers=auth() | {"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [202, 422, 202]
    assert results[1]["problem"]["errors"][0] == {
        "rule": "json",
        "message": "line 2 is not valid JSON",
    }
    assert len((await _stored(settings))[0]) == 2


async def test_a_resent_batch_replays_each_claim_and_stores_only_new_ones(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    first = await client.post(
        "/v1/claims/batch", json=[item("k1"), item("k2", provider_npi=BAD_NPI)], headers=auth()
    )
    again = await client.post(
        "/v1/claims/batch",
        json=[item("k1"), item("k2"), item("k3"), item("k1", lines=2)],
        headers=auth(),
    )
    one, two = first.json()["results"], again.json()["results"]
    assert [r["status"] for r in one] == [202, 422]
    # k1: the first answer again; k2: refused before, so stored now; k3: new; k1 with
    # another claim: refused.
    assert [r["status"] for r in two] == [202, 202, 202, 422]
    assert [r.get("replayed") for r in two[:3]] == [True, False, False]
    assert two[0]["claim"] == one[0]["claim"]
    assert two[3]["problem"]["type"].endswith("/idempotency-key-reused")
    stored, events = await _stored(settings)
    assert len(stored) == len(events) == 3


async def test_a_key_first_used_by_a_single_submission_replays_in_a_batch(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    single = await client.post(
        "/v1/claims", json=claim_body(), headers=auth() | {"Idempotency-Key": "shared"}
    )
    batch = await client.post("/v1/claims/batch", json=[item("shared")], headers=auth())
    (result,) = batch.json()["results"]
    assert result["replayed"] is True
    assert result["claim"]["id"] == single.json()["id"]
    assert len((await _stored(settings))[0]) == 1


async def test_a_key_twice_in_one_batch_is_one_claim_or_a_refusal(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    response = await client.post(
        "/v1/claims/batch",
        json=[item("dup"), item("dup"), item("dup", lines=3)],
        headers=auth(),
    )
    results = response.json()["results"]
    assert [r["status"] for r in results] == [202, 202, 422]
    assert results[1]["replayed"] is True
    assert results[1]["claim"]["id"] == results[0]["claim"]["id"]
    assert len((await _stored(settings))[0]) == 1


async def test_concurrent_resends_of_one_batch_store_each_claim_once(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    batch = [item(f"c-{n}", external_id=f"c-{n}") for n in range(50)]
    # Reversed in the second copy: the keys are claimed in sorted order, so the two
    # transactions wait for each other instead of deadlocking.
    answers = await asyncio.gather(
        *(
            client.post("/v1/claims/batch", json=b, headers=auth())
            for b in (batch, batch[::-1], batch)
        )
    )
    assert {a.status_code for a in answers} == {207}
    ids = {r["claim"]["id"] for a in answers for r in a.json()["results"]}
    stored, events = await _stored(settings)
    assert stored == ids
    assert len(stored) == len(events) == 50


@pytest.mark.parametrize(
    ("body", "status", "rule"),
    [([], 422, "batch-size"), ({"claim": {}}, 422, None), ("[1,", 400, None)],
)
async def test_a_batch_that_is_not_a_list_of_claims_stores_nothing(
    client: httpx.AsyncClient, settings: IntakeSettings, body: Any, status: int, rule: str | None
) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    response = await client.post(
        "/v1/claims/batch",
        content=content.encode(),
        headers=auth() | {"Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if rule is not None:
        assert response.json()["errors"][0]["rule"] == rule
    assert (await _stored(settings))[0] == set()


async def test_batch_size_and_body_limits_are_the_bulk_ones(settings: IntakeSettings) -> None:
    small = settings.model_copy(
        update={"max_body_bytes": 2048, "bulk_max_body_bytes": 65536, "batch_max_claims": 10}
    )
    async with in_process(create_app(small), "intake") as client:
        ten = [item(external_id=f"n{n}", lines=2) for n in range(10)]
        assert len(json.dumps(ten)) > small.max_body_bytes
        accepted = await client.post("/v1/claims/batch", json=ten, headers=auth())
        assert accepted.status_code == 207
        assert accepted.json()["accepted"] == 10

        too_many = await client.post("/v1/claims/batch", json=[*ten, item()], headers=auth())
        assert too_many.status_code == 422
        assert too_many.json()["errors"][0]["message"] == (
            "the batch holds 11 claims; at most 10 are accepted"
        )
        # The single-claim route keeps its own, smaller limit.
        big_single = claim_body(lines=10)
        assert len(json.dumps(big_single)) > small.max_body_bytes
        refused = await client.post("/v1/claims", json=big_single, headers=auth())
        assert refused.status_code == 413
        assert refused.json()["detail"] == "The body may be at most 2048 bytes."

        csv = await client.post(
            "/v1/claims/batch", content=b"a,b", headers=auth() | {"Content-Type": "text/csv"}
        )
        assert csv.status_code == 415
