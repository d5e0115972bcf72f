"""Real service processes on the session's PostgreSQL and Kafka."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from claimflow_devstack import processes
from claimflow_devstack.otelcol import Collector
from claimflow_devstack.otlp_receiver import OtlpReceiver, otlp_receiver
from claimflow_devstack.paths import example_plans_dir
from claimflow_devstack.services import SERVICES, ServiceSpec, service
from claimflow_devstack.stack import api_keys_config, service_env

API_KEY = "e2e-key"
READY_TIMEOUT = 120.0


class ServiceProcesses:
    """Starts, kills and restarts one service's processes; stops them all at teardown."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: dict[str, processes.ManagedProcess] = {}

    def start(self, name: str, argv: list[str], port: int) -> processes.ManagedProcess:
        proc = processes.start(name, argv, log_path=self.logs / f"{name}.log", env=self.env)
        self.running[name] = proc
        processes.wait_ready(f"http://127.0.0.1:{port}/readyz", [proc], 60)
        return proc

    def kill(self, name: str) -> None:
        processes.stop(self.running.pop(name), sig=signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self.running):
            processes.stop(self.running.pop(name))


@pytest.fixture
def intake_processes(
    database_url: str, kafka_broker: Any, topic_prefix: str, tmp_path: Path
) -> Iterator[Callable[..., Any]]:
    api_port, worker_port = processes.free_port(), processes.free_port()
    env = {
        **os.environ,
        "CLAIMFLOW_DATABASE_URL": database_url,
        "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "CLAIMFLOW_KAFKA_TOPIC_PREFIX": topic_prefix,
        "CLAIMFLOW_API_KEYS": json.dumps(
            [
                {
                    "principal": "e2e",
                    "sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                    "roles": ["submitter", "reader"],
                }
            ]
        ),
        "CLAIMFLOW_HTTP_PORT": str(api_port),
        "CLAIMFLOW_WORKER_HTTP_PORT": str(worker_port),
        "CLAIMFLOW_OUTBOX_BATCH_SIZE": "1",
        "CLAIMFLOW_CONSUMER_GROUP": f"intake-{topic_prefix}",
        "CLAIMFLOW_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        # The tests here are loads from one principal, not a client to be kept in check.
        "CLAIMFLOW_SUBMISSION_RATE_LIMIT": "100000/minute",
        "CLAIMFLOW_IMPORT_RATE_LIMIT": "100000/minute",
    }
    service("intake").run_migrations(env, tmp_path)
    group = ServiceProcesses(env, tmp_path)

    def start(role: str, **settings: str) -> Any:
        """Start `role`, with CLAIMFLOW_* `settings` (lower-case names) added to the env."""
        group.env.update({f"CLAIMFLOW_{name.upper()}": value for name, value in settings.items()})
        port = api_port if role == "api" else worker_port
        return group.start(role, service("intake").command(role), port)

    start.group = group  # type: ignore[attr-defined]
    start.base_url = f"http://127.0.0.1:{api_port}"  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        group.stop_all()


@dataclass
class Pipeline:
    """Every registered service running as `make run` starts it: where each answers, the env
    each was started with (for its command-line tools), and the processes' logs."""

    urls: dict[str, str]
    envs: dict[str, dict[str, str]]
    logs: Path
    topic_prefix: str

    def log_entries(self, process: str) -> list[dict[str, Any]]:
        entries = []
        for line in (self.logs / f"{process}.log").read_text().splitlines():
            if line.startswith("{"):
                entries.append(json.loads(line))
        return entries


@dataclass
class TracedPipeline(Pipeline):
    """The pipeline, every process exporting its spans to `receiver`."""

    receiver: OtlpReceiver


def _with_free_ports(spec: ServiceSpec) -> ServiceSpec:
    worker = processes.free_port() if spec.worker_port is not None else None
    return dataclasses.replace(spec, port=processes.free_port(), worker_port=worker)


@contextmanager
def whole_pipeline(
    postgres_server: Any,
    kafka_broker: Any,
    topic_prefix: str,
    logs: Path,
    *,
    key: str,
    env: Mapping[str, str] | None = None,
) -> Iterator[Pipeline]:
    """Start every service's processes (intake API and worker, adjudication API and worker,
    the fake payments system, audit-log API and worker), each service on a database of its
    own in the session's PostgreSQL, on the session's Kafka under `topic_prefix`, with the
    example plans; `env` is added to every process's. Stopped and their databases dropped
    on exit."""
    started: list[processes.ManagedProcess] = []
    databases: list[str] = []
    envs: dict[str, dict[str, str]] = {}
    try:
        specs = [_with_free_ports(s) for s in SERVICES]
        for spec in specs:
            database = f"{spec.database}_{secrets.token_hex(4)}"
            databases.append(database)
            envs[spec.name] = service_env(
                spec,
                database_url=postgres_server.create_database(database),
                bootstrap_servers=kafka_broker.bootstrap_servers,
                api_keys=api_keys_config(key),
            ) | {
                "CLAIMFLOW_KAFKA_TOPIC_PREFIX": topic_prefix,
                "CLAIMFLOW_CONSUMER_GROUP": f"{spec.name}-{topic_prefix}",
                "CLAIMFLOW_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
                # The example plans `make run` publishes, read from their files here.
                "CLAIMFLOW_PLANS_DIR": str(example_plans_dir()),
                **(env or {}),
            }
            spec.run_migrations(envs[spec.name], logs)
            for role, argv in spec.processes.items():
                name = f"{spec.name}-{role}"
                started.append(
                    processes.start(name, argv, log_path=logs / f"{name}.log", env=envs[spec.name])
                )
        for spec in specs:
            for port in spec.ports():
                processes.wait_ready(f"http://127.0.0.1:{port}/readyz", started, READY_TIMEOUT)
        yield Pipeline({s.name: s.base_url for s in specs}, envs, logs, topic_prefix)
    finally:
        for proc in reversed(started):
            processes.stop(proc, 15.0)
        for database in databases:
            postgres_server.drop_database(database)


@pytest.fixture(scope="module")
def pipeline(
    postgres_server: Any, kafka_broker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TracedPipeline]:
    """The whole pipeline, `API_KEY` allowed everything (the payer's reads included), every
    process exporting OTLP to the real Collector with the project's gateway configuration
    (claimflow_devstack.otelcol), which exports to a receiver on loopback: the tests read
    what the Collector let out. Started once per module: its tests follow claims of their own
    (each its own trace) through it."""
    data = tmp_path_factory.mktemp("pipeline")
    logs = data / "logs"
    with otlp_receiver() as receiver:
        collector = Collector.start(data / "otelcol", receiver.endpoint)
        try:
            otlp = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_endpoint,
                # Export within a fraction of a second instead of the default 5 s.
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            }
            # Inside the Collector's block: the processes flush their last spans as they stop.
            prefix = f"t{secrets.token_hex(4)}."
            with whole_pipeline(
                postgres_server, kafka_broker, prefix, logs, key=API_KEY, env=otlp
            ) as running:
                yield TracedPipeline(**vars(running), receiver=receiver)
        finally:
            collector.stop()


def wait_for(probe: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within:.0f}s")
        time.sleep(0.25)
