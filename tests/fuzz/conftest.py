"""Service APIs as real processes for the fuzzers: one uvicorn each, as `make run` starts them,
on a fresh database of the session's PostgreSQL and the session's Kafka."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from claimflow_devstack import processes
from claimflow_devstack.services import SERVICES
from claimflow_devstack.stack import api_keys_config, service_env

API_KEY = "fuzz-key"
READY_TIMEOUT = 120.0

# (service name, extra environment) -> the API's base URL
StartApi = Callable[[str, Mapping[str, str]], str]


@pytest.fixture
def service_api(
    postgres_server: Any, kafka_broker: Any, topic_prefix: str, tmp_path: Path
) -> Iterator[StartApi]:
    """Starts a service's migration and API process; stops them and drops the database."""
    started: list[processes.ManagedProcess] = []
    databases: list[str] = []

    def start(name: str, extra_env: Mapping[str, str]) -> str:
        spec = next(s for s in SERVICES if s.name == name)
        spec = dataclasses.replace(spec, port=processes.free_port(), worker_port=None)
        database = f"{spec.database}_{secrets.token_hex(4)}"
        databases.append(database)
        env = (
            service_env(
                spec,
                database_url=postgres_server.create_database(database),
                bootstrap_servers=kafka_broker.bootstrap_servers,
                # One principal with every role: the fuzzers reach every operation.
                api_keys=api_keys_config(API_KEY),
            )
            | {"CLAIMFLOW_KAFKA_TOPIC_PREFIX": topic_prefix, "CLAIMFLOW_LOG_LEVEL": "WARNING"}
            | dict(extra_env)
        )
        spec.run_migrations(env, tmp_path)
        proc = processes.start(
            f"{name}-api", spec.processes["api"], log_path=tmp_path / f"{name}-api.log", env=env
        )
        started.append(proc)
        processes.wait_ready(f"{spec.base_url}/readyz", [proc], READY_TIMEOUT)
        return spec.base_url

    try:
        yield start
    finally:
        for proc in reversed(started):
            processes.stop(proc, 15.0)
        for database in databases:
            postgres_server.drop_database(database)
