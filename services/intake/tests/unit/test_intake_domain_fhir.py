"""FHIR views built from a claim_1234-like read: exact amounts, codes and systems, models
that validate and JSON that round-trips through fhir.resources without losing a cent."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.explanationofbenefit import ExplanationOfBenefit

from claimflow_intake.domain import fhir

D = Decimal
CLAIM_ID = uuid.UUID("7d0e4ae2-5a1f-4c43-9c56-1a1f0e7c2b11")
# examples/claim_1234.csv: (code, quadrant, provider fees, allowed fees, coinsurance, net fee)
LINES = [
    ("D0180", None, "100.00", "100.00", "0.00", "0.00"),
    ("D0210", None, "108.00", "108.00", "0.00", "0.00"),
    ("D4346", None, "130.00", "65.00", "16.25", "81.25"),
    ("D4211", "UR", "178.00", "178.00", "35.60", "35.60"),
]
# What adjudication could have answered: (outcome, reasons, submitted, eligible, deductible,
# copay, benefit) per line.
RESULTS = [
    ("approved", [], "100.00", "100.00", "0.00", "0.00", "100.00"),
    ("approved", [], "108.00", "108.00", "0.00", "0.00", "108.00"),
    ("reduced", ["45"], "130.00", "65.00", "0.00", "0.00", "52.00"),
    ("reduced", ["45", "119"], "178.00", "150.00", "50.00", "10.00", "72.05"),
]


def stored_claim(status: str = "paid", adjudicated: bool = True, **changes: Any) -> dict[str, Any]:
    """The dict `read_claim` returns: stored values as Decimal and date, adjudication as the
    JSON intake stores from the `claims.adjudicated` event (amounts as decimal strings)."""
    lines = []
    for number, (code, quadrant, fees, allowed, coins, net) in enumerate(LINES, start=1):
        outcome, reasons, *amounts = RESULTS[number - 1]
        keys = ("submitted", "eligible", "deductible", "copay", "benefit")
        lines.append(
            {
                "claim_id": CLAIM_ID,
                "line_no": number,
                "service_date": date(2018, 3, 28),
                "submitted_procedure": code,
                "quadrant": quadrant,
                "plan_group": "GRP-1000",
                "subscriber_number": "3730189502",
                "provider_npi": "1497775530",
                "provider_fees": D(fees),
                "allowed_fees": D(allowed),
                "member_coinsurance": D(coins),
                "member_copay": D("0.00"),
                "net_fee": D(net),
                "adjudication": (
                    {
                        "outcome": outcome,
                        "reason_codes": reasons,
                        "amounts": dict(zip(keys, amounts, strict=True)),
                    }
                    if adjudicated
                    else None
                ),
            }
        )
    at = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    claim: dict[str, Any] = {
        "id": CLAIM_ID,
        "external_id": "1234",
        "status": status,
        "status_rank": 2,
        "submitted_by": "clearinghouse",
        "organisation": "clearinghouse",
        "created_at": datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        "updated_at": at,
        "line_count": 4,
        "net_fee_total": D("116.85"),
        "totals": {"net_fee": D("116.85")},
        "adjudication": (
            {
                "outcome": "complete",
                "plan_id": "default",
                "plan_version": 3,
                "adjudicated_at": at.isoformat(),
                "totals": {
                    "net_fee": "116.85",
                    "submitted": "516.00",
                    "eligible": "423.00",
                    "benefit": "332.05",
                },
            }
            if adjudicated
            else None
        ),
        "lines": lines,
    }
    return claim | changes


def exact(resource: Any) -> dict[str, Any]:
    """The resource's JSON, numbers read as Decimal (never through a float)."""
    parsed: dict[str, Any] = json.loads(fhir.to_json(resource), parse_float=Decimal)
    return parsed


def codings(concept: Any) -> list[tuple[str, str]]:
    return [(c.system, c.code) for c in concept.coding]


def amounts(adjudications: Any) -> dict[str, Decimal]:
    return {
        a.category.coding[0].code: a.amount.value for a in adjudications if a.amount is not None
    }


def reasons(adjudications: Any) -> list[tuple[str, str]]:
    return [
        (a.reason.coding[0].system, a.reason.coding[0].code)
        for a in adjudications
        if a.category.coding[0].code == "adjustmentreason"
    ]


