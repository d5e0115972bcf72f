"""The data-tier examples: a Strimzi Kafka with every claimflow topic, a CloudNativePG cluster
per service database. The operators' CRDs are not available offline, so the fields each
operator requires (and the ones claimflow depends on) are checked here."""

from __future__ import annotations

from typing import Any

import pytest

from claimflow_devstack.paths import repo_root
from claimflow_shared.events.catalog import PHI_TOPICS, Topics
from claimflow_shared.kafka.grants import SERVICE_GRANTS
from claimflow_shared.plans.topic import PLANS_PARTITIONS, PLANS_TOPIC_CONFIG
from claimflow_shared.settings import ServiceSettings

from .k8s_files import DATA, objects_of

CLUSTER = "claimflow-kafka"
# Service -> (CloudNativePG cluster, database); the charts consume "<cluster>-app".
DATABASES = {
    "intake": ("claimflow-intake-db", "intake"),
    "adjudication": ("claimflow-adjudication-db", "adjudication"),
    "audit-log": ("claimflow-audit-log-db", "audit"),
}


def _catalog_topics() -> set[str]:
    return {v for k, v in vars(Topics).items() if k.isupper() and isinstance(v, str)}


def _topics() -> dict[str, dict[str, Any]]:
    return {t["spec"]["topicName"]: t for t in objects_of("KafkaTopic", DATA)}


def _one(kind: str) -> dict[str, Any]:
    (found,) = objects_of(kind, DATA)
    return found


