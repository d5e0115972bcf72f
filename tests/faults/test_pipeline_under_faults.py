"""Nothing lost, nothing counted twice: thousands of claims through every service (two
replicas of each worker, on a 3-node Kafka cluster) while workers are SIGKILLed, the leader of
a busy partition is SIGKILLed and later restarted, PostgreSQL restarts, poison messages arrive,
and, as gray failures, a Kafka node, PostgreSQL and a worker replica are frozen (SIGSTOP: alive,
connected, silent) and thawed.

The load runs on a thread; the faults are injected from the test's own thread as the load
reaches given fractions of its claims. Afterwards the services' databases and the topics are
compared with what the client was told and with each other.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from claimflow_audit.worker import AUDITED_TOPICS
from claimflow_devstack.kafka import KafkaCluster
from claimflow_shared.events import Topics
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.settings import ServiceSettings

from .conftest import API_KEY, CONSUMER_SESSION_TIMEOUT_MS, Pipeline, workers
from .load import Submitter, claim_set
from .readback import query, read_topics, scalar

pytestmark = pytest.mark.timeout(600)

# Every fault lands during the load whatever its size; `make test` runs the lighter load, and
# `make test-faults` (CLAIMFLOW_FAULT_CLAIMS=5000) the heavier one, K times.
CLAIMS = int(os.environ.get("CLAIMFLOW_FAULT_CLAIMS", "1500"))
INVALID_EVERY = 9  # ~11% of the claims are invalid
SETTLE_TIMEOUT = 300.0
CHECKPOINT_TYPE = "io.claimflow.audit.checkpoint.v1"
# A replica (or a group coordinator) silent for longer than the workers' session timeout is
# taken for dead, and its partitions move.
CONSUMER_SESSION_TIMEOUT = CONSUMER_SESSION_TIMEOUT_MS / 1000
FREEZE_BEYOND_SESSION = CONSUMER_SESSION_TIMEOUT + 10.0
POSTGRES_FREEZE = 20.0
# What a claim's life puts on the topics (no payment fails, nothing is reversed).
CLAIM_TOPICS = (
    Topics.CLAIMS_SUBMITTED,
    Topics.CLAIMS_ADJUDICATED,
    Topics.PAYMENTS_REQUESTED,
    Topics.PAYMENTS_COMPLETED,
)
# Who consumes the topics the poison goes to (docs/events.md, Topics): each group
# dead-letters each poison message once.
POISONED = {
    Topics.CLAIMS_SUBMITTED: ("adjudication", "audit-log"),
    Topics.PAYMENTS_COMPLETED: ("adjudication", "audit-log", "intake"),
}


class Poisoner:
    """Puts undecodable records on consumed topics and remembers what each group must
    dead-letter."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.expected: set[tuple[bytes, str, str]] = set()  # (value, source topic, group)
        self.count = 0

    def inject(self, per_topic: int = 2) -> None:
        p = self.pipeline
        settings = ServiceSettings(
            kafka_bootstrap_servers=p.kafka.bootstrap_servers, service_name="faults-test"
        )
        messages = []
        for topic, groups in POISONED.items():
            for _ in range(per_topic):
                self.count += 1
                value = f"not a cloud event #{self.count} {{".encode()
                messages.append(OutgoingMessage(p.prefix + topic, f"poison-{self.count}", value))
                self.expected |= {(value, p.prefix + topic, f"{g}-{p.prefix}") for g in groups}
        publisher = Publisher(settings)
        try:
            publisher.publish(messages)
        finally:
            publisher.close()


def _kill_and_restart(pipeline: Pipeline, name: str) -> Callable[[], None]:
    def fault() -> None:
        pipeline.kill(name)
        # A moment down, so work piles up for the restarted process to pick up.
        time.sleep(1.0)
        # Not waiting for it to be ready lets the next faults land while it starts, as they
        # would; the pipeline settling at the end proves it came back.
        pipeline.spawn(name)

    return fault