def test_claim_items_carry_cdt_codes_fees_and_the_quadrant() -> None:
    claim = fhir.build_claim(stored_claim(status="queued", adjudicated=False))

    assert [codings(item.productOrService) for item in claim.item] == [
        [(fhir.CDT, code)] for code, *_ in LINES
    ]
    assert [item.net.value for item in claim.item] == [D(fees) for _, _, fees, *_ in LINES]
    assert all(item.net.currency == "USD" for item in claim.item)
    assert claim.total.value == D("516.00")
    # Only the D4211 line names a quadrant: the ADA oral-cavity area for upper right is 10.
    assert [item.bodySite for item in claim.item[:3]] == [None, None, None]
    assert codings(claim.item[3].bodySite) == [(fhir.ORAL_CAVITY, "10")]
    assert claim.item[3].subSite is None
    assert [i.servicedDate for i in claim.item] == [date(2018, 3, 28)] * 4
    assert (claim.status, claim.use) == ("active", "claim")
    assert codings(claim.type) == [("http://terminology.hl7.org/CodeSystem/claim-type", "oral")]
    assert [(i.system, i.value) for i in claim.identifier] == [
        ("urn:ietf:rfc:3986", f"urn:uuid:{CLAIM_ID}"),
        (fhir.EXTERNAL_ID, "1234"),
    ]


def test_subscriber_plan_and_provider_are_contained_and_referenced() -> None:
    claim = fhir.build_claim(stored_claim())
    contained = {r.id: r for r in claim.contained}

    assert claim.patient.reference == "#patient"
    patient = contained["patient"]
    assert [(i.system, i.value) for i in patient.identifier] == [(fhir.SUBSCRIBER, "3730189502")]
    assert codings(patient.identifier[0].type) == [(fhir.IDENTIFIER_TYPE, "MB")]
    coverage = contained["coverage"]
    assert coverage.beneficiary.reference == "#patient"
    assert [c.value for c in coverage.class_fhir] == ["GRP-1000"]
    assert claim.insurance[0].coverage.reference == "#coverage"
    assert claim.provider.reference == "#provider-1"
    assert [(i.system, i.value) for i in contained["provider-1"].identifier] == [
        (fhir.NPI, "1497775530")
    ]
    # Every contained resource is referenced from the resource (FHIR's dom-3).
    text = fhir.to_json(claim).decode()
    assert all(f'"reference":"#{rid}"' in text for rid in contained)


def test_lines_of_two_providers_make_a_care_team_of_two() -> None:
    read = stored_claim()
    read["lines"][2]["provider_npi"] = "1234567893"
    claim = fhir.build_claim(read)

    assert [m.provider.reference for m in claim.careTeam] == ["#provider-1", "#provider-2"]
    assert [i.careTeamSequence for i in claim.item] == [[1], [1], [2], [1]]


def test_claim_response_has_every_category_exact_and_carc_reasons() -> None:
    response = fhir.build_claim_response(stored_claim())

    assert response.outcome == "complete"
    assert [item.itemSequence for item in response.item] == [1, 2, 3, 4]
    for item, (_, codes, *values) in zip(response.item, RESULTS, strict=True):
        keys = ("submitted", "eligible", "deductible", "copay", "benefit")
        expected = {k: D(v) for k, v in zip(keys, values, strict=True)}
        got = amounts(item.adjudication)
        assert {k: got[k] for k in keys} == expected
        assert reasons(item.adjudication) == [(fhir.CARC, code) for code in codes]
        systems = {a.category.coding[0].system for a in item.adjudication}
        assert fhir.ADJUDICATION in systems
    assert [amounts(i.adjudication)["net-fee"] for i in response.item] == [
        D("0.00"),
        D("0.00"),
        D("81.25"),
        D("35.60"),
    ]
    totals = amounts(response.total)
    assert totals == {
        "submitted": D("516.00"),
        "eligible": D("423.00"),
        "deductible": D("50.00"),
        "copay": D("10.00"),
        "benefit": D("332.05"),
        "net-fee": D("116.85"),
    }
    assert response.payment.amount.value == D("332.05")
    assert response.created == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    assert response.request.identifier.value == f"urn:uuid:{CLAIM_ID}"


def test_payment_shows_only_once_paid() -> None:
    assert fhir.build_claim_response(stored_claim(status="adjudicated")).payment is None
    assert fhir.build_explanation_of_benefit(stored_claim(status="adjudicated")).payment is None
    reversed_ = fhir.build_explanation_of_benefit(stored_claim(status="reversed"))
    assert (reversed_.payment, reversed_.status) == (None, "cancelled")


def test_a_rejected_claim_is_an_error_outcome_with_a_denied_payment() -> None:
    read = stored_claim(status="rejected")
    read["adjudication"] = read["adjudication"] | {"outcome": "error"}
    eob = fhir.build_explanation_of_benefit(read)

    assert eob.outcome == "error"
    assert codings(eob.payment.type) == [(fhir.C4BB_STATUS, "denied")]
    assert eob.payment.amount.value == D("0.00")


