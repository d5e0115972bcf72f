"""FHIR views of a stored claim: Claim, ClaimResponse and ExplanationOfBenefit (FHIR R4B).

Pure: a claim as `read_claim` returns it in, `fhir.resources.R4B` models out, and their JSON.
fhir.resources 8.x ships R5, R4B and STU3 but not R4 4.0.1; R4B changed none of these three
resources (its changes are in the medication-definition, evidence and subscription resources),
so what this module emits reads the same under R4. See docs/fhir.md.

The patient, coverage, insurer and providers are contained resources: claimflow keeps no
Patient or Practitioner records of its own, so there is nothing to reference outside the
resource. The subscriber number is PHI and appears here on purpose (the body of an
authorised, audited read); nothing in this module logs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from fhir.resources.R4B.claim import Claim, ClaimCareTeam, ClaimInsurance, ClaimItem
from fhir.resources.R4B.claimresponse import (
    ClaimResponse,
    ClaimResponseInsurance,
    ClaimResponseItem,
    ClaimResponseItemAdjudication,
    ClaimResponsePayment,
    ClaimResponseTotal,
)
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.coverage import Coverage, CoverageClass
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.explanationofbenefit import (
    ExplanationOfBenefit,
    ExplanationOfBenefitCareTeam,
    ExplanationOfBenefitInsurance,
    ExplanationOfBenefitItem,
    ExplanationOfBenefitItemAdjudication,
    ExplanationOfBenefitPayment,
    ExplanationOfBenefitTotal,
)
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.money import Money
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from pydantic import BaseModel

from claimflow_shared.money import ZERO

FHIR_MEDIA_TYPE = "application/fhir+json"
CURRENCY = "USD"

# Code systems and identifier namespaces.
CDT = "http://www.ada.org/cdt"
ORAL_CAVITY = "http://terminology.hl7.org/CodeSystem/ADAAreaOralCavitySystem"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
CARC = "https://x12.org/codes/claim-adjustment-reason-codes"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
PROCESS_PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
CARE_TEAM_ROLE = "http://terminology.hl7.org/CodeSystem/claimcareteamrole"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
PAYMENT_TYPE = "http://terminology.hl7.org/CodeSystem/ex-paymenttype"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
NPI = "http://hl7.org/fhir/sid/us-npi"
URI = "urn:ietf:rfc:3986"
C4BB = "http://hl7.org/fhir/us/carin-bb"
C4BB_IDENTIFIER_TYPE = f"{C4BB}/CodeSystem/C4BBIdentifierType"
C4BB_DISCRIMINATOR = f"{C4BB}/CodeSystem/C4BBAdjudicationDiscriminator"
C4BB_STATUS = f"{C4BB}/CodeSystem/C4BBPayerAdjudicationStatus"
# The profile with its major.minor version: the Oral profile's EOB-oral-meta-profile-version.
C4BB_ORAL_PROFILE = f"{C4BB}/StructureDefinition/C4BB-ExplanationOfBenefit-Oral|2.0.0"
CLAIMFLOW = "https://claimflow.dev/fhir"
EXTERNAL_ID = f"{CLAIMFLOW}/sid/external-claim-id"
SUBSCRIBER = f"{CLAIMFLOW}/sid/subscriber-number"
CLAIMFLOW_ADJUDICATION = f"{CLAIMFLOW}/CodeSystem/adjudication"
# The payer: claimflow is the payer's own claims system, so the insurer is itself.
INSURER_NAME = "claimflow"

# ADA area of the oral cavity (the ADA dental claim form's codes), which the CARIN BB Oral
# profile binds item.bodySite to next to tooth numbers. subSite is bound to tooth surfaces,
# and a quadrant is not a surface.
QUADRANTS: dict[str, tuple[str, str]] = {
    "UR": ("10", "Upper right quadrant"),
    "UL": ("20", "Upper left quadrant"),
    "LL": ("30", "Lower left quadrant"),
    "LR": ("40", "Lower right quadrant"),
}
# The FHIR ClaimResponse categories adjudication stores per line, in the order shown.
AMOUNT_CATEGORIES: dict[str, str] = {
    "submitted": "Submitted Amount",
    "eligible": "Eligible Amount",
    "deductible": "Deductible",
    "copay": "CoPay",
    "benefit": "Benefit Amount",
}

FhirResourceName = Literal["Claim", "ClaimResponse", "ExplanationOfBenefit"]


class NotAdjudicatedError(ValueError):
    """The claim has no adjudication yet: there is no response or EOB to show."""


def _coding(system: str, code: str, display: str | None = None) -> Coding:
    return Coding(system=system, code=code, display=display)


def _concept(system: str, code: str, display: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=[_coding(system, code, display)])


def _money(value: Decimal | str) -> Money:
    # Adjudication amounts arrive as JSON decimal strings ("52.00"), stored ones as Decimal.
    return Money(value=Decimal(value), currency=CURRENCY)


def _local(resource_id: str) -> Reference:
    return Reference(reference=f"#{resource_id}")


def _status(claim: Mapping[str, Any]) -> str:
    # A reversal takes the claim's effects back: the resources are no longer in force.
    return "cancelled" if claim["status"] == "reversed" else "active"


def _lines(claim: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return sorted(claim["lines"], key=lambda line: line["line_no"])


def _identifiers(claim: Mapping[str, Any], *, typed: bool) -> list[Identifier]:
    """The claim id (CARIN's unique claim id when `typed`) and the submitter's external id."""
    ids = [
        Identifier(
            type=_concept(C4BB_IDENTIFIER_TYPE, "uc", "Unique Claim ID") if typed else None,
            system=URI,
            value=f"urn:uuid:{claim['id']}",
        )
    ]
    if claim.get("external_id"):
        ids.append(Identifier(system=EXTERNAL_ID, value=claim["external_id"]))
    return ids


def _claim_reference(claim: Mapping[str, Any]) -> Reference:
    """A logical reference: the Claim view has no FHIR server address of its own."""
    return Reference(
        type="Claim", identifier=Identifier(system=URI, value=f"urn:uuid:{claim['id']}")
    )


def _npis(lines: Sequence[Mapping[str, Any]]) -> list[str]:
    """Distinct provider NPIs in line order; the first line's is the billing provider, as in
    adjudication."""
    return list(dict.fromkeys(line["provider_npi"] for line in lines))


def _provider_id(index: int) -> str:
    return f"provider-{index + 1}"


def _contained(claim: Mapping[str, Any]) -> list[Resource]:
    lines = _lines(claim)
    member = lines[0]
    patient = Patient(
        id="patient",
        identifier=[
            Identifier(
                type=_concept(IDENTIFIER_TYPE, "MB", "Member Number"),
                system=SUBSCRIBER,
                value=member["subscriber_number"],
            )
        ],
    )
    coverage = Coverage(
        id="coverage",
        status="active",
        subscriberId=member["subscriber_number"],
        beneficiary=_local("patient"),
        payor=[_local("insurer")],
        class_fhir=[
            CoverageClass(
                type=_concept(COVERAGE_CLASS, "group", "Group"), value=member["plan_group"]
            )
        ],
    )
    insurer = Organization(id="insurer", active=True, name=INSURER_NAME)
    providers = [
        Practitioner(id=_provider_id(i), identifier=[Identifier(system=NPI, value=npi)])
        for i, npi in enumerate(_npis(lines))
    ]
    return [patient, coverage, insurer, *providers]


def _care_team_sequence(lines: Sequence[Mapping[str, Any]], line: Mapping[str, Any]) -> int:
    return _npis(lines).index(line["provider_npi"]) + 1


def _care_team(
    lines: Sequence[Mapping[str, Any]],
    kind: type[ClaimCareTeam] | type[ExplanationOfBenefitCareTeam],
) -> list[Any]:
    return [
        kind(
            sequence=i + 1,
            provider=_local(_provider_id(i)),
            role=_concept(CARE_TEAM_ROLE, "primary", "Primary provider"),
        )
        for i in range(len(_npis(lines)))
    ]


def _body_site(line: Mapping[str, Any]) -> CodeableConcept | None:
    quadrant = line.get("quadrant")
    if not quadrant:
        return None
    code, display = QUADRANTS[quadrant]
    return _concept(ORAL_CAVITY, code, display)


def _procedure(line: Mapping[str, Any]) -> CodeableConcept:
    return _concept(CDT, line["submitted_procedure"])


def _billable_period(lines: Sequence[Mapping[str, Any]]) -> Period:
    dates: list[date] = [line["service_date"] for line in lines]
    return Period(start=min(dates), end=max(dates))


def _adjudication(claim: Mapping[str, Any]) -> Mapping[str, Any]:
    found: Mapping[str, Any] | None = claim.get("adjudication")
    if found is None:
        raise NotAdjudicatedError("the claim has not been adjudicated yet")
    return found


def _adjudicated_at(adjudication: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(adjudication["adjudicated_at"])


AdjudicationKind = type[ClaimResponseItemAdjudication] | type[ExplanationOfBenefitItemAdjudication]


def _line_adjudication(
    line: Mapping[str, Any], kind: AdjudicationKind, *, payment_status: bool
) -> list[Any]:
    """The line's amounts per FHIR category, claimflow's net fee, and one entry per CARC
    (CARIN's `adjustmentreason` category, the code as the reason). `payment_status` adds
    CARIN's benefit payment status, `other`: claimflow does not track networks."""
    result = line.get("adjudication") or {}
    amounts: Mapping[str, str] = result.get("amounts", {})
    entries = [
        kind(category=_concept(ADJUDICATION, code, display), amount=_money(amounts[code]))
        for code, display in AMOUNT_CATEGORIES.items()
        if code in amounts
    ]
    entries.append(
        kind(
            category=_concept(CLAIMFLOW_ADJUDICATION, "net-fee", "claimflow net fee"),
            amount=_money(line["net_fee"]),
        )
    )
    entries += [
        kind(
            category=_concept(C4BB_DISCRIMINATOR, "adjustmentreason", "Adjustment Reason"),
            reason=_concept(CARC, code),
        )
        for code in result.get("reason_codes", [])
    ]
    if payment_status:
        entries.append(
            kind(
                category=_concept(C4BB_DISCRIMINATOR, "benefitpaymentstatus"),
                reason=_concept(C4BB_STATUS, "other", "Other"),
            )
        )
    return entries


def _sum(lines: Iterable[Mapping[str, Any]], category: str) -> Decimal:
    return sum(
        (
            Decimal((line.get("adjudication") or {}).get("amounts", {}).get(category, ZERO))
            for line in lines
        ),
        start=ZERO,
    )


def _totals(
    claim: Mapping[str, Any],
    adjudication: Mapping[str, Any],
    kind: type[ClaimResponseTotal] | type[ExplanationOfBenefitTotal],
) -> list[Any]:
    """Claim totals per category: submitted, eligible and benefit as adjudication stated them,
    deductible and copay summed over the lines (adjudication states no total for them)."""
    lines = _lines(claim)
    stated: Mapping[str, str] = adjudication["totals"]
    values = {
        "submitted": Decimal(stated["submitted"]),
        "eligible": Decimal(stated["eligible"]),
        "deductible": _sum(lines, "deductible"),
        "copay": _sum(lines, "copay"),
        "benefit": Decimal(stated["benefit"]),
    }
    totals = [
        kind(category=_concept(ADJUDICATION, code, display), amount=_money(values[code]))
        for code, display in AMOUNT_CATEGORIES.items()
    ]
    totals.append(
        kind(
            category=_concept(CLAIMFLOW_ADJUDICATION, "net-fee", "claimflow net fee"),
            amount=_money(claim["totals"]["net_fee"]),
        )
    )
    return totals


def _charged(lines: Iterable[Mapping[str, Any]]) -> Decimal:
    return sum((Decimal(line["provider_fees"]) for line in lines), start=ZERO)


def build_claim(claim: Mapping[str, Any]) -> Claim:
    """The claim as submitted: each line an item at the provider's fee, with its CDT code,
    service date and quadrant."""
    lines = _lines(claim)
    return Claim(
        id=str(claim["id"]),
        meta=Meta(lastUpdated=claim["updated_at"]),
        contained=_contained(claim),
        identifier=_identifiers(claim, typed=False),
        status=_status(claim),
        type=_concept(CLAIM_TYPE, "oral", "Oral"),
        use="claim",
        patient=_local("patient"),
        billablePeriod=_billable_period(lines),
        created=claim["created_at"],
        insurer=_local("insurer"),
        provider=_local(_provider_id(0)),
        priority=_concept(PROCESS_PRIORITY, "normal", "Normal"),
        careTeam=_care_team(lines, ClaimCareTeam),
        insurance=[ClaimInsurance(sequence=1, focal=True, coverage=_local("coverage"))],
        item=[
            ClaimItem(
                sequence=line["line_no"],
                careTeamSequence=[_care_team_sequence(lines, line)],
                productOrService=_procedure(line),
                servicedDate=line["service_date"],
                unitPrice=_money(line["provider_fees"]),
                net=_money(line["provider_fees"]),
                bodySite=_body_site(line),
            )
            for line in lines
        ],
        total=_money(_charged(lines)),
    )


def build_claim_response(claim: Mapping[str, Any]) -> ClaimResponse:
    """Adjudication's answer: outcome, per-line amounts and CARC reasons, totals, and the
    payment once it was made. NotAdjudicatedError before adjudication."""
    adjudication = _adjudication(claim)
    lines = _lines(claim)
    payment = None
    if claim["status"] == "paid":
        payment = ClaimResponsePayment(
            type=_concept(PAYMENT_TYPE, "complete", "Complete"),
            amount=_money(adjudication["totals"]["benefit"]),
        )
    return ClaimResponse(
        id=str(claim["id"]),
        meta=Meta(lastUpdated=claim["updated_at"]),
        contained=_contained(claim),
        identifier=_identifiers(claim, typed=False),
        status=_status(claim),
        type=_concept(CLAIM_TYPE, "oral", "Oral"),
        use="claim",
        patient=_local("patient"),
        created=_adjudicated_at(adjudication),
        insurer=_local("insurer"),
        requestor=_local(_provider_id(0)),
        request=_claim_reference(claim),
        outcome=adjudication["outcome"],
        insurance=[ClaimResponseInsurance(sequence=1, focal=True, coverage=_local("coverage"))],
        item=[
            ClaimResponseItem(
                itemSequence=line["line_no"],
                adjudication=_line_adjudication(
                    line, ClaimResponseItemAdjudication, payment_status=False
                ),
            )
            for line in lines
        ],
        total=_totals(claim, adjudication, ClaimResponseTotal),
        payment=payment,
    )


def _eob_payment(claim: Mapping[str, Any], adjudication: Mapping[str, Any]) -> Any:
    """CARIN's claim payment status: denied for a rejected claim, paid (partially when a line
    was denied) once the payment completed; none while it is pending or after a reversal."""
    if claim["status"] == "rejected":
        return ExplanationOfBenefitPayment(
            type=_concept(C4BB_STATUS, "denied", "Denied"), amount=_money(ZERO)
        )
    if claim["status"] != "paid":
        return None
    code, display = (
        ("partiallypaid", "Partially Paid")
        if adjudication["outcome"] == "partial"
        else ("paid", "Paid")
    )
    return ExplanationOfBenefitPayment(
        type=_concept(C4BB_STATUS, code, display),
        amount=_money(adjudication["totals"]["benefit"]),
    )


def build_explanation_of_benefit(claim: Mapping[str, Any]) -> ExplanationOfBenefit:
    """The claim and its adjudication in one resource, shaped by the CARIN Blue Button Oral
    profile as far as claimflow's data goes (docs/fhir.md lists the gaps).
    NotAdjudicatedError before adjudication."""
    adjudication = _adjudication(claim)
    lines = _lines(claim)
    return ExplanationOfBenefit(
        id=str(claim["id"]),
        meta=Meta(lastUpdated=claim["updated_at"], profile=[C4BB_ORAL_PROFILE]),
        contained=_contained(claim),
        identifier=_identifiers(claim, typed=True),
        status=_status(claim),
        type=_concept(CLAIM_TYPE, "oral", "Oral"),
        use="claim",
        patient=_local("patient"),
        billablePeriod=_billable_period(lines),
        created=_adjudicated_at(adjudication),
        insurer=_local("insurer"),
        provider=_local(_provider_id(0)),
        claim=_claim_reference(claim),
        careTeam=_care_team(lines, ExplanationOfBenefitCareTeam),
        outcome=adjudication["outcome"],
        insurance=[ExplanationOfBenefitInsurance(focal=True, coverage=_local("coverage"))],
        item=[
            ExplanationOfBenefitItem(
                sequence=line["line_no"],
                careTeamSequence=[_care_team_sequence(lines, line)],
                productOrService=_procedure(line),
                servicedDate=line["service_date"],
                unitPrice=_money(line["provider_fees"]),
                net=_money(line["provider_fees"]),
                bodySite=_body_site(line),
                adjudication=_line_adjudication(
                    line, ExplanationOfBenefitItemAdjudication, payment_status=True
                ),
            )
            for line in lines
        ],
        adjudication=[
            ExplanationOfBenefitItemAdjudication(
                category=_concept(C4BB_DISCRIMINATOR, "benefitpaymentstatus"),
                reason=_concept(C4BB_STATUS, "other", "Other"),
            )
        ],
        total=_totals(claim, adjudication, ExplanationOfBenefitTotal),
        payment=_eob_payment(claim, adjudication),
    )


BUILDERS = {
    "Claim": build_claim,
    "ClaimResponse": build_claim_response,
    "ExplanationOfBenefit": build_explanation_of_benefit,
}


def build(name: FhirResourceName, claim: Mapping[str, Any]) -> DomainResource:
    resource: DomainResource = BUILDERS[name](claim)
    return resource


# --- JSON with exact decimals ----------------------------------------------------------------
# fhir.resources serialises every FHIR decimal through float ("100.10" becomes 100.1, "0.00"
# becomes 0.0). FHIR decimals keep their precision, and money never passes through a binary
# float here, so the JSON is written from the models' own Decimal values instead.


def _exact(model: BaseModel, dumped: dict[str, Any]) -> None:
    """Put the model's Decimal values back into its (alias-keyed) dump, in place."""
    for name, field in type(model).model_fields.items():
        key = field.alias or name
        if key not in dumped:
            continue
        value = getattr(model, name)
        if isinstance(value, Decimal):
            dumped[key] = value
        elif isinstance(value, BaseModel):
            _exact(value, dumped[key])
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Decimal):
                    dumped[key][i] = item
                elif isinstance(item, BaseModel):
                    _exact(item, dumped[key][i])


def _encode(value: Any) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a FHIR decimal is finite")
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, float):
        raise TypeError("a float reached FHIR JSON: decimals must stay Decimal")
    return json.dumps(value)


def to_json(resource: DomainResource) -> bytes:
    """The resource as FHIR JSON, decimals written exactly as held (116.85, 0.00)."""
    dumped = resource.model_dump(mode="json", exclude_comments=True)
    _exact(resource, dumped)
    return _encode(dumped).encode()
