"""The whole pipeline as real processes on the session's PostgreSQL and 3-node Kafka cluster.

intake (API + two worker replicas), adjudication (two worker replicas), the fake payments
system and audit-log (two worker replicas), each service with its own fresh database, all
sharing the test's topic prefix; a service's replicas share its consumer group. Topics are
created with three replicas and two in sync required. Processes are started, SIGKILLed,
frozen, thawed and restarted by PID.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from claimflow_devstack import processes
from claimflow_devstack.paths import example_plans_dir
from claimflow_devstack.services import SERVICES
from claimflow_shared.plans import publish_plan_files
from claimflow_shared.settings import ServiceSettings

API_KEY = "faults-submitter-key"
CONSUMER_SESSION_TIMEOUT_MS = 10_000
READY_TIMEOUT = 120.0
REPLICAS = 2


@dataclass
class Role:
    """One process of a service: how to start it and where it says it is ready."""

    argv: list[str]
    env: dict[str, str]
    ready_port: int | None


@dataclass
class Pipeline:
    postgres: Any
    kafka: Any
    prefix: str
    logs: Path
    databases: dict[str, str]  # service -> owner DSN (postgresql+asyncpg://)
    api_url: str
    roles: dict[str, Role] = field(default_factory=dict)
    running: dict[str, processes.ManagedProcess] = field(default_factory=dict)
    audit_env: dict[str, str] = field(default_factory=dict)

    def spawn(self, name: str) -> None:
        role = self.roles[name]
        self.running[name] = processes.start(
            name, role.argv, log_path=self.logs / f"{name}.log", env=role.env
        )

    def start(self, *names: str) -> None:
        """Start the processes, then wait until each says it is ready (in parallel, in effect)."""
        for name in names:
            self.spawn(name)
        for name in names:
            port = self.roles[name].ready_port
            if port is not None:
                processes.wait_ready(
                    f"http://127.0.0.1:{port}/readyz", [self.running[name]], READY_TIMEOUT
                )

    def kill(self, name: str) -> None:
        """SIGKILL, as the OOM killer or a node failure would: no shutdown code runs."""
        processes.stop(self.running.pop(name), sig=signal.SIGKILL)

    @contextlib.contextmanager
    def frozen(self, name: str) -> Iterator[None]:
        """SIGSTOP the process for the block, SIGCONT however the block ends: alive to every
        health check that asks the kernel, silent to everyone who asks it."""
        pid = self.running[name].pid
        os.killpg(pid, signal.SIGSTOP)
        try:
            processes.wait_stopped([pid])
            yield
        finally:
            os.killpg(pid, signal.SIGCONT)

    def check_alive(self) -> None:
        for proc in self.running.values():
            if not proc.alive():
                raise AssertionError(proc.died_message("the fault test was running"))

    def dump_stacks(self) -> None:
        """Every process writes its threads' Python stacks to its log and exits: faulthandler
        (PYTHONFAULTHANDLER) dumps them on SIGABRT. For a test that has already failed."""
        for proc in self.running.values():
            if proc.alive():
                with contextlib.suppress(ProcessLookupError):
                    # The stacks are what we want, not a core file of each process.
                    resource.prlimit(proc.pid, resource.RLIMIT_CORE, (0, 0))
                    os.killpg(proc.pid, signal.SIGCONT)
                    os.kill(proc.pid, signal.SIGABRT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(p.alive() for p in self.running.values()):
            time.sleep(0.1)
        for name in list(self.running):
            processes.stop(self.running.pop(name))

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            processes.stop(self.running.pop(name))


def workers(service: str) -> list[str]:
    return [f"{service}-worker-{n}" for n in range(1, REPLICAS + 1)]


def _api_keys() -> str:
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    return json.dumps([{"principal": "faults", "sha256": digest, "roles": ["submitter", "reader"]}])


@pytest.fixture
def pipeline(
    postgres_server: Any, kafka_cluster: Any, topic_prefix: str, tmp_path: Path
) -> Iterator[Pipeline]:
    suffix = secrets.token_hex(4)
    databases = {
        spec.name: postgres_server.create_database(f"faults_{spec.database}_{suffix}")
        for spec in SERVICES
    }
    replication = {
        "CLAIMFLOW_KAFKA_TOPIC_REPLICATION_FACTOR": "3",
        "CLAIMFLOW_KAFKA_TOPIC_MIN_INSYNC_REPLICAS": "2",
    }
    common = {
        **os.environ,
        **replication,
        "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_cluster.bootstrap_servers,
        "CLAIMFLOW_KAFKA_TOPIC_PREFIX": topic_prefix,
        "CLAIMFLOW_API_KEYS": _api_keys(),
        "CLAIMFLOW_LOG_LEVEL": "WARNING",
        # Thousands of claims from one principal: a load, not a client to be kept in check.
        "CLAIMFLOW_SUBMISSION_RATE_LIMIT": "1000000/minute",
        "CLAIMFLOW_IMPORT_RATE_LIMIT": "1000000/minute",
        "CLAIMFLOW_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        # A frozen replica loses its partitions after this; short, so the freezes can be too.
        "CLAIMFLOW_KAFKA_SESSION_TIMEOUT_MS": str(CONSUMER_SESSION_TIMEOUT_MS),
        # A process that stops making progress can be made to show where each thread is.
        "PYTHONFAULTHANDLER": "1",
    }
    api_port = processes.free_port()
    pipeline = Pipeline(
        postgres_server,
        kafka_cluster,
        topic_prefix,
        tmp_path,
        databases,
        api_url=f"http://127.0.0.1:{api_port}",
    )
    for spec in SERVICES:
        service = spec.name
        env = {
            **common,
            **spec.database_env(databases[service]),
            **spec.env(),
            "CLAIMFLOW_SERVICE_NAME": service,
            "CLAIMFLOW_CONSUMER_GROUP": f"{service}-{topic_prefix}",
            # No checkpoint records in the middle of the chain: the test counts events.
            "CLAIMFLOW_CHECKPOINT_INTERVAL_SECONDS": "86400",
        }
        spec.run_migrations(env, tmp_path)
        for name in workers(service):
            worker_port = processes.free_port()
            pipeline.roles[name] = Role(
                spec.command("worker"),
                {**env, "CLAIMFLOW_WORKER_HTTP_PORT": str(worker_port)},
                worker_port,
            )
        if service == "intake":
            api_env = {**env, "CLAIMFLOW_HTTP_PORT": str(api_port)}
            pipeline.roles["intake-api"] = Role(spec.command("api"), api_env, api_port)
        if service == "audit-log":
            pipeline.audit_env = env
        if service == "adjudication":
            # The external payments system, on the same prefix (it has no health endpoint).
            pipeline.roles["payments-fake"] = Role(spec.command("payments-fake"), env, None)
    # adjudication reads plans only from the plans topic, where the operator puts them.
    publish_plan_files(
        ServiceSettings(
            service_name="faults-test",
            kafka_bootstrap_servers=kafka_cluster.bootstrap_servers,
            kafka_topic_prefix=topic_prefix,
            kafka_topic_replication_factor=3,
            kafka_topic_min_insync_replicas=2,
        ),
        example_plans_dir(),
        "/claimflow/faults-test",
    )
    try:
        # Consumers first, so no producer waits on a consumer group to form.
        pipeline.start(
            *workers("audit-log"), "payments-fake", *workers("adjudication"), *workers("intake")
        )
        pipeline.start("intake-api")
        yield pipeline
    finally:
        pipeline.stop_all()
        for url in databases.values():
            postgres_server.drop_database(url.rsplit("/", 1)[1])
