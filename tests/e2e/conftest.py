"""Real service processes on the session's PostgreSQL and Kafka."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from claimflow_devstack import processes
from claimflow_devstack.services import service

API_KEY = "e2e-key"


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
