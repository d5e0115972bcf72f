"""The whole pipeline as real processes on the session's PostgreSQL and Kafka.

intake (API + worker), adjudication (worker), the fake payments system and audit-log (worker),
each service with its own fresh database, all sharing the test's topic prefix and consumer
groups of their own. Processes are started, SIGKILLed and restarted by PID.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import sys
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
READY_TIMEOUT = 120.0


def _cli(package: str, command: str) -> list[str]:
    return [sys.executable, "-m", f"{package}.cli", command]


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

    def start(self, name: str) -> None:
        role = self.roles[name]
        proc = processes.start(name, role.argv, log_path=self.logs / f"{name}.log", env=role.env)
        self.running[name] = proc
        if role.ready_port is not None:
            processes.wait_ready(
                f"http://127.0.0.1:{role.ready_port}/readyz", [proc], READY_TIMEOUT
            )

    def kill(self, name: str) -> None:
        """SIGKILL, as the OOM killer or a node failure would: no shutdown code runs."""
        processes.stop(self.running.pop(name), sig=signal.SIGKILL)

    def check_alive(self) -> None:
        for proc in self.running.values():
            if not proc.alive():
                raise AssertionError(proc.died_message("the fault test was running"))

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            processes.stop(self.running.pop(name))


def _api_keys() -> str:
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    return json.dumps([{"principal": "faults", "sha256": digest, "roles": ["submitter", "reader"]}])


@pytest.fixture
def pipeline(
    postgres_server: Any, kafka_broker: Any, topic_prefix: str, tmp_path: Path
) -> Iterator[Pipeline]:
    suffix = secrets.token_hex(4)
    specs = {spec.name: spec for spec in SERVICES}
    databases = {
        name: postgres_server.create_database(f"faults_{name.replace('-', '_')}_{suffix}")
        for name in ("intake", "adjudication", "audit-log")
    }
    common = {
        **os.environ,
        "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "CLAIMFLOW_KAFKA_TOPIC_PREFIX": topic_prefix,
        "CLAIMFLOW_API_KEYS": _api_keys(),
        "CLAIMFLOW_LOG_LEVEL": "WARNING",
        "CLAIMFLOW_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
    }
    api_port = processes.free_port()
    pipeline = Pipeline(
        postgres_server,
        kafka_broker,
        topic_prefix,
        tmp_path,
        databases,
        api_url=f"http://127.0.0.1:{api_port}",
    )
    for service, package in (
        ("intake", "claimflow_intake"),
        ("adjudication", "claimflow_adjudication"),
        ("audit-log", "claimflow_audit"),
    ):
        spec = specs[service]
        worker_port = processes.free_port()
        env = {
            **common,
            **spec.database_env(databases[service]),
            **spec.env(),
            "CLAIMFLOW_SERVICE_NAME": service,
            "CLAIMFLOW_CONSUMER_GROUP": f"{service}-{topic_prefix}",
            "CLAIMFLOW_WORKER_HTTP_PORT": str(worker_port),
            # No checkpoint records in the middle of the chain: the test counts events.
            "CLAIMFLOW_CHECKPOINT_INTERVAL_SECONDS": "86400",
        }
        processes.run(
            f"{service}-migrate",
            _cli(package, "migrate"),
            log_path=tmp_path / f"{service}-migrate.log",
            timeout=300,
            env=env,
        )
        pipeline.roles[f"{service}-worker"] = Role(_cli(package, "worker"), env, worker_port)
        if service == "intake":
            api_env = {**env, "CLAIMFLOW_HTTP_PORT": str(api_port)}
            pipeline.roles["intake-api"] = Role(_cli(package, "api"), api_env, api_port)
        if service == "audit-log":
            pipeline.audit_env = env
        if service == "adjudication":
            # The external payments system, on the same prefix (it has no health endpoint).
            pipeline.roles["payments-fake"] = Role(
                [sys.executable, "-m", "claimflow_devstack.fake_payments"], env, None
            )
    # adjudication reads plans only from the plans topic, where the operator puts them.
    publish_plan_files(
        ServiceSettings(
            service_name="faults-test",
            kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
            kafka_topic_prefix=topic_prefix,
        ),
        example_plans_dir(),
        "/claimflow/faults-test",
    )
    try:
        # Consumers first, so no producer waits on a consumer group to form.
        for name in (
            "audit-log-worker",
            "payments-fake",
            "adjudication-worker",
            "intake-worker",
            "intake-api",
        ):
            pipeline.start(name)
        yield pipeline
    finally:
        pipeline.stop_all()
        for url in databases.values():
            postgres_server.drop_database(url.rsplit("/", 1)[1])
