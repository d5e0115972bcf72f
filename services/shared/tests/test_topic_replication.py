"""Topics the services create carry the configured replication: on a 3-node cluster, three
replicas and two in sync required, for the pipeline's topics, the plans topic and the
dead-letter topic alike."""

from __future__ import annotations

from typing import Any

from claimflow_devstack.kafka import KafkaCluster
from claimflow_shared.events.catalog import Topics
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.plans.topic import PLANS_TOPIC_CONFIG, ensure_plans_topic, plans_topic
from claimflow_shared.settings import ServiceSettings

DAY_MS = 24 * 3_600_000


def _settings(cluster: KafkaCluster, topic_prefix: str, **overrides: Any) -> ServiceSettings:
    """A service's settings on the test cluster, under this test's topic prefix."""
    return ServiceSettings(
        kafka_bootstrap_servers=cluster.bootstrap_servers,
        kafka_topic_prefix=topic_prefix,
        **overrides,
    )


def test_created_topics_take_the_settings_replication(
    kafka_cluster: KafkaCluster, topic_prefix: str
) -> None:
    settings = _settings(
        kafka_cluster,
        topic_prefix,
        kafka_topic_replication_factor=3,
        kafka_topic_min_insync_replicas=2,
    )
    work = settings.topic("work")
    submitted = settings.topic(Topics.CLAIMS_SUBMITTED)

    ensure_topics(settings, [work, submitted], partitions=2)
    ensure_plans_topic(settings)

    for topic, partitions in (
        (work, 2),
        (submitted, 2),
        (settings.dead_letter_topic, 3),
        (plans_topic(settings), 1),
    ):
        replicas, config = kafka_cluster.topic(topic)
        assert replicas == [[1, 2, 3]] * partitions, topic
        assert config["min.insync.replicas"] == "2", topic
    _, plans_config = kafka_cluster.topic(plans_topic(settings))
    assert {k: plans_config[k] for k in PLANS_TOPIC_CONFIG} == PLANS_TOPIC_CONFIG

    # PHI and dead letters are kept shorter than the broker's week; other topics are not.
    retention = {t: kafka_cluster.topic(t)[1]["retention.ms"] for t in (work, submitted)}
    assert retention == {work: str(7 * DAY_MS), submitted: str(3 * DAY_MS)}
    assert kafka_cluster.topic(settings.dead_letter_topic)[1]["retention.ms"] == str(7 * DAY_MS)


def test_retention_of_phi_and_dead_letters_is_a_setting(
    kafka_cluster: KafkaCluster, topic_prefix: str
) -> None:
    settings = _settings(
        kafka_cluster,
        topic_prefix,
        kafka_phi_retention_ms=3_600_000,
        kafka_dead_letter_retention_ms=7_200_000,
    )
    submitted = settings.topic(Topics.CLAIMS_SUBMITTED)
    ensure_topics(settings, [submitted])
    assert kafka_cluster.topic(submitted)[1]["retention.ms"] == "3600000"
    assert kafka_cluster.topic(settings.dead_letter_topic)[1]["retention.ms"] == "7200000"


def test_replication_defaults_to_one_and_the_brokers_min_insync() -> None:
    settings = ServiceSettings()
    assert settings.kafka_topic_replication_factor == 1
    assert settings.kafka_topic_min_insync_replicas is None


def test_a_service_sets_its_topics_up_while_a_node_is_down(
    kafka_cluster: KafkaCluster, topic_prefix: str
) -> None:
    """A worker restarting while one of three nodes is down finds its topics: its admin client
    may first ask the dead node, and must then try another instead of failing the start."""
    settings = _settings(
        kafka_cluster,
        topic_prefix,
        kafka_topic_replication_factor=3,
        kafka_topic_min_insync_replicas=2,
    )
    topics = [settings.topic("restarting")]
    ensure_topics(settings, topics)
    down = kafka_cluster.leader(topics[0], 0)
    kafka_cluster.kill_node(down)
    try:
        # Each call is a fresh client, as each restart is; several give the dead node its chances.
        for _ in range(6):
            ensure_topics(settings, topics)
    finally:
        kafka_cluster.start_node(down)
        kafka_cluster.wait_in_sync()
