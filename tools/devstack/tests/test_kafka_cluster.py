"""The 3-node Kafka cluster: replicated topics, and acknowledged writes that outlive a killed
leader and a frozen node."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from claimflow_devstack.kafka import KafkaCluster


def _producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=10_000,
    )


def _produce(producer: KafkaProducer, topic: str, value: bytes) -> None:
    producer.send(topic, key=b"k", value=value).get(timeout=60)


def _read_all(bootstrap: str, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        values: list[bytes] = []
        while consumer.position(tp) < end:
            for batch in consumer.poll(timeout_ms=1000).values():
                values.extend(record.value for record in batch)
        return values
    finally:
        consumer.close()


def test_cluster_replicates_topics_three_ways_with_two_in_sync_required(
    kafka_cluster: KafkaCluster, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}replicated"
    kafka_cluster.create_topics([topic], partitions=2)
    replicas, config = kafka_cluster.topic(topic)
    assert replicas == [[1, 2, 3], [1, 2, 3]]
    assert config["min.insync.replicas"] == "2"
    assert len(kafka_cluster.bootstrap_servers.split(",")) == 3


def test_acknowledged_writes_survive_a_killed_leader_and_a_frozen_node(
    kafka_cluster: KafkaCluster, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}failover"
    kafka_cluster.create_topics([topic], partitions=1)
    bootstrap = kafka_cluster.bootstrap_servers
    # Connected before the faults, as a running service is: a client that bootstraps while a
    # node is frozen may wait out its whole bootstrap timeout on that node.
    producer = _producer(bootstrap)
    try:
        _produce(producer, topic, b"before")
        leader = kafka_cluster.leader(topic, 0)
        old_pid = kafka_cluster.node(leader).pid

        kafka_cluster.kill_node(leader)
        try:
            _produce(producer, topic, b"leader down")
            assert kafka_cluster.leader(topic, 0) != leader
        finally:
            kafka_cluster.start_node(leader)
        assert kafka_cluster.node(leader).pid != old_pid
        kafka_cluster.wait_in_sync()

        frozen = kafka_cluster.leader(topic, 0)
        with kafka_cluster.frozen(frozen):
            # The other two are a quorum and a min-ISR: writes go on once the frozen node is
            # fenced.
            _produce(producer, topic, b"node frozen")
    finally:
        producer.close()
    kafka_cluster.wait_in_sync()

    assert _read_all(bootstrap, topic) == [b"before", b"leader down", b"node frozen"]


def test_group_coordinator_is_the_node_that_answers_for_the_group(
    kafka_cluster: KafkaCluster, topic_prefix: str
) -> None:
    topic, group = f"{topic_prefix}grouped", f"{topic_prefix}group"
    kafka_cluster.create_topics([topic], partitions=1)
    consumer = KafkaConsumer(
        topic, bootstrap_servers=kafka_cluster.bootstrap_servers.split(","), group_id=group
    )
    try:
        deadline = time.monotonic() + 60
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(timeout_ms=500)
        coordinator = kafka_cluster.group_coordinator(group)
        with kafka_cluster.admin() as admin:
            answers = {
                node: admin.describe_groups([group], group_coordinator_id=node)[group]
                for node in kafka_cluster.nodes
            }
    finally:
        consumer.close()
    assert answers[coordinator]["error"] is None
    assert len(answers[coordinator]["members"]) == 1
    assert all(answers[n]["error"] for n in answers if n != coordinator)
