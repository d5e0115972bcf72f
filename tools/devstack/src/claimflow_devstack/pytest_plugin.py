"""Session PostgreSQL and Kafka for tests: started on first use, stopped by PID at the end.

Loaded with `-p claimflow_devstack.pytest_plugin`. A part that cannot start fails the
tests that need it, saying what is missing: skipping would let a broken machine pass.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from claimflow_devstack.errors import DevstackError
from claimflow_devstack.paths import state_dir

if TYPE_CHECKING:
    # Imported where used: every pytest run loads this plugin, few need Kafka.
    from claimflow_devstack.docker_engine import DockerEngine
    from claimflow_devstack.hydra import HydraServer
    from claimflow_devstack.kafka import KafkaBroker, KafkaCluster
    from claimflow_devstack.kube import KubeCluster
    from claimflow_devstack.kube_node import KubeNode
    from claimflow_devstack.postgres import PostgresServer
    from claimflow_devstack.redis import RedisServer

_INTEGRATION_FIXTURES = frozenset(
    {
        "postgres_server",
        "postgres_tls_server",
        "kafka_broker",
        "kafka_cluster",
        "database_url",
        "redis_server",
        "oidc_server",
        "kube_cluster",
        "kube_node",
    }
)
_T = TypeVar("_T")


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # A cancelled CI job or a `kill` sends SIGTERM, whose default action ends the process
    # without teardown or atexit: the session's PostgreSQL, Kafka and Redis would outlive it.
    # As an interrupt, pytest tears the fixtures down as it does on Ctrl-C.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupted)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tryfirst: the mark must exist before `-m "not integration"` deselects by it.
    for item in items:
        if _INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


# Threads that outlive the module that started them by design, by name prefix, with the reason.
# Anything else a module leaves running after its fixtures finished is that module's bug: a
# poller or consumer still running reads, writes and fails into the tests that follow.
LONG_LIVED_THREADS = {
    # asyncio.to_thread on the session's event loop (pytest-asyncio, loop scope "session"):
    # the loop keeps its default executor's threads for reuse and joins them when it closes.
    "asyncio_": "the session event loop's default executor",
    # Starlette runs sync endpoints and file I/O on anyio's pool, which keeps idle workers
    # for reuse and retires each after 10 s idle.
    "AnyIO worker thread": "anyio's worker pool of the session event loop",
}
# Threads told to stop may take a moment to end; joining them is free when none is left.
THREAD_EXIT_GRACE_SECONDS = 5.0

_module_threads: dict[str, set[threading.Thread]] = {}


def _module_key(item: pytest.Item) -> str:
    return str(item.path)


def _leftover_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not t.name.startswith(tuple(LONG_LIVED_THREADS))
    ]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    key = _module_key(item)
    if key not in _module_threads:
        _module_threads.clear()
        _module_threads[key] = set(threading.enumerate())
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, None, None]:
    result = yield
    key = _module_key(item)
    if nextitem is not None and _module_key(nextitem) == key:
        return result
    # The module's last test: its module-scoped fixtures have just been finalized (and at the
    # session's end the session's too), so whatever thread it started must be gone.
    before = _module_threads.pop(key, set())
    deadline = time.monotonic() + THREAD_EXIT_GRACE_SECONDS
    for thread in _leftover_threads(before):
        thread.join(max(0.0, deadline - time.monotonic()))
    left = _leftover_threads(before)
    if left:
        names = ", ".join(sorted(f"{t.name!r} (daemon={t.daemon})" for t in left))
        pytest.fail(
            f"{item.path.name} left threads running after its fixtures finished: {names}; "
            "a fixture that starts a thread must stop and join it at teardown",
            pytrace=False,
        )
    return result


def _start_or_fail(what: str, start: Callable[[], _T]) -> _T:
    try:
        return start()
    except (DevstackError, OSError, TimeoutError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or ""
        message = f"could not start {what} for this test session: {exc}\n{detail}".rstrip()
    # Failing outside the except block keeps pytest from printing the cause twice.
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def devstack_dir() -> Iterator[Path]:
    """This session's scratch dir for server data; removed after the servers stop."""
    path = state_dir() / f"test-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(devstack_dir: Path) -> Iterator[PostgresServer]:
    from claimflow_devstack.postgres import PostgresServer  # noqa: PLC0415

    server = _start_or_fail(
        "PostgreSQL", lambda: PostgresServer.start(devstack_dir / "postgres", fast=True)
    )
    # Also at interpreter exit, in case pytest dies before fixture teardown.
    atexit.register(server.stop)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_tls_server(devstack_dir: Path) -> Iterator[PostgresServer]:
    """A second PostgreSQL, only for the tests of TLS to the database: `ssl = on` with a
    certificate of a CA made for the session (its `tls.ca_file`). The session's own server
    runs the embedded PostgreSQL, which is built without OpenSSL."""
    from claimflow_devstack.postgres import PostgresServer  # noqa: PLC0415
    from claimflow_devstack.tls import issue_server_certificate  # noqa: PLC0415

    certificate = issue_server_certificate(devstack_dir / "postgres-tls-ca", "postgres")
    server = _start_or_fail(
        "PostgreSQL with TLS",
        lambda: PostgresServer.start(devstack_dir / "postgres-tls", fast=True, tls=certificate),
    )
    atexit.register(server.stop)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka_broker(devstack_dir: Path) -> Iterator[KafkaBroker]:
    from claimflow_devstack.kafka import KafkaBroker  # noqa: PLC0415

    # Secured: a SASL_SSL listener with SCRAM users and ACLs beside the plain one, for the
    # tests of Kafka security; the others use the plain listener as before.
    broker = _start_or_fail(
        "Kafka", lambda: KafkaBroker.start(devstack_dir / "kafka", secured=True)
    )
    atexit.register(broker.stop)
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_cluster(devstack_dir: Path) -> Iterator[KafkaCluster]:
    """Three Kafka nodes as one KRaft cluster (replication 3, min in-sync replicas 2), for the
    tests that stop, kill and freeze brokers; every other test shares the one `kafka_broker`."""
    from claimflow_devstack.kafka import KafkaCluster  # noqa: PLC0415

    cluster = _start_or_fail(
        "a 3-node Kafka cluster", lambda: KafkaCluster.start(devstack_dir / "kafka-cluster")
    )
    atexit.register(cluster.stop)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def oidc_server(devstack_dir: Path, postgres_server: PostgresServer) -> Iterator[HydraServer]:
    """Ory Hydra, issuing JWT access tokens, its state in a database of the session's
    PostgreSQL."""
    from claimflow_devstack.hydra import HydraServer  # noqa: PLC0415

    postgres_server.create_database("hydra")
    dsn = postgres_server.dsn("hydra").replace("postgresql://", "postgres://") + "?sslmode=disable"
    server = _start_or_fail("Ory Hydra", lambda: HydraServer.start(devstack_dir / "hydra", dsn))
    atexit.register(server.stop)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(devstack_dir: Path) -> Iterator[RedisServer]:
    from claimflow_devstack.redis import RedisServer  # noqa: PLC0415

    server = _start_or_fail("Redis", lambda: RedisServer.start(devstack_dir / "redis"))
    atexit.register(server.stop)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kube_cluster(devstack_dir: Path) -> Iterator[KubeCluster]:
    """kine + kube-apiserver on 127.0.0.1 (built from Go modules on first use)."""
    from claimflow_devstack.kube import KubeCluster  # noqa: PLC0415

    cluster = _start_or_fail(
        "the Kubernetes API server", lambda: KubeCluster.start(devstack_dir / "kube")
    )
    atexit.register(cluster.stop)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def docker_engine(devstack_dir: Path) -> Iterator[DockerEngine]:
    """A Docker engine of our own (no bridge, no iptables) with every service image built:
    `prepare` builds them, so here that is a cache hit."""
    from claimflow_devstack.docker_engine import DockerEngine  # noqa: PLC0415
    from claimflow_devstack.images import build_service_images  # noqa: PLC0415

    engine = _start_or_fail("the Docker engine", lambda: DockerEngine.start(devstack_dir))
    atexit.register(engine.stop)
    _start_or_fail("the service images", lambda: build_service_images(engine))
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def kube_node(devstack_dir: Path) -> Iterator[KubeNode]:
    """A real single-node Kubernetes (root only): pods run, Services route, DNS answers.
    Torn down at the end; its teardown fails if the host is not as it was before."""
    from claimflow_devstack.kube_node import KubeNode  # noqa: PLC0415

    node = _start_or_fail("a Kubernetes node", lambda: KubeNode.up(devstack_dir / "kube-node"))
    atexit.register(node.down)
    yield node
    node.down()


@pytest.fixture
def kube_namespace(kube_cluster: KubeCluster) -> str:
    """A fresh namespace for one test (never deleted: no namespace controller runs)."""
    return kube_cluster.create_namespace(f"t-{secrets.token_hex(5)}")


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test, as a postgresql+asyncpg:// DSN."""
    name = f"test_{secrets.token_hex(6)}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix like "t1a2b3c4d." that keeps one test's Kafka topics its own."""
    return f"t{secrets.token_hex(4)}."
