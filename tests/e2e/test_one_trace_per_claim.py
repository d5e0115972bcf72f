"""One claim, one trace: every service's processes, as `make run` starts them, exporting OTLP.

The whole pipeline runs as real processes (intake API and worker, adjudication API and
worker, the fake payments system, audit-log API and worker) on the session's PostgreSQL and
Kafka, each exporting spans over OTLP/HTTP to a receiver this test runs on loopback. One
claim is submitted and followed until it is paid and audited; then the trace is checked as a
tree (who is whose parent, across Kafka), for the messaging conventions, and for PHI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import wait_for, whole_pipeline
from .otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

KEY = "e2e-trace-key"
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
            "provider_npi": "1497775530",
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


@dataclass
class TracedStack:
    urls: dict[str, str]
    logs: Path
    receiver: OtlpReceiver
    topic_prefix: str

    def log_entries(self, process: str) -> list[dict[str, Any]]:
        entries = []
        for line in (self.logs / f"{process}.log").read_text().splitlines():
            if line.startswith("{"):
                entries.append(json.loads(line))
        return entries


@pytest.fixture
def traced_stack(
    postgres_server: Any, kafka_broker: Any, topic_prefix: str, tmp_path: Path
) -> Iterator[TracedStack]:
    with otlp_receiver() as receiver:
        otlp = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            # Export within a fraction of a second instead of the default 5 s.
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        # Inside the receiver's block: the processes flush their last spans as they stop.
        with whole_pipeline(
            postgres_server, kafka_broker, topic_prefix, tmp_path / "logs", key=KEY, env=otlp
        ) as pipeline:
            yield TracedStack(pipeline.urls, pipeline.logs, receiver, topic_prefix)


def _submit_and_follow(stack: TracedStack) -> str:
    auth = {"Authorization": f"Bearer {KEY}"}
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
    traced_stack: TracedStack,
) -> None:
    stack = traced_stack
    claim_id = _submit_and_follow(stack)
    topic = {t: f"{stack.topic_prefix}{t}" for t in ("claims.submitted", "claims.adjudicated")}
    topic |= {t: f"{stack.topic_prefix}{t}" for t in ("payments.requested", "payments.completed")}

    (root,) = [
        s
        for s in stack.receiver.spans()
        if (s.service, s.kind, s.name) == ("intake", "server", "POST /v1/claims")
    ]
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
