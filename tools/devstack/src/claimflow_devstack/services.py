"""The services `claimflow-dev run` starts; a new service is one more ServiceSpec."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from claimflow_devstack import processes
from claimflow_devstack.errors import DevstackError

# (base_url, api_key, repo_root) -> None; prints what it loaded.
LoadSample = Callable[[str, str, Path], None]
# Extra environment of the service's processes, computed when the stack starts.
ExtraEnv = Callable[[], dict[str, str]]


def _no_env() -> dict[str, str]:
    return {}


# Alembic on a busy machine, serialised with any other migrator by an advisory lock.
MIGRATE_TIMEOUT = 300.0


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    database: str
    migrate: list[str]
    processes: dict[str, list[str]]
    load_sample: LoadSample | None = field(default=None, compare=False)
    env: ExtraEnv = field(default=_no_env, compare=False)
    # Where the service's worker serves health and metrics, when it has one.
    worker_port: int | None = None
    # A service that must not own its schema (audit-log) connects as this role; the stack's
    # owner DSN then goes to its migration only, which creates and grants the role.
    database_role: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def moved(self, offset: int) -> ServiceSpec:
        """The same service with its ports `offset` higher."""
        worker = None if self.worker_port is None else self.worker_port + offset
        return replace(self, port=self.port + offset, worker_port=worker)

    def command(self, role: str) -> list[str]:
        """The command line of one of the service's processes ("api", "worker", ...)."""
        try:
            return list(self.processes[role])
        except KeyError:
            raise KeyError(
                f"{self.name} has no {role!r} process (it has {', '.join(self.processes)})"
            ) from None

    def run_migrations(
        self, env: Mapping[str, str], log_dir: Path, *, cwd: Path | None = None
    ) -> None:
        """Migrate the service's database as `env` configures it; the output goes to
        `<log_dir>/<name>-migrate.log`, and its tail into the error if it fails."""
        processes.run(
            f"{self.name}-migrate",
            self.migrate,
            log_path=log_dir / f"{self.name}-migrate.log",
            timeout=MIGRATE_TIMEOUT,
            env=env,
            cwd=cwd,
        )

    def ports(self) -> list[int]:
        return [self.port] if self.worker_port is None else [self.port, self.worker_port]

    def port_env(self) -> dict[str, str]:
        env = {"CLAIMFLOW_HTTP_PORT": str(self.port)}
        if self.worker_port is not None:
            env["CLAIMFLOW_WORKER_HTTP_PORT"] = str(self.worker_port)
        return env

    def database_env(self, owner_dsn: str) -> dict[str, str]:
        if self.database_role is None:
            return {"CLAIMFLOW_DATABASE_URL": owner_dsn}
        parts = urlsplit(owner_dsn)
        host = parts.netloc.rpartition("@")[2]
        as_role = urlunsplit(parts._replace(netloc=f"{self.database_role}@{host}"))
        return {"CLAIMFLOW_DATABASE_URL": as_role, "CLAIMFLOW_MIGRATION_DATABASE_URL": owner_dsn}


def _intake_load_sample(base_url: str, api_key: str, repo: Path) -> None:
    sample = Path("examples") / "claim_1234.csv"
    response = httpx.post(
        f"{base_url}/v1/claims/import",
        content=(repo / sample).read_bytes(),
        headers={
            "Content-Type": "text/csv",
            "Authorization": f"Bearer {api_key}",
            # A rerun of `make run` on the same state replays instead of adding a copy.
            "Idempotency-Key": "sample-claim_1234",
        },
        timeout=30.0,
    )
    if response.is_error:
        raise DevstackError(
            f"intake rejected {sample}: HTTP {response.status_code} {response.text[:500]}"
        )
    claim = response.json()["claims"][0]
    print(  # noqa: T201
        f"intake: imported {sample} -> claim {claim['id']}, net fee {claim['totals']['net_fee']}"
    )


def _intake_cli(command: str) -> list[str]:
    return [sys.executable, "-m", "claimflow_intake.cli", command]


def _audit_cli(command: str) -> list[str]:
    return [sys.executable, "-m", "claimflow_audit.cli", command]


def _adjudication_cli(command: str) -> list[str]:
    return [sys.executable, "-m", "claimflow_adjudication.cli", command]


SERVICES: list[ServiceSpec] = [
    ServiceSpec(
        name="intake",
        port=8080,
        database="intake",
        migrate=_intake_cli("migrate"),
        processes={"api": _intake_cli("api"), "worker": _intake_cli("worker")},
        load_sample=_intake_load_sample,
        worker_port=9080,
    ),
    ServiceSpec(
        name="adjudication",
        port=8081,
        database="adjudication",
        migrate=_adjudication_cli("migrate"),
        processes={
            "api": _adjudication_cli("api"),
            "worker": _adjudication_cli("worker"),
            # payments is an external system; this stand-in answers its topic contract.
            "payments-fake": [sys.executable, "-m", "claimflow_devstack.fake_payments"],
        },
        # No CLAIMFLOW_PLANS_DIR: the stack publishes the example BenefitPlans to the plans
        # topic before the services start, as the operator does in a cluster.
        worker_port=9081,
    ),
    ServiceSpec(
        name="audit-log",
        port=8082,
        database="audit",
        migrate=_audit_cli("migrate"),
        processes={"api": _audit_cli("api"), "worker": _audit_cli("worker")},
        worker_port=9082,
        # Append-only for real: the services may only INSERT and SELECT the audit table.
        database_role="claimflow_audit_app",
    ),
]


def service(name: str) -> ServiceSpec:
    """The registered service called `name`."""
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(f"no service {name!r} (registered: {', '.join(s.name for s in SERVICES)})")