class BrokerFaults:
    """The Kafka node faults, which need to remember the node they took down."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.cluster: KafkaCluster = pipeline.kafka
        self.busy_topic = pipeline.prefix + Topics.CLAIMS_SUBMITTED
        self.intake_group = f"intake-{pipeline.prefix}"
        self.killed: int | None = None

    def kill_busy_leader(self) -> None:
        """SIGKILL the node leading a partition every claim of a third passes through."""
        self.killed = self.cluster.leader(self.busy_topic, 0)
        self.cluster.kill_node(self.killed)

    def restart_killed(self) -> None:
        assert self.killed is not None
        self.cluster.start_node(self.killed)
        # The next fault must find three in-sync replicas again, or it could take two.
        self.cluster.wait_in_sync()

    def freeze_coordinator(self) -> None:
        """SIGSTOP the node coordinating intake's consumer group for longer than a consumer
        session, then SIGCONT it: its sockets stay open and nothing answers."""
        frozen = self.cluster.group_coordinator(self.intake_group)
        with self.cluster.frozen(frozen):
            time.sleep(FREEZE_BEYOND_SESSION)
        self.cluster.wait_in_sync()


def _stable_members(pipeline: Pipeline, service: str, timeout: float = 30.0) -> int:
    """How many consumers the service's group has once it is not rebalancing."""
    group = f"{service}-{pipeline.prefix}"
    deadline = time.monotonic() + timeout
    while True:
        with pipeline.kafka.admin() as admin:
            described = admin.describe_groups([group])[group]
        if described["group_state"] == "Stable":
            return len(described["members"])
        assert time.monotonic() < deadline, f"{group} not stable in {timeout}s: {described}"
        time.sleep(0.5)


def _freeze_worker(pipeline: Pipeline, service: str, name: str) -> Callable[[], None]:
    def fault() -> None:
        before = _stable_members(pipeline, service)
        with pipeline.frozen(name):
            time.sleep(FREEZE_BEYOND_SESSION)
            # Taken for dead while still frozen: its partitions are the other replica's now.
            during = _stable_members(pipeline, service)
        assert during < before, f"{name} frozen, yet its group kept {during} of {before} members"

    return fault


def _freeze_postgres(pipeline: Pipeline) -> Callable[[], None]:
    def fault() -> None:
        with pipeline.postgres.frozen():
            time.sleep(POSTGRES_FREEZE)

    return fault


def _run_load(submitter: Submitter, claims: list[Any], errors: list[BaseException]) -> None:
    try:
        asyncio.run(submitter.run(claims))
    except BaseException as exc:
        errors.append(exc)


def _drive(pipeline: Pipeline, submitter: Submitter, poison: Poisoner) -> dict[str, float]:
    """Run the load and inject the faults at fractions of it; returns when each one ran."""
    claims = claim_set(CLAIMS, INVALID_EVERY)
    kafka = BrokerFaults(pipeline)
    adjudication, audit = workers("adjudication"), workers("audit-log")
    # The long faults (the freezes) are followed by wide gaps, so the load runs on through
    # them instead of waiting at the next fault's point.
    faults: list[tuple[float, str, Callable[[], None]]] = [
        (0.04, "SIGKILL an adjudication worker", _kill_and_restart(pipeline, adjudication[0])),
        (0.08, "SIGKILL an audit worker", _kill_and_restart(pipeline, audit[1])),
        (0.10, "poison batch 1", poison.inject),
        (0.12, "SIGKILL the busy partition's leader", kafka.kill_busy_leader),
        (0.20, "restart the killed Kafka node", kafka.restart_killed),
        (0.26, "freeze the intake group's coordinator", kafka.freeze_coordinator),
        (0.46, "restart PostgreSQL", pipeline.postgres.restart),
        (0.50, "freeze PostgreSQL", _freeze_postgres(pipeline)),
        (
            0.58,
            "freeze an adjudication worker",
            _freeze_worker(pipeline, "adjudication", adjudication[1]),
        ),
        (0.80, "SIGKILL an adjudication worker", _kill_and_restart(pipeline, adjudication[0])),
        (0.86, "SIGKILL an audit worker", _kill_and_restart(pipeline, audit[0])),
        (0.90, "poison batch 2", poison.inject),
    ]
    errors: list[BaseException] = []
    # While waiting for fault n the load may run on only up to fault n+1's point (the last
    # one: to 95 %), so it keeps going during a fault but can neither skip nor outrun one.
    gates = [int(at * CLAIMS) for at, _, _ in faults[1:]] + [int(0.95 * CLAIMS)]
    submitter.gate = gates[0]
    thread = threading.Thread(target=_run_load, args=(submitter, claims, errors), daemon=True)
    began = time.monotonic()
    thread.start()
    timings: dict[str, float] = {}
    for n, (at, name, fault) in enumerate(faults):
        submitter.gate = gates[n]
        while submitter.progress < at * CLAIMS and thread.is_alive():
            time.sleep(0.05)
        assert thread.is_alive(), f"the load ended before fault {name!r}: {errors}"
        started = time.monotonic()
        fault()
        timings[f"{n}: {name}"] = round(time.monotonic() - started, 1)
        pipeline.check_alive()
    submitter.gate = None
    thread.join(SETTLE_TIMEOUT)
    assert not thread.is_alive(), "the load did not finish"
    if errors:
        raise errors[0]
    timings["load"] = round(time.monotonic() - began, 1)
    return timings