def test_the_eob_fills_the_carin_oral_profiles_required_elements() -> None:
    eob = fhir.build_explanation_of_benefit(stored_claim())

    assert eob.meta.profile == [
        "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Oral|2.0.0"
    ]
    assert eob.meta.lastUpdated is not None
    unique = [i for i in eob.identifier if i.type is not None]
    assert [codings(i.type) for i in unique] == [[(fhir.C4BB_IDENTIFIER_TYPE, "uc")]]
    assert unique[0].value == f"urn:uuid:{CLAIM_ID}"
    assert codings(eob.type) == [("http://terminology.hl7.org/CodeSystem/claim-type", "oral")]
    assert (eob.status, eob.use, eob.outcome) == ("active", "claim", "complete")
    assert eob.billablePeriod.start == date(2018, 3, 28)
    assert (eob.patient.reference, eob.insurer.reference) == ("#patient", "#insurer")
    provider = next(r for r in eob.contained if f"#{r.id}" == eob.provider.reference)
    assert provider.get_resource_type() == "Practitioner"  # Oral: provider only C4BBPractitioner
    assert [(i.focal, i.coverage.reference) for i in eob.insurance] == [(True, "#coverage")]
    assert len(eob.item) >= 1
    for item in eob.item:
        assert all(a.category is not None for a in item.adjudication)
        categories = [a.category.coding[0].code for a in item.adjudication]
        assert categories.count("benefitpaymentstatus") == 1
        assert {"submitted", "eligible", "benefit"} <= set(categories)
        assert item.productOrService.coding[0].system == fhir.CDT
    assert [a.category.coding[0].code for a in eob.adjudication] == ["benefitpaymentstatus"]
    assert codings(eob.payment.type) == [(fhir.C4BB_STATUS, "paid")]
    assert eob.payment.amount.value == D("332.05")
    assert amounts(eob.total)["benefit"] == D("332.05")


def test_codes_are_from_each_elements_value_set() -> None:
    """fhir.resources checks cardinality and datatypes, not codes: status, use and outcome are
    checked here against the code lists the models carry."""
    for status in ("queued", "adjudicated", "rejected", "paid", "payment_failed", "reversed"):
        read = stored_claim(status=status)
        for resource in (
            fhir.build_claim(read),
            fhir.build_claim_response(read),
            fhir.build_explanation_of_benefit(read),
        ):
            fields = type(resource).model_fields
            for name in ("status", "use", "outcome"):
                if name in fields and getattr(resource, name) is not None:
                    allowed = (fields[name].json_schema_extra or {})["enum_values"]  # type: ignore[index]
                    assert getattr(resource, name) in allowed, (status, name)


@pytest.mark.parametrize("name", ["ClaimResponse", "ExplanationOfBenefit"])
def test_no_response_or_eob_before_adjudication(name: fhir.FhirResourceName) -> None:
    queued = stored_claim(status="queued", adjudicated=False)
    with pytest.raises(fhir.NotAdjudicatedError):
        fhir.build(name, queued)
    assert fhir.build("Claim", queued).get_resource_type() == "Claim"


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("Claim", Claim),
        ("ClaimResponse", ClaimResponse),
        ("ExplanationOfBenefit", ExplanationOfBenefit),
    ],
)
def test_json_is_exact_and_round_trips_through_the_models(
    name: fhir.FhirResourceName, model: Any
) -> None:
    resource = fhir.build(name, stored_claim())
    text = fhir.to_json(resource).decode()

    # Decimals as written, trailing zeros and all: never 0.0 or 100.1.
    assert '"value":0.00,' in text or name == "Claim"
    assert '"value":516.00,' in text
    assert "0.0," not in text.replace("0.00,", "")
    parsed = exact(resource)
    again = model.model_validate(parsed)
    assert exact(again) == parsed
    assert again.model_dump() == resource.model_dump()
    assert parsed["resourceType"] == name


def test_a_claim_response_json_keeps_every_cent() -> None:
    parsed = exact(fhir.build_claim_response(stored_claim()))
    totals = {t["category"]["coding"][0]["code"]: t["amount"]["value"] for t in parsed["total"]}
    assert totals["net-fee"] == D("116.85")
    assert str(totals["net-fee"]) == "116.85"
    assert str(totals["copay"]) == "10.00"
    line_4 = parsed["item"][3]["adjudication"]
    assert {
        a["category"]["coding"][0]["code"]: str(a["amount"]["value"])
        for a in line_4
        if "amount" in a
    } == {
        "submitted": "178.00",
        "eligible": "150.00",
        "deductible": "50.00",
        "copay": "10.00",
        "benefit": "72.05",
        "net-fee": "35.60",
    }


def test_a_float_never_reaches_the_json() -> None:
    with pytest.raises(TypeError):
        fhir._encode({"value": 1.5})
