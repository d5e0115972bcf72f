"""The whole pipeline as real processes, as `make run` starts them: intake API and worker,
adjudication API and worker, the fake payments system, audit-log API and worker, on the
session's PostgreSQL and Kafka, each exporting spans over OTLP/HTTP to the real Collector with
the project's gateway configuration, which exports to a receiver on loopback. Started once for
this module; each test follows its own claim.

- One claim, one trace: a claim is submitted and followed until it is paid and audited; then
  the trace is checked as a tree (who is whose parent, across Kafka), for the messaging
  conventions, and for PHI.
- An X12 837 Dental round trip: examples/x12/claim_1234.837 goes in through intake's
  /v1/claims/x12 (999 accepted), is adjudicated and paid by the saga, is remitted by
  adjudication's batch command (an 835 that pyx12's stock 005010X221A1 map passes and that
  balances), and reads back from intake as a FHIR ExplanationOfBenefit whose lines carry the
  amounts intake and adjudication stated.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from claimflow_devstack.otlp_receiver import ReceivedSpan
from claimflow_devstack.testing import run_cli
from claimflow_shared.x12 import read_interchange

from .conftest import API_KEY, Pipeline, TracedPipeline, wait_for

SUBSCRIBER = "SUB-7730189502"
SERVICE_DATE = "2019-07-14"
# Every spelling of the service date that could leak: ISO, US short and long.
DATE_FORMS = (SERVICE_DATE, "7/14/19", "7/14/2019", "07/14/2019", "20190714")
CLAIM = {
    "lines": [
        {
            "service_date": SERVICE_DATE,
            "submitted_procedure": "D4346",
            "plan_group": "GRP-1000",
            "subscriber_number": SUBSCRIBER,
            # Another provider than the X12 round trip's claim: its remittance stays its own.
            "provider_npi": "1234567893",
            "provider_fees": "130.00",
            "allowed_fees": "65.00",
            "member_coinsurance": "16.25",
            "member_copay": "0.00",
        }
    ]
}
AUDITED_TYPES = {
    "io.claimflow.claim.submitted.v1",
    "io.claimflow.claim.adjudicated.v1",
    "io.claimflow.payment.requested.v1",
    "io.claimflow.payment.completed.v1",
}


def _submit_and_follow(stack: TracedPipeline) -> str:
    auth = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(timeout=10, headers=auth) as client:
        response = client.post(f"{stack.urls['intake']}/v1/claims", json=CLAIM)
        assert response.status_code == 202, response.text
        claim_id: str = response.json()["id"]

        def audited() -> bool:
            timeline = client.get(f"{stack.urls['audit-log']}/v1/audit/claims/{claim_id}")
            events = timeline.json().get("events", []) if timeline.status_code == 200 else []
            return {e["type"] for e in events} >= AUDITED_TYPES

        def paid() -> bool:
            # Each poll that lists the claim records its access, in the poll's own trace.
            page = client.get(f"{stack.urls['intake']}/v1/claims", params={"status": "paid"})
            return claim_id in {item["id"] for item in page.json()["items"]}

        # Five consumer groups form first; on a busy two-core machine that takes a while.
        wait_for(audited, 180, "the claim's audit timeline")
        wait_for(paid, 60, "intake seeing the claim paid")
    return claim_id


def _one(spans: list[ReceivedSpan], service: str, kind: str, name: str) -> ReceivedSpan:
    found = [s for s in spans if (s.service, s.kind, s.name) == (service, kind, name)]
    assert len(found) == 1, f"{len(found)} {kind} span(s) {name!r} of {service}: {found}"
    return found[0]


def _has_expected_spans(spans: list[ReceivedSpan], expected: list[tuple[str, str, str]]) -> bool:
    present = {(s.service, s.kind, s.name) for s in spans}
    return all(e in present for e in expected)


def test_a_claim_is_one_trace_from_the_http_request_to_the_audit_log(
    pipeline: TracedPipeline,
) -> None:
    stack = pipeline
    claim_id = _submit_and_follow(stack)
    topic = {t: f"{stack.topic_prefix}{t}" for t in ("claims.submitted", "claims.adjudicated")}
    topic |= {t: f"{stack.topic_prefix}{t}" for t in ("payments.requested", "payments.completed")}

    def roots() -> list[ReceivedSpan]:
        return [
            s
            for s in stack.receiver.spans()
            if (s.service, s.kind, s.name) == ("intake", "server", "POST /v1/claims")
        ]

    # The Collector batches for up to 5 s before it exports.
    wait_for(lambda: bool(roots()), 30, "the Collector exporting the claim's first span")
    (root,) = roots()
    trace_id = root.trace_id
    expected = [
        ("intake", "producer", f"{topic['claims.submitted']} publish"),
        ("adjudication", "consumer", f"{topic['claims.submitted']} process"),
        ("adjudication", "producer", f"{topic['claims.adjudicated']} publish"),
        ("adjudication", "producer", f"{topic['payments.requested']} publish"),
        ("adjudication", "consumer", f"{topic['payments.completed']} process"),
        ("intake", "consumer", f"{topic['claims.adjudicated']} process"),
        ("intake", "consumer", f"{topic['payments.completed']} process"),
    ] + [("audit-log", "consumer", f"{topic[t]} process") for t in topic]
    wait_for(
        lambda: _has_expected_spans(stack.receiver.spans(trace_id), expected),
        30,
        "every service exporting its spans of the claim",
    )
    spans = stack.receiver.spans(trace_id)
    by_id = {s.span_id: s for s in spans}

    # A tree: the intake HTTP span is the only root, every other span hangs from it.
    assert root.parent_span_id is None
    assert [s for s in spans if s.parent_span_id is None] == [root]
    assert all(s.parent_span_id in by_id for s in spans if s is not root), "a span lost its parent"

    def parent(span: ReceivedSpan) -> ReceivedSpan:
        assert span.parent_span_id is not None
        return by_id[span.parent_span_id]

    def descends_from(span: ReceivedSpan, ancestor: ReceivedSpan) -> bool:
        while span.parent_span_id is not None:
            span = parent(span)
            if span is ancestor:
                return True
        return False

    submitted = _one(spans, "intake", "producer", f"{topic['claims.submitted']} publish")
    assert descends_from(submitted, root)
    adjudicating = _one(spans, "adjudication", "consumer", f"{topic['claims.submitted']} process")
    assert parent(adjudicating) is submitted
    adjudicated = _one(spans, "adjudication", "producer", f"{topic['claims.adjudicated']} publish")
    requested = _one(spans, "adjudication", "producer", f"{topic['payments.requested']} publish")
    assert parent(adjudicated) is adjudicating
    assert parent(requested) is adjudicating
    # The payments system answers in the request's trace; adjudication settles under it.
    settling = _one(spans, "adjudication", "consumer", f"{topic['payments.completed']} process")
    assert parent(settling) is requested
    assert parent(_one(spans, "intake", "consumer", f"{topic['claims.adjudicated']} process")) is (
        adjudicated
    )
    assert parent(_one(spans, "intake", "consumer", f"{topic['payments.completed']} process")) is (
        requested
    )
    audit_parents = {
        "claims.submitted": submitted,
        "claims.adjudicated": adjudicated,
        "payments.requested": requested,
        "payments.completed": requested,
    }
    for name, producer in audit_parents.items():
        audited = _one(spans, "audit-log", "consumer", f"{topic[name]} process")
        assert parent(audited) is producer, f"audit-log's {name} span"

    # Messaging semantic conventions on every producer and consumer span.
    for span in spans:
        if span.kind not in ("producer", "consumer"):
            continue
        attributes = span.attributes
        destination = span.name.rsplit(" ", 1)[0]
        operation = "send" if span.kind == "producer" else "process"
        assert attributes["messaging.system"] == "kafka", span.name
        assert attributes["messaging.destination.name"] == destination, span.name
        assert attributes["messaging.operation.type"] == operation, span.name
        assert attributes["messaging.operation.name"] == operation, span.name
        assert attributes["messaging.kafka.message.key"] == claim_id, span.name
        if span.kind == "consumer":
            assert attributes["messaging.destination.partition.id"].isdigit(), span.name

    # No PHI in any attribute of any span any process exported, in this trace or another.
    for span in stack.receiver.spans():
        values = json.dumps(span.attributes)
        for phi in (SUBSCRIBER, *DATE_FORMS):
            assert phi not in values, f"PHI in the attributes of {span.service} {span.name}"

    # Every service logged its part of the claim under the claim's trace id, and no PHI.
    for process in ("intake-api", "intake-worker", "adjudication-worker", "audit-log-worker"):
        entries = stack.log_entries(process)
        assert any(e.get("trace_id") == trace_id for e in entries), f"{process} log"
        text = (stack.logs / f"{process}.log").read_text()
        assert SUBSCRIBER not in text, f"PHI in the {process} log"


# -- an X12 837 Dental claim round trip -------------------------------------------------

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

        # The pipeline is shared with other tests' claims, of other providers.
        listed = _exact(
            client.get(f"{adjudication}/v1/remittances", params={"payee_npi": "1497775530"})
        )["items"]
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
