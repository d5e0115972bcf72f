"""The operator against a real kube-apiserver and a real Kafka."""

from __future__ import annotations

from typing import Any

import httpx
from kopf.testing import KopfRunner
from prometheus_client import REGISTRY

from .conftest import Plans, PlansTopic, wait_for


def published_total() -> float:
    return REGISTRY.get_sample_value("claimflow_operator_plans_published_total") or 0.0


SPEC: dict[str, Any] = {
    "groups": ["GRP-7*"],
    "coveredCategories": ["diagnostic", "preventive", "basic"],
    "coinsurance": {"diagnostic": 100, "preventive": 100, "basic": 80},
    "deductible": {"amount": "25.00"},
    "annualMaximum": "1500.00",
    "frequencyLimits": [{"codes": ["D1110", "D1120"], "count": 2}],
}


def test_the_schema_refuses_invalid_plans_with_422(plans: Plans) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({**SPEC, "coinsurance": {**SPEC["coinsurance"], "basic": 101}}, "spec.coinsurance.basic"),
        ({**SPEC, "coveredCategories": ["cosmetic"]}, "spec.coveredCategories"),
        ({**SPEC, "benefitYearStartMonth": 0}, "spec.benefitYearStartMonth"),
        ({**SPEC, "annualMaximum": "1,500"}, "spec.annualMaximum"),
        ({**SPEC, "groups": ["GRP 7000"]}, "spec.groups"),
        ({**SPEC, "groups": []}, "must name at least one group number"),
        ({**SPEC, "feeSchedule": {"X1": "10.00"}}, "fee schedule keys are CDT codes"),
        (
            {**SPEC, "effectiveFrom": "2024-02-01", "effectiveTo": "2024-01-01"},
            "effectiveTo is before effectiveFrom",
        ),
        ({k: v for k, v in SPEC.items() if k != "coinsurance"}, "spec.coinsurance"),
    ]
    for spec, complaint in cases:
        response = plans.create("refused", spec)
        assert response.status_code == 422, (complaint, response.text)
        assert complaint in response.text, response.text
    dotted = plans.create("has.dots", SPEC)
    assert dotted.status_code == 422
    assert "DNS label" in dotted.text


def test_printer_columns_show_validity_and_the_published_generation(
    plans: Plans, operator: KopfRunner
) -> None:
    plans.apply_example("standard.yaml")
    plans.wait_condition("standard", "Published", "True")
    table = plans.client.get(
        plans.path, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    ).json()
    columns = [c["name"] for c in table["columnDefinitions"]]
    expected = ["Name", "Default", "Groups", "Valid", "Published", "Generation", "Reason"]
    assert columns[:7] == expected
    [row] = table["rows"]
    assert row["cells"][1:6] == [True, None, "True", "True", 1]


def test_a_valid_plan_is_published_edited_and_withdrawn(
    plans: Plans, topic: PlansTopic, operator: KopfRunner
) -> None:
    published_before = published_total()
    created = plans.create("grp-7000", SPEC)
    assert created.status_code == 201, created.text
    key = f"{plans.namespace}/grp-7000"

    plans.wait_condition("grp-7000", "Valid", "True")
    plans.wait_condition("grp-7000", "Published", "True")
    status = plans.get("grp-7000")["status"]
    assert status["publishedGeneration"] == status["observedGeneration"] == 1
    assert status["topicKey"] == key
    assert status["publishedAt"]
    [first] = topic.wait_for(key, 1)
    assert first is not None
    assert first["type"] == "io.claimflow.plan.published.v1"
    assert first["data"]["generation"] == 1
    assert first["data"]["namespace"] == plans.namespace
    assert first["data"]["plan_id"] == "grp-7000"
    assert first["data"]["spec"]["coinsurance"]["basic"] == "80"
    reasons = {e["reason"] for e in wait_for(lambda: plans.events("grp-7000"), "events")}
    assert "Published" in reasons

    edited = plans.patch_spec("grp-7000", {"coinsurance": {"basic": 50}})
    assert edited["metadata"]["generation"] == 2
    plans.wait_condition("grp-7000", "Published", "True", generation=2)
    _, second = topic.wait_for(key, 2)
    assert second is not None
    assert (second["data"]["generation"], second["data"]["spec"]["coinsurance"]["basic"]) == (
        2,
        "50",
    )

    plans.delete("grp-7000")
    assert topic.wait_for(key, 3)[2] is None  # the tombstone
    assert published_total() >= published_before + 2
    # No finalizer was ever put on the plan: nothing holds its deletion (or its namespace's).
    assert plans.client.get(f"{plans.path}/grp-7000").status_code == 404


def test_an_inconsistent_plan_is_flagged_and_never_published(
    plans: Plans, topic: PlansTopic, operator: KopfRunner
) -> None:
    spec = {**SPEC, "frequencyLimits": [{"codes": ["D8080"], "count": 1}]}
    assert plans.create("ortho-limit", spec).status_code == 201
    valid = plans.wait_condition("ortho-limit", "Valid", "False")
    assert valid["reason"] == "Inconsistent"
    assert "D8080, whose category orthodontic is not covered" in valid["message"]
    published = plans.wait_condition("ortho-limit", "Published", "False")
    assert published["reason"] == "NotPublished"
    warnings = wait_for(
        lambda: [e for e in plans.events("ortho-limit") if e["type"] == "Warning"], "a warning"
    )
    assert warnings[0]["reason"] == "Inconsistent"
    key = f"{plans.namespace}/ortho-limit"
    assert topic.of(key) == []

    # Fixed: published from then on.
    plans.patch_spec("ortho-limit", {"frequencyLimits": [{"codes": ["D1110"], "count": 1}]})
    plans.wait_condition("ortho-limit", "Published", "True", generation=2)
    [message] = topic.wait_for(key, 1)
    assert message is not None
    assert message["data"]["generation"] == 2


def test_overlapping_group_numbers_are_refused_until_the_other_plan_goes(
    plans: Plans, topic: PlansTopic, operator: KopfRunner
) -> None:
    assert plans.create("broad", SPEC).status_code == 201
    plans.wait_condition("broad", "Published", "True")
    assert plans.create("narrow", {**SPEC, "groups": ["GRP-70??"]}).status_code == 201
    refused = plans.wait_condition("narrow", "Valid", "False")
    assert refused["reason"] == "Conflict"
    assert f"GRP-70?? overlaps GRP-7* of {plans.namespace}/broad" in refused["message"]
    assert topic.of(f"{plans.namespace}/narrow") == []

    plans.delete("broad")
    # The deletion sends the refused plan back through its checks: it is published now.
    plans.wait_condition("narrow", "Published", "True")
    assert len(topic.wait_for(f"{plans.namespace}/narrow", 1)) == 1


def test_plans_deleted_while_the_operator_was_away_are_withdrawn_at_start(
    plans: Plans, topic: PlansTopic, operator_factory: Any
) -> None:
    with operator_factory():
        assert plans.create("short-lived", SPEC).status_code == 201
        plans.wait_condition("short-lived", "Published", "True")
    key = f"{plans.namespace}/short-lived"
    assert len(topic.of(key)) == 1
    plans.delete("short-lived")  # nobody watching: no tombstone yet
    assert topic.of(key)[-1] is not None
    with operator_factory() as runner:
        assert topic.wait_for(key, 2)[-1] is None
        health = httpx.get(runner_health(runner), timeout=10)
        assert health.status_code == 200


def runner_health(runner: KopfRunner) -> str:
    liveness = next(a for a in runner.args[0] if a.startswith("--liveness="))
    return liveness.removeprefix("--liveness=")
