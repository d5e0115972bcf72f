"""An X12 837 Dental claim round trip through every service as real processes.

examples/x12/claim_1234.837 goes in through intake's /v1/claims/x12 (999 accepted), is
adjudicated and paid by the saga, is remitted by adjudication's batch command (an 835 that
pyx12's stock 005010X221A1 map passes and that balances), and reads back from intake as a
FHIR ExplanationOfBenefit whose lines carry the amounts intake and adjudication stated.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from claimflow_devstack.testing import run_cli
from claimflow_shared.x12 import read_interchange

from .conftest import API_KEY, Pipeline, wait_for

INTERCHANGE = Path(__file__).parents[2] / "examples" / "x12" / "claim_1234.837"
PROCEDURES = ["D0180", "D0210", "D4346", "D4211"]
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
CLAIMFLOW_ADJUDICATION = "https://claimflow.dev/fhir/CodeSystem/adjudication"


def segments(text: str, segment_id: str) -> list[list[str]]:
    found = [s.strip().split("*") for s in text.split("~") if s.strip()]
    return [s for s in found if s[0] == segment_id]


def _exact(response: httpx.Response) -> Any:
    """JSON with every number a Decimal, as written (claimflow's own JSON writes money as
    strings; FHIR's are numbers)."""
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=Decimal)


def _amounts(entries: list[dict[str, Any]]) -> dict[tuple[str, str], Decimal]:
    """FHIR adjudication or total entries as {(system, code): amount}; CARC reasons left out."""
    return {
        (e["category"]["coding"][0]["system"], e["category"]["coding"][0]["code"]): Decimal(
            str(e["amount"]["value"])
        )
        for e in entries
        if "amount" in e
    }


def _submit(client: httpx.Client, pipeline: Pipeline) -> str:
    response = client.post(
        f"{pipeline.urls['intake']}/v1/claims/x12",
        content=INTERCHANGE.read_bytes(),
        headers={"Content-Type": "application/edi-x12"},
    )
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["status"], body["accepted"], body["rejected"]) == ("A", 1, 0)
    assert ["AK9", "A", "1", "1", "1"] in segments(body["ack"], "AK9")
    (result,) = body["results"]
    assert (result["status"], result["claim_submitter_id"]) == (202, "1234")
    claim_id: str = result["claim"]["id"]
    return claim_id


def _remit(pipeline: Pipeline) -> None:
    # The period is UTC days; from yesterday, so a payment settled just before midnight UTC
    # is still in it.
    today = datetime.now(UTC).date()
    period = ["--from", str(today - timedelta(days=1)), "--to", str(today)]
    done = run_cli("claimflow_adjudication", ["remittance", *period], pipeline.envs["adjudication"])
    assert done.returncode == 0, done.stderr
    assert "1 claims" in done.stdout, done.stdout


def test_an_837_claim_is_paid_remitted_in_an_835_and_explained_in_fhir(
    pipeline: Pipeline,
) -> None:
    intake, adjudication = pipeline.urls["intake"], pipeline.urls["adjudication"]
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        claim_id = _submit(client, pipeline)

        def paid() -> bool:
            return bool(client.get(f"{intake}/v1/claims/{claim_id}").json()["status"] == "paid")

        # The consumer groups form first; on a busy two-core machine that takes a while.
        wait_for(paid, 180, "claim 1234 being paid")
        claim = _exact(client.get(f"{intake}/v1/claims/{claim_id}"))

        _remit(pipeline)

        listed = _exact(client.get(f"{adjudication}/v1/remittances"))["items"]
        (remittance,) = listed
        assert (remittance["payee_npi"], remittance["claim_count"]) == ("1497775530", 1)
        assert Decimal(remittance["net_fee"]) == Decimal("116.85")
        x12 = client.get(f"{adjudication}/v1/remittances/{remittance['id']}")
        assert x12.status_code == 200, x12.text
        advice = x12.text

        eob = _exact(client.get(f"{intake}/v1/claims/{claim_id}/fhir/ExplanationOfBenefit"))

    # The 835: valid by pyx12's own map, and it balances.
    checked = read_interchange(advice)
    assert checked.guide == "005010X221A1"
    assert checked.errors == []
    (bpr,) = segments(advice, "BPR")
    (clp,) = segments(advice, "CLP")
    plb = sum(
        (Decimal(s[i]) for s in segments(advice, "PLB") for i in range(4, len(s), 2)),
        start=Decimal(0),
    )
    assert Decimal(bpr[2]) == Decimal(clp[4]) - plb == Decimal(remittance["total_paid"])
    assert clp[1] == claim_id
    svc = {
        s[1].removeprefix("AD:"): (Decimal(s[2]), Decimal(s[3])) for s in segments(advice, "SVC")
    }

    # The ExplanationOfBenefit: the four lines, each with intake's and adjudication's amounts.
    assert eob["resourceType"] == "ExplanationOfBenefit"
    assert eob["payment"]["amount"]["value"] == Decimal(clp[4])
    items = eob["item"]
    assert [i["productOrService"]["coding"][0]["code"] for i in items] == PROCEDURES
    for item, line in zip(items, claim["lines"], strict=True):
        stated = line["adjudication"]["amounts"]
        amounts = _amounts(item["adjudication"])
        assert item["unitPrice"]["value"] == Decimal(line["provider_fees"])
        assert amounts == {(ADJUDICATION, c): Decimal(v) for c, v in stated.items()} | {
            (CLAIMFLOW_ADJUDICATION, "net-fee"): Decimal(line["net_fee"])
        }
        code = line["submitted_procedure"]
        assert svc[code] == (amounts[ADJUDICATION, "submitted"], amounts[ADJUDICATION, "benefit"])
    assert [Decimal(line["net_fee"]) for line in claim["lines"]] == [
        Decimal(v) for v in ("0.00", "0.00", "81.25", "35.60")
    ]
    # docs/fhir.md: the net fee total is a `total` of claimflow's category net-fee.
    assert _amounts(eob["total"])[CLAIMFLOW_ADJUDICATION, "net-fee"] == Decimal("116.85")