def _replays_return_the_first_answer(pipeline: Pipeline, submitter: Submitter) -> None:
    """The same keys again after the storm: the first answers, no new claims."""
    claims = {key: body for key, _, body in claim_set(CLAIMS, INVALID_EVERY)}
    accepted = [o for o in submitter.outcomes if o.status == 202][::25]
    with httpx.Client(base_url=pipeline.api_url, headers=_auth(), timeout=30) as client:
        for outcome in accepted:
            response = client.post(
                "/v1/claims", json=claims[outcome.key], headers={"Idempotency-Key": outcome.key}
            )
            assert response.status_code == 202, response.text
            assert response.json()["id"] == outcome.claim_id
            assert response.headers.get("Idempotent-Replayed") == "true"


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def _settled(pipeline: Pipeline, accepted: int) -> dict[str, int]:
    intake, adj, audit = (pipeline.databases[s] for s in ("intake", "adjudication", "audit-log"))
    payable = "payment_status IN ('requested', 'completed')"
    expected_audit = scalar(
        adj, f"SELECT 2 * count(*) + 2 * count(*) FILTER (WHERE {payable}) FROM claims"
    )
    return {
        "intake outbox unsent": scalar(
            intake, "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        ),
        "adjudication outbox unsent": scalar(
            adj, "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        ),
        "claims not adjudicated": accepted - scalar(adj, "SELECT count(*) FROM claims"),
        "payments unanswered": scalar(
            adj, "SELECT count(*) FROM claims WHERE payment_status = 'requested'"
        ),
        "intake statuses queued": scalar(
            intake, "SELECT count(*) FROM claims WHERE status = 'queued'"
        ),
        "intake statuses awaiting payment": scalar(
            intake, "SELECT count(*) FROM claims WHERE status = 'adjudicated'"
        )
        - scalar(
            adj, f"SELECT count(*) FROM claims WHERE status = 'adjudicated' AND NOT {payable}"
        ),
        "audit records missing": expected_audit
        - scalar(
            audit,
            "SELECT count(*) FROM audit_records WHERE topic = ANY($1::text[])",
            [pipeline.prefix + t for t in CLAIM_TOPICS],
        ),
    }


def _wait_settled(pipeline: Pipeline, accepted: int) -> float:
    began = time.monotonic()
    state: dict[str, int] = {}
    while time.monotonic() - began < SETTLE_TIMEOUT:
        pipeline.check_alive()
        state = _settled(pipeline, accepted)
        if not any(state.values()):
            return round(time.monotonic() - began, 1)
        time.sleep(1.0)
    # Where every thread of every process stands, in its log under the test's tmp_path.
    pipeline.dump_stacks()
    raise AssertionError(
        f"the pipeline did not settle within {SETTLE_TIMEOUT:.0f}s: {state}; "
        f"thread dumps in the logs under {pipeline.logs}"
    )


def test_every_acknowledged_claim_is_stored_adjudicated_paid_and_audited_once_through_faults(
    pipeline: Pipeline,
) -> None:
    submitter = Submitter(pipeline.api_url, _auth())
    poison = Poisoner(pipeline)
    timings = _drive(pipeline, submitter, poison)
    _replays_return_the_first_answer(pipeline, submitter)
    accepted = {o.claim_id for o in submitter.outcomes if o.status == 202}
    timings["settle"] = _wait_settled(pipeline, len(accepted))
    print(f"fault test timings (s): {timings}; retries: {dict(submitter.retried)}")

    # The client: every valid claim accepted once, every invalid one refused.
    assert len(submitter.outcomes) == CLAIMS
    assert {o.status for o in submitter.outcomes if o.valid} == {202}
    assert {o.status for o in submitter.outcomes if not o.valid} == {422}
    assert len(accepted) == sum(o.valid for o in submitter.outcomes)
    assert sum(submitter.retried.values()) > 0, "the faults should have forced client retries"

    intake, adj, audit = (pipeline.databases[s] for s in ("intake", "adjudication", "audit-log"))
    _topics_are_replicated(pipeline)
    _acknowledged_equals_stored(intake, accepted)
    _adjudicated_exactly_once(intake, adj, accepted)
    _provider_totals_match_a_recount(intake, adj)
    _intake_statuses_follow_adjudication(intake, adj)
    _audit_holds_every_event_once(pipeline, audit)
    _chain_verifies(pipeline)
    _dead_letters_are_exactly_the_poison(pipeline, poison)


def _topics_are_replicated(pipeline: Pipeline) -> None:
    """The services created every topic with three replicas and two in sync required."""
    for topic in [*AUDITED_TOPICS, "claimflow.deadletter"]:
        replicas, config = pipeline.kafka.topic(pipeline.prefix + topic)
        assert {len(nodes) for nodes in replicas} == {3}, topic
        assert config["min.insync.replicas"] == "2", topic


def _acknowledged_equals_stored(intake: str, accepted: set[str | None]) -> None:
    stored = {str(r["id"]) for r in query(intake, "SELECT id FROM claims")}
    assert stored == accepted
    # Retries with one key made one claim, and nothing invalid was stored.
    assert not query(
        intake, "SELECT external_id FROM claims GROUP BY external_id HAVING count(*) > 1"
    )
    assert scalar(intake, "SELECT count(*) FROM claims WHERE external_id LIKE 'bad-%'") == 0
    assert scalar(intake, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


def _adjudicated_exactly_once(intake: str, adj: str, accepted: set[str | None]) -> None:
    results = {str(r["claim_id"]) for r in query(adj, "SELECT claim_id FROM claims")}
    assert results == accepted
    lines_in = scalar(intake, "SELECT count(*) FROM claim_lines")
    assert scalar(adj, "SELECT count(*) FROM claim_line_results") == lines_in
    assert scalar(adj, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


def _provider_totals_match_a_recount(intake: str, adj: str) -> None:
    """provider_totals, kept incrementally, against a recount from intake's own copy of the
    lines of every claim adjudication did not reject."""
    rejected = {
        r["claim_id"] for r in query(adj, "SELECT claim_id FROM claims WHERE status = 'rejected'")
    }
    fees: dict[str, Decimal] = defaultdict(Decimal)
    claims: dict[str, set[Any]] = defaultdict(set)
    for row in query(intake, "SELECT claim_id, provider_npi, net_fee FROM claim_lines"):
        if row["claim_id"] not in rejected:
            fees[row["provider_npi"]] += row["net_fee"]
            claims[row["provider_npi"]].add(row["claim_id"])
    recount = {npi: (fees[npi], len(claims[npi])) for npi in fees}
    totals = {
        r["provider_npi"]: (r["net_fee_total"], r["claim_count"])
        for r in query(adj, "SELECT provider_npi, net_fee_total, claim_count FROM provider_totals")
    }
    assert totals == recount


def _intake_statuses_follow_adjudication(intake: str, adj: str) -> None:
    expected = {
        str(r["claim_id"]): "paid" if r["payment_status"] == "completed" else r["status"]
        for r in query(adj, "SELECT claim_id, status, payment_status FROM claims")
    }
    actual = {str(r["id"]): r["status"] for r in query(intake, "SELECT id, status FROM claims")}
    assert actual == expected
    assert Counter(expected.values())["paid"] > 0


def _audit_holds_every_event_once(pipeline: Pipeline, audit: str) -> None:
    topics = [pipeline.prefix + topic for topic in AUDITED_TOPICS]
    records = read_topics(pipeline.kafka.bootstrap_servers, topics)
    events: set[str] = set()
    for record in records:
        try:
            events.add(json.loads(record.value)["id"])
        except (ValueError, TypeError, KeyError):
            continue  # the injected poison: dead-lettered, never audited
    audited = query(audit, "SELECT event_id FROM audit_records WHERE type <> $1", CHECKPOINT_TYPE)
    assert len(audited) == len(events)
    assert {r["event_id"] for r in audited} == events


def _chain_verifies(pipeline: Pipeline) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "claimflow_audit.cli", "verify"],
        env=pipeline.audit_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["valid"] is True
    assert report["first_invalid"] is None


def _dead_letters_are_exactly_the_poison(pipeline: Pipeline, poison: Poisoner) -> None:
    dead = read_topics(pipeline.kafka.bootstrap_servers, [pipeline.prefix + "claimflow.deadletter"])
    found = set()
    identities = set()
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        found.add((record.value, headers["dlq.source.topic"], headers["dlq.consumer.group"]))
        identities.add(
            (
                headers["dlq.consumer.group"],
                headers["dlq.source.topic"],
                headers["dlq.source.partition"],
                headers["dlq.source.offset"],
            )
        )
    assert found == poison.expected
    # A consumer killed between dead-lettering and committing repeats a dead letter, never
    # with another source record: at least once, by design.
    assert len(identities) == len(poison.expected)
