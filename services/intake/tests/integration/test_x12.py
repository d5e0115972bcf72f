"""POST /v1/claims/x12 on the real database: the 999, each claim stored or refused on its own,
a rejected envelope storing nothing, and a resent interchange storing nothing twice."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from claimflow_intake.adapters.tables import claims, outbox
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.x12 import read_interchange

from .conftest import auth

REPO = Path(__file__).parents[4]
FIXTURES = Path(__file__).parents[1] / "fixtures" / "x12"
X12 = {"Content-Type": "application/edi-x12"}


def fixture(name: str) -> bytes:
    folder = REPO / "examples" / "x12" if name == "claim_1234.837" else FIXTURES
    return (folder / name).read_bytes()


async def post(client: httpx.AsyncClient, name: str, **headers: str) -> httpx.Response:
    return await client.post(
        "/v1/claims/x12", content=fixture(name), headers=auth() | X12 | headers
    )


async def _counts(settings: IntakeSettings) -> tuple[int, int]:
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            stored = await conn.scalar(select(func.count()).select_from(claims))
            events = await conn.scalar(select(func.count()).select_from(outbox))
            return int(stored or 0), int(events or 0)
    finally:
        await engine.dispose()


def segments(ack: str) -> list[list[str]]:
    return [s.strip().split("*") for s in ack.split("~") if s.strip()]


def assert_valid_999(ack: str) -> None:
    """The acknowledgment itself passes pyx12's stock 999 (X231A1) guide."""
    checked = read_interchange(ack)
    assert checked.guide == "005010X231A1"
    assert checked.errors == []


async def test_claim_1234_is_accepted_and_stored_with_its_net_fees(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    response = await post(client, "claim_1234.837")

    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["status"], body["accepted"], body["rejected"]) == ("A", 1, 0)
    assert body["control_number"] == "000000101"
    assert_valid_999(body["ack"])
    assert ["AK9", "A", "1", "1", "1"] in segments(body["ack"])
    (result,) = body["results"]
    assert (result["status"], result["claim_submitter_id"]) == (202, "1234")
    assert result["claim"]["totals"]["net_fee"] == "116.85"
    assert await _counts(settings) == (1, 1)

    stored = await client.get(result["location"], headers=auth())
    lines = stored.json()["lines"]
    assert [line["submitted_procedure"] for line in lines] == ["D0180", "D0210", "D4346", "D4211"]
    assert [Decimal(line["net_fee"]) for line in lines] == [
        Decimal(v) for v in ("0", "0", "81.25", "35.60")
    ]
    assert lines[3]["quadrant"] == "UR"


async def test_an_envelope_error_rejects_the_interchange_and_stores_nothing(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    response = await post(client, "envelope_se_count.837")

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/x12-interchange-rejected")
    assert problem["errors"] == [
        {
            "field": "ST",
            "rule": "x12-transaction-4",
            "message": "SE01 does not match the number of included segments",
        }
    ]
    assert_valid_999(problem["ack"])
    assert ["AK9", "R", "1", "1", "0"] in segments(problem["ack"])
    assert await _counts(settings) == (0, 0)

    as_x12 = await post(client, "envelope_se_count.837", Accept="application/edi-x12")
    assert as_x12.status_code == 422
    assert as_x12.headers["content-type"].startswith("application/edi-x12")
    assert ["AK9", "R", "1", "1", "0"] in segments(as_x12.text)


async def test_one_bad_claim_is_refused_and_the_good_ones_are_stored(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    response = await post(client, "one_bad_claim.837")

    body = response.json()
    assert response.status_code == 207
    assert body["status"] == "E"
    assert_valid_999(body["ack"])
    assert [r["status"] for r in body["results"]] == [202, 422, 202]
    bad = body["results"][1]
    assert bad["claim_submitter_id"] == "C000001"
    assert bad["problem"]["errors"][0]["field"] == "SV302"
    assert ["IK5", "E", "5"] in segments(body["ack"])
    assert await _counts(settings) == (2, 2)


async def test_a_claim_valid_in_x12_that_breaks_claimflows_rules_is_refused_alone(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    response = await post(client, "business_rule_npi.837")

    body = response.json()
    # The guide is satisfied (999 accepts); claimflow's own rules refuse the claim.
    assert body["status"] == "A"
    refused = [r for r in body["results"] if r["status"] == 422]
    assert len(refused) == 1
    assert refused[0]["problem"]["errors"][0]["rule"] == "npi-luhn"
    assert await _counts(settings) == (body["accepted"], body["accepted"])


async def test_a_resent_interchange_stores_nothing_twice(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    first = (await post(client, "multi_claim.837")).json()
    again = (await post(client, "multi_claim.837")).json()

    assert first["accepted"] == again["accepted"] > 1
    assert [r["claim"]["id"] for r in again["results"]] == [
        r["claim"]["id"] for r in first["results"]
    ]
    assert all(r["replayed"] for r in again["results"])
    assert await _counts(settings) == (first["accepted"], first["accepted"])


async def test_the_999_alone_on_request_and_only_x12_accepted(
    client: httpx.AsyncClient,
) -> None:
    as_x12 = await post(client, "claim_1234.837", Accept="application/edi-x12")
    assert as_x12.status_code == 207
    assert as_x12.text.startswith("ISA*")
    assert_valid_999(as_x12.text)

    as_text = await client.post(
        "/v1/claims/x12",
        content=fixture("claim_1234.837"),
        headers=auth() | {"Content-Type": "text/plain"},
    )
    assert as_text.status_code == 415
