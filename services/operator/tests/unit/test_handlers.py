"""The handlers' work without a cluster or a broker: verdicts, status, events, what goes on
the topic and what never does."""

from __future__ import annotations

import copy
from typing import Any, cast

import kopf
import pytest
from prometheus_client import REGISTRY

from claimflow_operator.evaluation import IndexedPlan, indexed
from claimflow_operator.publishing import Runtime, recheck_conflicted, reconcile, withdraw
from claimflow_operator.status import is_current
from claimflow_shared.events import PlanPublishedV1, decode_event


def published_total() -> float:
    return REGISTRY.get_sample_value("claimflow_operator_plans_published_total") or 0.0


def invalid_total(reason: str) -> float:
    value = REGISTRY.get_sample_value("claimflow_operator_plans_invalid_total", {"reason": reason})
    return value or 0.0


class FakeSink:
    def __init__(self, failures: int = 0) -> None:
        self.messages: list[tuple[str, bytes | None]] = []
        self.failures = failures

    def _maybe_fail(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker unreachable")

    def put(self, key: str, event: bytes) -> None:
        self._maybe_fail()
        self.messages.append((key, event))

    def withdraw(self, key: str) -> None:
        self._maybe_fail()
        self.messages.append((key, None))


class FakeEvents:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str]] = []

    def info(self, body: kopf.Body, *, reason: str, message: str) -> None:
        self.posted.append(("Normal", reason, message))

    def warn(self, body: kopf.Body, *, reason: str, message: str) -> None:
        self.posted.append(("Warning", reason, message))


class FakeKube:
    def __init__(self) -> None:
        self.rechecked: list[str] = []

    async def request_recheck(self, namespace: str, name: str) -> None:
        self.rechecked.append(f"{namespace}/{name}")


def runtime(sink: FakeSink | None = None, kube: FakeKube | None = None) -> Runtime:
    return Runtime(sink or FakeSink(), FakeEvents(), "claimflow.plans", kube=cast(Any, kube))


