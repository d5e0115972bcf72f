"""`claimflow-dev run`: PostgreSQL, Kafka and every registered service, on this machine."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from claimflow_devstack import processes
from claimflow_devstack.errors import DevstackError
from claimflow_devstack.kafka import KafkaBroker
from claimflow_devstack.paths import example_plans_dir, logs_dir, state_dir
from claimflow_devstack.postgres import PostgresServer
from claimflow_devstack.services import ServiceSpec
from claimflow_shared.plans import PlanFileError, plans_topic, publish_plan_files
from claimflow_shared.settings import ServiceSettings

READY_TIMEOUT = 60.0
# The local stack's one key may do everything, the payer's reads included.
_DEV_ROLES = ["submitter", "reader", "auditor", "payer-reader"]
PLANS_SOURCE = "/claimflow/devstack"


def _port_from_env(var: str, default: int) -> int:
    value = os.environ.get(var, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise DevstackError(f"{var}={value!r} is not a port number") from None


def api_key() -> str:
    """CLAIMFLOW_API_KEY, else the key in .state/api-key, made once so reruns keep it."""
    from_env = os.environ.get("CLAIMFLOW_API_KEY")
    if from_env:
        return from_env
    path = state_dir() / "api-key"
    if path.exists():
        return path.read_text().strip()
    import secrets  # noqa: PLC0415

    key = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


def api_keys_config(key: str) -> str:
    # Services store only the digest, as they would for real keys.
    digest = hashlib.sha256(key.encode()).hexdigest()
    return json.dumps([{"principal": "dev", "sha256": digest, "roles": _DEV_ROLES}])


def service_env(
    spec: ServiceSpec, *, database_url: str, bootstrap_servers: str, api_keys: str
) -> dict[str, str]:
    return {
        **os.environ,
        **spec.database_env(database_url),
        "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "CLAIMFLOW_API_KEYS": api_keys,
        "CLAIMFLOW_HTTP_HOST": "127.0.0.1",
        **spec.port_env(),
        "CLAIMFLOW_SERVICE_NAME": spec.name,
        **spec.env(),
    }


class LocalStack:
    def __init__(self, services: Sequence[ServiceSpec], repo: Path) -> None:
        # Moves every service's ports, so a second stack (a test's) can run beside `make run`.
        offset = _port_from_env("CLAIMFLOW_DEV_PORT_OFFSET", 0)
        self.services = [spec.moved(offset) for spec in services]
        self.repo = repo
        self.key = api_key()
        self.postgres: PostgresServer | None = None
        self.kafka: KafkaBroker | None = None
        self.procs: dict[str, list[processes.ManagedProcess]] = {}
        self._reported_dead: set[int] = set()

    def start(self) -> None:
        logs = logs_dir()
        for spec in self.services:
            for port in spec.ports():
                if not processes.port_is_free(port):
                    raise DevstackError(f"port {port} for {spec.name} is already in use")
        pg_port = _port_from_env("CLAIMFLOW_DEV_PG_PORT", 55432)
        kafka_port = _port_from_env("CLAIMFLOW_DEV_KAFKA_PORT", 9092)
        print(f"starting PostgreSQL on 127.0.0.1:{pg_port} ...", flush=True)  # noqa: T201
        self.postgres = PostgresServer.start(
            state_dir() / "postgres", pg_port, log_path=logs / "postgres.log"
        )
        print(f"starting Kafka on 127.0.0.1:{kafka_port} ...", flush=True)  # noqa: T201
        self.kafka = KafkaBroker.start(
            state_dir() / "kafka", kafka_port, log_path=logs / "kafka.log"
        )
        self._publish_plans()
        for spec in self.services:
            self._start_service(spec)
        # Every service boots in parallel; sample data waits until all are ready
        # because one service's sample may travel through another.
        for spec in self.services:
            self._wait_ready(spec)
        for spec in self.services:
            if spec.load_sample is not None:
                spec.load_sample(spec.base_url, self.key, self.repo)

    def _publish_plans(self) -> None:
        """The example BenefitPlan resources onto the compacted plans topic, as the operator
        publishes them from a cluster: adjudication reads plans only from there."""
        assert self.kafka is not None
        settings = ServiceSettings(
            service_name="devstack", kafka_bootstrap_servers=self.kafka.bootstrap_servers
        )
        directory = example_plans_dir()
        try:
            keys = publish_plan_files(settings, directory, PLANS_SOURCE)
        except PlanFileError as exc:
            raise DevstackError(f"example plans: {exc}") from None
        topic = plans_topic(settings)
        print(f"plans: {', '.join(keys)} from {_shown(directory)} on {topic}", flush=True)  # noqa: T201

    def _start_service(self, spec: ServiceSpec) -> None:
        assert self.postgres is not None
        assert self.kafka is not None
        env = service_env(
            spec,
            database_url=self.postgres.create_database(spec.database),
            bootstrap_servers=self.kafka.bootstrap_servers,
            api_keys=api_keys_config(self.key),
        )
        logs = logs_dir()
        print(f"{spec.name}: migrating database {spec.database!r} ...", flush=True)  # noqa: T201
        spec.run_migrations(env, logs, cwd=self.repo)
        started = self.procs.setdefault(spec.name, [])
        for role, argv in spec.processes.items():
            name = f"{spec.name}-{role}"
            print(f"{spec.name}: starting {role} ...", flush=True)  # noqa: T201
            started.append(
                processes.start(
                    name,
                    argv,
                    log_path=logs / f"{name}.log",
                    env=env,
                    cwd=self.repo,
                    pid_file=state_dir() / "run" / f"{name}.pid",
                )
            )

    def _wait_ready(self, spec: ServiceSpec) -> None:
        watched = self.procs.get(spec.name, [])
        try:
            processes.wait_ready(f"{spec.base_url}/readyz", watched, READY_TIMEOUT)
        except TimeoutError as exc:
            tails = "\n".join(f"--- {p.log_path}:\n{p.log_tail(20)}" for p in watched)
            raise DevstackError(f"{exc}\n{tails}") from None

    def report_deaths(self) -> None:
        """Say once, with its log tail, when a service process has exited on its own."""
        for started in self.procs.values():
            for proc in started:
                if not proc.alive() and proc.pid not in self._reported_dead:
                    self._reported_dead.add(proc.pid)
                    print(proc.died_message("the stack was running"), flush=True)  # noqa: T201

    def stop(self) -> None:
        # Services first, newest first, so none outlives what it depends on.
        for started in reversed(list(self.procs.values())):
            for proc in reversed(started):
                processes.stop(proc, 15.0)
        self.procs.clear()
        if self.kafka is not None:
            self.kafka.stop()
        if self.postgres is not None:
            self.postgres.stop()

    def describe(self) -> str:
        assert self.postgres is not None
        assert self.kafka is not None
        lines = ["", "claimflow is running; Ctrl-C stops everything.", ""]
        for spec in self.services:
            lines += [
                f"  {spec.name:<11} API      {spec.base_url}",
                f"  {'':<11} docs     {spec.base_url}/docs",
                f"  {'':<11} metrics  {spec.base_url}/metrics",
            ]
        key_source = (
            "from CLAIMFLOW_API_KEY"
            if os.environ.get("CLAIMFLOW_API_KEY")
            else f"kept in {_shown(state_dir() / 'api-key')}"
        )
        lines += [
            f"  {'PostgreSQL':<11} {self.postgres.dsn()}",
            f"  {'Kafka':<11} {self.kafka.bootstrap_servers}",
            f"  {'API key':<11} {self.key}  ({key_source}; send as 'Authorization: Bearer <key>')",
            f"  {'Logs':<11} {_shown(logs_dir())}/<name>.log  (postgres, kafka, "
            + ", ".join(proc.name for started in self.procs.values() for proc in started)
            + ")",
            "",
        ]
        return "\n".join(lines)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