def test_kafka_runs_in_kraft_mode_on_a_node_pool() -> None:
    kafka = _one("Kafka")
    pool = _one("KafkaNodePool")
    assert kafka["metadata"]["name"] == CLUSTER
    assert kafka["metadata"]["annotations"] == {
        "strimzi.io/node-pools": "enabled",
        "strimzi.io/kraft": "enabled",
    }
    assert "zookeeper" not in kafka["spec"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == CLUSTER
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert pool["spec"]["replicas"] >= 3
    assert pool["spec"]["storage"]["type"] in {"jbod", "persistent-claim"}
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    # The charts' default bootstrap address is this listener's.
    assert (listener["port"], listener["type"]) == (9093, "internal")
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    assert "userOperator" in kafka["spec"]["entityOperator"]


def test_kafka_keeps_two_copies_of_every_acknowledged_write() -> None:
    config = _one("Kafka")["spec"]["kafka"]["config"]
    replicas = _one("KafkaNodePool")["spec"]["replicas"]
    assert config["default.replication.factor"] <= replicas
    assert 2 <= config["min.insync.replicas"] < config["default.replication.factor"]
    assert config["auto.create.topics.enable"] is False


def test_every_catalog_topic_and_the_dead_letter_topic_is_declared() -> None:
    expected = _catalog_topics() | {ServiceSettings().kafka_dead_letter_topic}
    assert set(_topics()) == expected


@pytest.mark.parametrize("name", sorted(_catalog_topics() | {"claimflow.deadletter"}))
def test_topics_belong_to_the_cluster_and_are_replicated(name: str) -> None:
    topic = _topics()[name]
    min_isr = _one("Kafka")["spec"]["kafka"]["config"]["min.insync.replicas"]
    assert topic["metadata"]["labels"]["strimzi.io/cluster"] == CLUSTER
    assert topic["spec"]["partitions"] >= 1
    assert min_isr < topic["spec"]["replicas"] <= _one("KafkaNodePool")["spec"]["replicas"]
    config = topic["spec"]["config"]
    if config.get("cleanup.policy") != "compact":
        # Event topics expire: the audit log is the durable record, not Kafka.
        assert config["retention.ms"] > 0


def test_phi_and_dead_letters_are_kept_as_briefly_as_the_services_create_them() -> None:
    settings = ServiceSettings()
    declared = _topics()
    for topic in PHI_TOPICS:
        assert declared[topic]["spec"]["config"]["retention.ms"] == settings.kafka_phi_retention_ms
    dead = declared[settings.kafka_dead_letter_topic]["spec"]["config"]["retention.ms"]
    assert dead == settings.kafka_dead_letter_retention_ms
    others = {
        declared[t]["spec"]["config"].get("retention.ms")
        for t in _catalog_topics() - PHI_TOPICS - {Topics.PLANS}
    }
    # Shorter than every other event topic's replay window.
    assert all(settings.kafka_phi_retention_ms < other for other in others)


def test_plans_topic_is_compacted_exactly_as_the_services_create_it() -> None:
    plans = _topics()[Topics.PLANS]
    assert plans["spec"]["partitions"] == PLANS_PARTITIONS
    config = {k: str(v) for k, v in plans["spec"]["config"].items()}
    assert config == PLANS_TOPIC_CONFIG
    assert "retention.ms" not in config  # compaction alone decides what is kept


def test_claim_topics_have_room_for_parallel_workers() -> None:
    topics = _topics()
    for name in (Topics.CLAIMS_SUBMITTED, Topics.CLAIMS_ADJUDICATED):
        assert topics[name]["spec"]["partitions"] >= 6, name


@pytest.mark.parametrize("service", sorted(DATABASES))
def test_a_postgres_cluster_per_service_database(service: str) -> None:
    cluster_name, database = DATABASES[service]
    clusters = {c["metadata"]["name"]: c for c in objects_of("Cluster", DATA)}
    assert set(clusters) == {c for c, _ in DATABASES.values()}
    cluster = clusters[cluster_name]
    spec = cluster["spec"]
    assert spec["instances"] >= 3
    assert spec["bootstrap"]["initdb"]["database"] == database
    assert spec["bootstrap"]["initdb"]["owner"]
    assert spec["storage"]["size"]
    image_tag = spec["imageName"].rpartition(":")[2]
    assert image_tag[0].isdigit(), spec["imageName"]


def test_the_audit_log_gets_a_restricted_role() -> None:
    cluster = next(
        c for c in objects_of("Cluster", DATA) if c["metadata"]["name"] == "claimflow-audit-log-db"
    )
    (role,) = cluster["spec"]["managed"]["roles"]
    assert role["name"] == "claimflow_audit_app"
    assert role["login"] is True
    assert role["passwordSecret"]["name"] == "claimflow-audit-log-db-restricted"


def test_the_data_tier_guide_names_the_secrets_the_charts_consume() -> None:
    readme = (repo_root() / "docs" / "data-tier.md").read_text()
    for cluster, _ in DATABASES.values():
        assert f"{cluster}-app" in readme, cluster
    assert "claimflow-audit-log-db-restricted" in readme
    assert "claimflow-kafka-kafka-bootstrap" in readme


def test_every_database_is_backed_up_encrypted_every_night() -> None:
    stores = {s["metadata"]["name"]: s["spec"] for s in objects_of("ObjectStore", DATA)}
    schedules = {
        s["spec"]["cluster"]["name"]: s["spec"] for s in objects_of("ScheduledBackup", DATA)
    }
    clusters = objects_of("Cluster", DATA)
    assert len(clusters) == 3
    for cluster in clusters:
        name = cluster["metadata"]["name"]
        (plugin,) = cluster["spec"]["plugins"]
        assert plugin["isWALArchiver"] is True
        store = stores[plugin["parameters"]["barmanObjectName"]]
        # PHI leaves the cluster here: encrypted at the object store, WAL and base backups.
        assert store["configuration"]["wal"]["encryption"]
        assert store["configuration"]["data"]["encryption"]
        assert store["retentionPolicy"].endswith("d")
        schedule = schedules[name]
        assert schedule["method"] == "plugin"
        assert schedule["pluginConfiguration"]["name"] == plugin["name"]


def test_kafka_admits_only_authenticated_users_under_acls() -> None:
    spec = _one("Kafka")["spec"]["kafka"]
    assert [listener["authentication"]["type"] for listener in spec["listeners"]] == [
        "scram-sha-512"
    ]
    assert all(listener["tls"] for listener in spec["listeners"])
    assert spec["authorization"]["type"] == "simple"


def test_every_kafka_user_has_exactly_the_services_grants() -> None:
    users = {u["metadata"]["name"]: u["spec"] for u in objects_of("KafkaUser", DATA)}
    assert set(users) == {f"claimflow-{service}" for service in SERVICE_GRANTS}
    dead_letters = ServiceSettings().kafka_dead_letter_topic
    for service, grants in SERVICE_GRANTS.items():
        spec = users[f"claimflow-{service}"]
        assert spec["authentication"]["type"] == "scram-sha-512"
        declared = {
            (acl["resource"]["type"], acl["resource"]["name"], op)
            for acl in spec["authorization"]["acls"]
            for op in acl["operations"]
        }
        writes = set(grants.writes) | ({dead_letters} if grants.dead_letters else set())
        expected = {("topic", t, op) for t in writes for op in ("Write", "Describe")}
        expected |= {("topic", t, op) for t in grants.reads for op in ("Read", "Describe")}
        expected |= {("group", g, "Read") for g in grants.groups}
        assert declared == expected, service
