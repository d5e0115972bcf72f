"""End to end: a claim's life through the services shows in its audit timeline, one trace."""

from __future__ import annotations

import secrets
from typing import Any

from claimflow_devstack.testing import bearer, claim_body, eventually

from ..conftest import AUDITOR_KEY
from .conftest import SUBMITTER_KEY, Pipeline, new_trace

# The steps of a claim's life, in the order the timeline shows them, with who acted.
EXPECTED = [
    ("io.claimflow.claim.submitted.v1", "clearinghouse"),
    ("io.claimflow.claim.adjudicated.v1", None),
    ("io.claimflow.payment.requested.v1", None),
    ("io.claimflow.payment.completed.v1", None),
    # Listed once paid (the poll below that finds it), then read: two PHI reads.
    ("io.claimflow.audit.access.v1", "clearinghouse"),
    ("io.claimflow.audit.access.v1", "clearinghouse"),
]


def traced(key: str, trace_id: str) -> dict[str, str]:
    # The client's own trace context: the API continues it, and so does every event after.
    return bearer(key) | {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


async def test_a_claims_timeline_shows_every_step_with_the_claims_trace(
    pipeline: Pipeline,
) -> None:
    trace_id = new_trace()
    submitted = await pipeline.intake.post(
        "/v1/claims", json=claim_body(), headers=traced(SUBMITTER_KEY, trace_id)
    )
    assert submitted.status_code == 202, submitted.text
    claim_id = submitted.json()["id"]

    async def paid() -> bool:
        # A list is a PHI read of each claim on it, in the claim's trace here: only the poll
        # that finds the claim paid lists it, so the timeline gains one access event.
        page = await pipeline.intake.get(
            "/v1/claims", params={"status": "paid"}, headers=traced(SUBMITTER_KEY, trace_id)
        )
        return claim_id in {item["id"] for item in page.json()["items"]}

    # Four consumer groups form first; on a busy two-core machine that takes a while.
    await eventually(paid, within=180)
    read = await pipeline.intake.get(
        f"/v1/claims/{claim_id}", headers=traced(SUBMITTER_KEY, trace_id)
    )
    assert read.status_code == 200

    timeline: dict[str, Any] = {}

    served = 0

    async def complete() -> bool:
        nonlocal served
        response = await pipeline.audit.get(
            f"/v1/audit/claims/{claim_id}", headers=traced(AUDITOR_KEY, trace_id)
        )
        if response.status_code != 200:
            return False
        served += 1
        timeline.update(response.json())
        steps = [e for e in timeline["events"] if e["actor"] != "auditor"]
        return len(steps) >= len(EXPECTED)

    await eventually(complete)
    events = timeline["events"]
    assert [(e["type"], e["actor"]) for e in events[: len(EXPECTED)]] == EXPECTED
    # Reading the timeline is PHI access too: each earlier page served shows after the steps.
    reads = [(e["type"], e["actor"]) for e in events[len(EXPECTED) :]]
    assert reads == [("io.claimflow.audit.access.v1", "auditor")] * (served - 1)
    assert {e["trace_id"] for e in events} == {trace_id}
    assert {e["subject"] for e in events} == {claim_id}
    assert all(len(e["payload_digest"]) == 64 for e in events)
    # PHI never reaches the audit log: only digests of the payloads.
    assert "3730189502" not in str(timeline)

    report = (await pipeline.audit.get("/v1/audit/verify", headers=bearer(AUDITOR_KEY))).json()
    # The chain holds the last read's record too.
    assert (report["valid"], report["checked"]) == (True, len(events) + 1)
