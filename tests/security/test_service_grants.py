"""Each component's Kafka grants (claimflow_shared.kafka.grants, the data tier's KafkaUsers)
are exactly what its code writes and reads, and under those ACLs, on the real broker's
SASL_SSL listener, each component sets its topics up as it does at start (the topics exist,
declared by the platform)."""

from __future__ import annotations

from typing import Any

import pytest

from claimflow_adjudication import worker as adjudication_worker
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_audit import worker as audit_worker
from claimflow_audit.settings import AuditSettings
from claimflow_intake import worker as intake_worker
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.events.catalog import Topics
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.grants import SERVICE_GRANTS
from claimflow_shared.plans import ensure_plans_topic
from claimflow_shared.settings import ServiceSettings


def test_the_grants_are_what_each_component_writes_and_reads() -> None:
    intake, adjudication, audit = IntakeSettings(), AdjudicationSettings(), AuditSettings()
    grants = SERVICE_GRANTS
    assert set(intake_worker.produced_topics(intake)) == grants["intake"].writes
    assert set(intake_worker.consumed_topics(intake)) == grants["intake"].reads
    assert grants["intake"].groups == {intake.consumer_group}
    assert set(adjudication_worker.produced_topics(adjudication)) == grants["adjudication"].writes
    # The plan feed reads the plans topic besides the claims consumer's topics.
    consumed = {*adjudication_worker.consumed_topics(adjudication), Topics.PLANS}
    assert consumed == grants["adjudication"].reads
    assert grants["adjudication"].groups == {adjudication.consumer_group}
    assert set(audit_worker.AUDITED_TOPICS) == grants["audit-log"].reads
    assert grants["audit-log"].groups == {audit.consumer_group}
    assert grants["operator"].writes == {Topics.PLANS}


@pytest.mark.integration
def test_each_component_sets_its_topics_up_under_its_acls(
    kafka_broker: Any, topic_prefix: str
) -> None:
    listener = kafka_broker.secured
    platform = ServiceSettings(
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers, kafka_topic_prefix=topic_prefix
    )
    # The platform declares every topic (Strimzi's KafkaTopics); the components create none.
    every = [v for k, v in vars(Topics).items() if k.isupper() and isinstance(v, str)]
    ensure_topics(platform, [platform.topic(t) for t in every if t != Topics.PLANS])
    ensure_plans_topic(platform)
    listener.grant(kafka_broker, topic_prefix)

    intake = listener.settings("intake", IntakeSettings, topic_prefix)
    ensure_topics(
        intake, intake_worker.produced_topics(intake) + intake_worker.consumed_topics(intake)
    )
    adjudication = listener.settings("adjudication", AdjudicationSettings, topic_prefix)
    ensure_topics(
        adjudication,
        adjudication_worker.produced_topics(adjudication)
        + adjudication_worker.consumed_topics(adjudication),
    )
    ensure_plans_topic(adjudication)
    audit_worker._ensure_topics(listener.settings("audit-log", AuditSettings, topic_prefix))
    # The operator only writes plans: it must not need to see the dead-letter topic.
    ensure_plans_topic(listener.settings("operator", ServiceSettings, topic_prefix))