def plan(
    name: str = "grp-1000",
    *,
    generation: int = 1,
    created: str = "2024-01-01T00:00:00Z",
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> kopf.Body:
    raw = {
        "apiVersion": "claimflow.io/v1",
        "kind": "BenefitPlan",
        "metadata": {
            "namespace": "plans",
            "name": name,
            "generation": generation,
            "creationTimestamp": created,
        },
        "spec": {
            "groups": ["GRP-1000"],
            "coveredCategories": ["diagnostic", "preventive", "basic"],
            "coinsurance": {"diagnostic": 100, "preventive": 100, "basic": 80},
            "deductible": {"amount": "25.00"},
        }
        | spec,
        "status": status or {},
    }
    return kopf.Body(cast(kopf.RawBody, raw))


def with_status(body: kopf.Body, patch: dict[str, Any]) -> kopf.Body:
    raw = copy.deepcopy(dict(body))
    raw["status"] = patch
    return kopf.Body(cast(kopf.RawBody, raw))


def conditions(patch: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in patch["conditions"]}


async def test_a_valid_plan_is_published_with_its_generation_and_reported() -> None:
    rt = runtime()
    before = published_total()
    patch: dict[str, Any] = {}
    await reconcile(rt, plan(generation=3), patch, [], force=True)

    sink = cast(FakeSink, rt.sink)
    [(key, value)] = sink.messages
    assert key == "plans/grp-1000"
    data = decode_event(value).data
    assert isinstance(data, PlanPublishedV1)
    assert (data.namespace, data.plan_id, data.generation) == ("plans", "grp-1000", 3)
    assert str(data.spec.coinsurance["basic"]) == "80"
    got = conditions(patch)
    assert got["Valid"]["status"] == got["Published"]["status"] == "True"
    assert got["Published"]["observedGeneration"] == 3
    assert patch["publishedGeneration"] == 3
    assert patch["observedGeneration"] == 3
    assert patch["topicKey"] == "plans/grp-1000"
    assert "publishedAt" in patch
    assert cast(FakeEvents, rt.events).posted == [
        ("Normal", "Published", "generation 3 published to claimflow.plans")
    ]
    assert published_total() == before + 1


async def test_an_update_that_changes_nothing_publishes_nothing_but_resume_does() -> None:
    rt = runtime()
    patch: dict[str, Any] = {}
    body = plan()
    await reconcile(rt, body, patch, [], force=True)
    current = with_status(body, patch)
    assert is_current(patch, 1)
    await reconcile(rt, current, {}, [], force=False)
    assert len(cast(FakeSink, rt.sink).messages) == 1
    await reconcile(rt, current, {}, [], force=True)
    assert len(cast(FakeSink, rt.sink).messages) == 2


async def test_an_inconsistent_plan_is_never_published_and_says_why_once() -> None:
    rt = runtime()
    before = invalid_total("Inconsistent")
    body = plan(frequencyLimits=[{"codes": ["D8080"], "count": 1}])
    patch: dict[str, Any] = {}
    verdict = await reconcile(rt, body, patch, [], force=True)

    assert not verdict.valid
    assert cast(FakeSink, rt.sink).messages == []
    got = conditions(patch)
    assert got["Valid"] | {"lastTransitionTime": None} == {
        "type": "Valid",
        "status": "False",
        "reason": "Inconsistent",
        "message": "a frequency limit names D8080, whose category orthodontic is not covered",
        "observedGeneration": 1,
        "lastTransitionTime": None,
    }
    assert got["Published"]["reason"] == "NotPublished"
    assert "publishedGeneration" not in patch
    events = cast(FakeEvents, rt.events).posted
    assert events == [("Warning", "Inconsistent", got["Valid"]["message"])]
    # The same verdict again (a resume): no second event, no second count.
    await reconcile(rt, with_status(body, patch), {}, [], force=True)
    assert len(events) == 1
    assert invalid_total("Inconsistent") == before + 1


async def test_a_spec_the_event_model_refuses_is_flagged_with_the_field() -> None:
    rt = runtime()
    patch: dict[str, Any] = {}
    await reconcile(rt, plan(coinsurance={"basic": 33.333}), patch, [], force=True)
    valid = conditions(patch)["Valid"]
    assert valid["reason"] == "SpecInvalid"
    assert "spec.coinsurance.basic" in valid["message"]
    assert cast(FakeSink, rt.sink).messages == []


async def test_an_invalid_new_generation_keeps_the_published_one_in_force() -> None:
    rt = runtime()
    patch: dict[str, Any] = {}
    await reconcile(rt, plan(), patch, [], force=True)
    broken = with_status(plan(generation=2, groups=[]), patch)
    second: dict[str, Any] = {}
    await reconcile(rt, broken, second, [], force=False)
    published = conditions(second)["Published"]
    assert published["reason"] == "PreviousGenerationInForce"
    assert published["message"].startswith("generation 1 stays in force")
    assert len(cast(FakeSink, rt.sink).messages) == 1


def other(name: str, *, created: str, valid: bool | None, groups: list[str]) -> IndexedPlan:
    body = plan(name, created=created, groups=groups)
    entry = indexed(body)
    reason = None if valid is None else ("Valid" if valid else "Conflict")
    return IndexedPlan(**(entry.__dict__ | {"valid_now": valid, "reason": reason}))


@pytest.mark.parametrize(
    ("valid", "created", "clashes"),
    [
        (True, "2025-01-01T00:00:00Z", True),  # valid: holds its groups, however new
        (False, "2020-01-01T00:00:00Z", False),  # refused: holds nothing
        (None, "2020-01-01T00:00:00Z", True),  # undecided and older: wins
        (None, "2025-01-01T00:00:00Z", False),  # undecided and newer: loses
    ],
)
async def test_overlapping_group_numbers_the_older_or_valid_plan_keeps_them(
    valid: bool | None, created: str, *, clashes: bool
) -> None:
    rt = runtime()
    index = [other("broad", created=created, valid=valid, groups=["GRP-1*"])]
    patch: dict[str, Any] = {}
    body = plan("narrow", created="2024-01-01T00:00:00Z", groups=["GRP-1?00"])
    verdict = await reconcile(rt, body, patch, index, force=True)
    assert (verdict.reason == "Conflict") is clashes
    assert bool(cast(FakeSink, rt.sink).messages) is not clashes
    if clashes:
        assert "GRP-1?00 overlaps GRP-1* of plans/broad" in conditions(patch)["Valid"]["message"]


async def test_publish_failures_are_retried_by_kopf_and_shown_in_status() -> None:
    rt = runtime(FakeSink(failures=1))
    patch: dict[str, Any] = {}
    with pytest.raises(kopf.TemporaryError):
        await reconcile(rt, plan(), patch, [], force=True)
    got = conditions(patch)
    assert (got["Valid"]["status"], got["Published"]["reason"]) == ("True", "PublishFailed")
    assert "ConnectionError" in got["Published"]["message"]
    await reconcile(rt, plan(), patch, [], force=True)
    assert conditions(patch)["Published"]["status"] == "True"


async def test_deletion_writes_a_tombstone_and_retries_until_it_is_written() -> None:
    rt = runtime(FakeSink(failures=1))
    await withdraw(rt, plan(), [], cause="deleted")
    assert cast(FakeSink, rt.sink).messages == [("plans/grp-1000", None)]
    assert "plans/grp-1000" in rt.written


async def test_plans_refused_for_a_clash_are_checked_again_when_another_changes() -> None:
    kube = FakeKube()
    rt = runtime(kube=kube)
    index = [
        other("loser", created="2025-01-01T00:00:00Z", valid=False, groups=["GRP-1*"]),
        other("fine", created="2025-01-01T00:00:00Z", valid=True, groups=["GRP-9*"]),
        other("grp-1000", created="2025-01-01T00:00:00Z", valid=False, groups=["GRP-1*"]),
    ]
    await recheck_conflicted(rt, index, changed="plans/grp-1000")
    assert kube.rechecked == ["plans/loser"]
    await withdraw(rt, plan(), index, cause="deleted")
    assert kube.rechecked == ["plans/loser", "plans/loser"]


async def test_a_transition_time_moves_only_when_the_status_does() -> None:
    rt = runtime()
    first: dict[str, Any] = {}
    await reconcile(rt, plan(), first, [], force=True)
    stamped = dict(conditions(first)["Valid"], lastTransitionTime="2020-01-01T00:00:00Z")
    previous = dict(first, conditions=[stamped, conditions(first)["Published"]])
    again: dict[str, Any] = {}
    await reconcile(rt, with_status(plan(), previous), again, [], force=True)
    assert conditions(again)["Valid"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
