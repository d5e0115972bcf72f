"""Kafka authenticated and authorised, on the real broker's SASL_SSL listener: SCRAM-SHA-512
users, a CA made for the session, and the StandardAuthorizer enforcing each service's grants
(claimflow_shared.kafka.grants). The services' own clients connect through their settings."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError

from claimflow_devstack.testing import claim_line, submitted
from claimflow_shared.events.catalog import Topics
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def secured(kafka_broker: Any, topic_prefix: str) -> Any:
    """The secured listener, with the grants applied to this test's topics."""
    listener = kafka_broker.secured
    plain = ServiceSettings(
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers, kafka_topic_prefix=topic_prefix
    )
    topics = [plain.topic(t) for t in (Topics.CLAIMS_SUBMITTED, Topics.CLAIMS_ADJUDICATED)]
    ensure_topics(plain, topics, partitions=1)
    listener.grant(kafka_broker, topic_prefix)
    return listener


def _event(settings: ServiceSettings, topic: str) -> OutgoingMessage:
    claim = submitted(claim_line())
    return OutgoingMessage(settings.topic(topic), str(uuid.uuid4()), claim.to_json())


def _send(config: dict[str, Any]) -> None:
    # The broker's version given: without it the constructor itself probes for 30 s before a
    # refused client gives up; with it the send waits for metadata up to max_block_ms.
    producer = KafkaProducer(
        **config, api_version=(3, 9), request_timeout_ms=5000, max_block_ms=5000
    )
    try:
        producer.send("claims-security-probe", b"probe").get(timeout=10)
    finally:
        producer.close(timeout=5)


def test_a_client_without_credentials_is_refused(secured: Any) -> None:
    """The same TLS connection, with and without SASL: only the authenticated one gets in."""
    authenticated = secured.client_config("admin")
    _send(authenticated)
    tls_only = {k: v for k, v in authenticated.items() if not k.startswith("sasl_")}
    tls_only["security_protocol"] = "SSL"
    with pytest.raises(KafkaTimeoutError, match="metadata"):
        _send(tls_only)


def test_a_wrong_password_is_refused(kafka_broker: Any, secured: Any) -> None:
    """Asserted on the broker's own record of the refusal: the broker answers a failed login
    and closes the connection 100 ms later (connection.failed.authentication.delay.ms), and
    kafka-python drops an answer that arrives in the same read as the close, so on a busy
    machine the client only sees a disconnected socket."""
    wrong = secured.client_config("intake") | {"sasl_plain_password": "not-the-password"}
    log = kafka_broker.server_log
    start = log.stat().st_size
    with pytest.raises(KafkaTimeoutError):
        _send(wrong)
    with log.open() as lines:
        # A rotation meanwhile starts a new, shorter file: read it whole.
        lines.seek(start if log.stat().st_size >= start else 0)
        logged = lines.read()
    assert "due to invalid credentials with SASL mechanism SCRAM-SHA-512" in logged


async def test_each_service_writes_only_the_topics_it_owns(secured: Any, topic_prefix: str) -> None:
    intake = secured.settings("intake", ServiceSettings, topic_prefix)
    adjudication = secured.settings("adjudication", ServiceSettings, topic_prefix)
    # The owners write their own topics, through the services' own publisher.
    for settings, topic in (
        (intake, Topics.CLAIMS_SUBMITTED),
        (adjudication, Topics.CLAIMS_ADJUDICATED),
    ):
        publisher = Publisher(settings)
        try:
            await asyncio.to_thread(publisher.publish, [_event(settings, topic)])
        finally:
            publisher.close()
    # Anyone else's write is refused: intake cannot forge an adjudication, nor adjudication a
    # submission.
    for settings, topic in (
        (intake, Topics.CLAIMS_ADJUDICATED),
        (adjudication, Topics.CLAIMS_SUBMITTED),
    ):
        publisher = Publisher(settings)
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await asyncio.to_thread(publisher.publish, [_event(settings, topic)])
        finally:
            publisher.close()


def test_a_service_reads_only_the_topics_it_consumes(secured: Any, topic_prefix: str) -> None:
    """audit-log reads claims.submitted (it reads every topic); intake, which only writes it,
    may not read it back."""
    topic = f"{topic_prefix}{Topics.CLAIMS_SUBMITTED}"

    def poll_as(user: str) -> None:
        consumer = KafkaConsumer(
            topic,
            **secured.client_config(user),
            group_id=None,
            auto_offset_reset="earliest",
            consumer_timeout_ms=3000,
        )
        try:
            consumer.poll(timeout_ms=5000)
            consumer.poll(timeout_ms=1000)
        finally:
            consumer.close()

    poll_as("audit-log")
    with pytest.raises(TopicAuthorizationFailedError):
        poll_as("intake")
