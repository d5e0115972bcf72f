"""The FHIR views through the real API and database: FHIR JSON, adjudication applied by the
status service, 409 before adjudication, 404 across organisations, every read audited."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from fhir.resources.R4B.explanationofbenefit import ExplanationOfBenefit
from opentelemetry.context import Context

from claimflow_devstack.testing import VALID_LINE
from claimflow_intake.service_layer.statuses import apply_status_events
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.db import create_engine
from claimflow_shared.events import (
    AdjudicatedLineV1,
    ClaimAdjudicatedV1,
    LineAmountsV1,
    decode_event,
    new_event,
)
from claimflow_shared.events.catalog import AdjudicatedTotalsV1
from claimflow_shared.kafka.consumer import ConsumedEvent

from .conftest import OTHER_ORG_KEY, PAYER_KEY, READER_KEY, auth
from .test_organisations import _audited

D = Decimal
RESOURCES = ("Claim", "ClaimResponse", "ExplanationOfBenefit")
# examples/claim_1234.csv as JSON.
CLAIM_1234 = {
    "external_id": "1234",
    "lines": [
        VALID_LINE
        | {
            "submitted_procedure": code,
            "quadrant": quadrant,
            "provider_fees": fees,
            "allowed_fees": allowed,
            "member_coinsurance": coinsurance,
        }
        for code, quadrant, fees, allowed, coinsurance in [
            ("D0180", None, "100.00", "100.00", "0.00"),
            ("D0210", None, "108.00", "108.00", "0.00"),
            ("D4346", None, "130.00", "65.00", "16.25"),
            ("D4211", "UR", "178.00", "178.00", "35.60"),
        ]
    ],
}


def _adjudicated(claim_id: str) -> ClaimAdjudicatedV1:
    results = [
        (1, [], "100.00", "100.00", "100.00", "0.00"),
        (2, [], "108.00", "108.00", "108.00", "0.00"),
        (3, ["45"], "130.00", "65.00", "52.00", "81.25"),
        (4, [], "178.00", "178.00", "142.40", "35.60"),
    ]
    return ClaimAdjudicatedV1(
        claim_id=uuid.UUID(claim_id),
        status="adjudicated",
        outcome="complete",
        plan_id="default",
        plan_version=3,
        adjudicated_at=datetime.now(UTC),
        lines=[
            AdjudicatedLineV1(
                line_no=n,
                outcome="reduced" if codes else "approved",
                reason_codes=codes,
                net_fee=D(net),
                amounts=LineAmountsV1(
                    submitted=D(submitted),
                    eligible=D(eligible),
                    copay=D("0.00"),
                    deductible=D("0.00"),
                    benefit=D(benefit),
                ),
            )
            for n, codes, submitted, eligible, benefit, net in results
        ],
        totals=AdjudicatedTotalsV1(
            net_fee=D("116.85"), submitted=D("516.00"), eligible=D("451.00"), benefit=D("402.40")
        ),
    )


async def _apply(settings: IntakeSettings, claim_id: str) -> None:
    """The adjudication event applied by intake's status service, as its worker does."""
    raw = new_event("/claimflow/adjudication", _adjudicated(claim_id), subject=claim_id).to_json()
    consumed = ConsumedEvent(
        decode_event(raw), settings.topic("claims.adjudicated"), 0, 0, claim_id, Context()
    )
    engine = create_engine(settings)
    try:
        await apply_status_events(engine, [consumed])
    finally:
        await engine.dispose()


async def _submit(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/claims", json=CLAIM_1234, headers=auth())
    assert response.status_code == 202, response.text
    claim_id: str = response.json()["id"]
    return claim_id


def _exact(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    body: dict[str, Any] = json.loads(response.content, parse_float=Decimal)
    return body


async def test_a_claim_reads_as_fhir_before_and_after_adjudication(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    claim_id = await _submit(client)
    base = f"/v1/claims/{claim_id}/fhir"

    claim = _exact(await client.get(f"{base}/Claim", headers=auth(READER_KEY)))
    assert claim["resourceType"] == "Claim"
    assert [i["productOrService"]["coding"][0]["code"] for i in claim["item"]] == [
        "D0180",
        "D0210",
        "D4346",
        "D4211",
    ]
    assert str(claim["total"]["value"]) == "516.00"
    assert claim["item"][3]["bodySite"]["coding"][0]["code"] == "10"

    for name in ("ClaimResponse", "ExplanationOfBenefit"):
        early = await client.get(f"{base}/{name}", headers=auth(READER_KEY))
        assert early.status_code == 409
        assert early.headers["content-type"].startswith("application/problem+json")
        assert early.json()["type"].endswith("/claim-not-adjudicated")

    await _apply(settings, claim_id)

    response = _exact(await client.get(f"{base}/ClaimResponse", headers=auth(READER_KEY)))
    assert response["outcome"] == "complete"
    totals = {
        t["category"]["coding"][0]["code"]: str(t["amount"]["value"]) for t in response["total"]
    }
    assert totals == {
        "submitted": "516.00",
        "eligible": "451.00",
        "deductible": "0.00",
        "copay": "0.00",
        "benefit": "402.40",
        "net-fee": "116.85",
    }
    line_3 = response["item"][2]["adjudication"]
    assert [a["reason"]["coding"][0] for a in line_3 if "reason" in a] == [
        {"system": "https://x12.org/codes/claim-adjustment-reason-codes", "code": "45"}
    ]
    assert "payment" not in response  # adjudicated, not paid yet

    eob = _exact(await client.get(f"{base}/ExplanationOfBenefit", headers=auth(PAYER_KEY)))
    parsed = ExplanationOfBenefit.model_validate(eob)
    assert parsed.meta.profile[0].startswith(
        "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Oral|"
    )
    assert parsed.identifier[0].value == f"urn:uuid:{claim_id}"
    patient = next(r for r in eob["contained"] if r["resourceType"] == "Patient")
    assert patient["identifier"][0]["value"] == VALID_LINE["subscriber_number"]


async def test_another_organisations_claim_is_not_found_and_every_read_is_audited(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    claim_id = await _submit(client)
    await _apply(settings, claim_id)

    for name in RESOURCES:
        foreign = await client.get(
            f"/v1/claims/{claim_id}/fhir/{name}", headers=auth(OTHER_ORG_KEY)
        )
        missing = await client.get(
            f"/v1/claims/{uuid.uuid4()}/fhir/{name}", headers=auth(OTHER_ORG_KEY)
        )
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json()["type"] == missing.json()["type"]
        assert VALID_LINE["subscriber_number"] not in foreign.text
        ours = await client.get(f"/v1/claims/{claim_id}/fhir/{name}", headers=auth(READER_KEY))
        assert ours.status_code == 200

    reads = [a for a in await _audited(settings) if a[1] == claim_id]
    # One claim.read per FHIR read by our dashboard; none for the refused other organisation.
    assert reads == [("claim.read", claim_id, "dashboard")] * len(RESOURCES)
