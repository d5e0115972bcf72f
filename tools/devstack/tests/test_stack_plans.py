"""`make run` puts the example BenefitPlans on the plans topic, as the operator would."""

from __future__ import annotations

import json

import pytest

from claimflow_devstack.kafka import KafkaBroker
from claimflow_devstack.paths import repo_root
from claimflow_devstack.stack import LocalStack
from claimflow_devstack.testing import read_topic


def test_the_stack_publishes_the_example_plans_before_the_services_start(
    kafka_broker: KafkaBroker, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMFLOW_KAFKA_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("CLAIMFLOW_API_KEY", "unused")  # no key file made under .state/
    stack = LocalStack([], repo_root())
    stack.kafka = kafka_broker
    stack._publish_plans()

    records = read_topic(kafka_broker.bootstrap_servers, f"{topic_prefix}claimflow.plans", 3)
    by_key = {r.key.decode(): json.loads(r.value) for r in records}
    assert sorted(by_key) == ["default/grp-1000", "default/premium", "default/standard"]
    standard = by_key["default/standard"]
    assert standard["type"] == "io.claimflow.plan.published.v1"
    assert standard["source"] == "/claimflow/devstack"
    assert (standard["data"]["plan_id"], standard["data"]["generation"]) == ("standard", 1)
    assert standard["data"]["spec"]["default"] is True
