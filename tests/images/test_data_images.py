"""The local cluster's data-tier images, run here as their StatefulSets run them: a fresh
volume (a tmpfs owned by the image's user), the entrypoint's first start, then a restart on
the same volume. On the host they listen on 127.0.0.1 only, at ports of the test's choosing."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from kafka import KafkaConsumer, KafkaProducer

from claimflow_devstack import processes
from claimflow_devstack.docker_engine import DockerEngine
from claimflow_devstack.images import KAFKA_IMAGE, POSTGRES_IMAGE, build_data_images


@pytest.fixture(scope="module")
def data_images(docker_engine: DockerEngine) -> DockerEngine:
    build_data_images(docker_engine)
    return docker_engine


@pytest.fixture
def container_names(docker_engine: DockerEngine) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        docker_engine.docker("rm", "--force", name, check=False)


def _wait(
    condition: Callable[[], bool], timeout: float, what: str, logs: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout:.0f}s; its log:\n{logs()}")


def _logs(engine: DockerEngine, name: str) -> Callable[[], str]:
    def read() -> str:
        result = engine.docker("logs", "--tail", "60", name, check=False)
        return (result.stdout + result.stderr).decode(errors="replace")

    return read


def test_the_postgres_image_initialises_once_and_keeps_its_data(
    data_images: DockerEngine, container_names: list[str], tmp_path: Path
) -> None:
    engine, port = data_images, processes.free_port()
    init = tmp_path / "init"
    init.mkdir()
    (init / "10-roles.sql").write_text(
        "CREATE ROLE intake LOGIN PASSWORD 'local-only';\nCREATE DATABASE intake OWNER intake;\n"
    )
    # Readable by the image's own user, as a mounted Secret is.
    init.chmod(0o755)
    (init / "10-roles.sql").chmod(0o644)
    volume = f"claimflow-test-pg-{secrets.token_hex(4)}"
    container_names.append(volume)

    def start() -> str:
        name = f"{volume}-{secrets.token_hex(2)}"
        container_names.append(name)
        engine.docker(
            "run", "--detach", "--name", name, "--network=host",
            "--volume", f"{volume}:/var/lib/postgresql/data",
            "--volume", f"{init}:/etc/claimflow-postgres/init:ro",
            "--env", "POSTGRES_LISTEN=127.0.0.1", "--env", f"PGPORT={port}",
            POSTGRES_IMAGE,
        )  # fmt: skip
        return name

    def answers() -> bool:
        try:
            _sql(port, "SELECT 1")
        except (OSError, asyncpg.PostgresError):
            return False
        return True

    first = start()
    _wait(answers, 120, "PostgreSQL did not accept the init script's role", _logs(engine, first))
    _sql(port, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
    # A clean stop (SIGTERM to the postmaster, PID 1), then a start on the same volume: no
    # second initdb (it would refuse a non-empty folder), the row is still there.
    engine.docker("stop", "--time", "30", first, timeout=60)
    exit_code = engine.docker("inspect", "--format", "{{.State.ExitCode}}", first).stdout
    assert exit_code.decode().strip() == "0", _logs(engine, first)()
    second = start()
    _wait(answers, 120, "PostgreSQL did not restart on its volume", _logs(engine, second))
    assert _sql(port, "SELECT n FROM kept", fetch=True) == [(42,)]
    engine.docker("rm", "--force", first, second, check=False)
    engine.docker("volume", "rm", volume, check=False)


def _sql(port: int, sql: str, *, fetch: bool = False) -> list[tuple[object, ...]]:
    """Run `sql` as the init script's role: its rows when `fetch`, else several statements."""

    async def run() -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=port, user="intake", password="local-only", database="intake"
        )
        try:
            if fetch:
                return [tuple(row) for row in await conn.fetch(sql)]
            await conn.execute(sql)
            return []
        finally:
            await conn.close()

    return asyncio.run(run())


def test_the_kafka_image_serves_one_kraft_node(
    data_images: DockerEngine, container_names: list[str]
) -> None:
    engine, port, controller = data_images, processes.free_port(), processes.free_port()
    name = f"claimflow-test-kafka-{secrets.token_hex(4)}"
    container_names.append(name)
    engine.docker(
        "run", "--detach", "--name", name, "--network=host",
        "--tmpfs", "/var/lib/kafka:uid=10001,gid=10001",
        "--env", "KAFKA_LISTEN_HOST=127.0.0.1", "--env", "KAFKA_ADVERTISED_HOST=127.0.0.1",
        "--env", f"KAFKA_PORT={port}", "--env", f"KAFKA_CONTROLLER_PORT={controller}",
        KAFKA_IMAGE,
    )  # fmt: skip
    bootstrap = f"127.0.0.1:{port}"
    _wait(
        lambda: processes.port_accepts("127.0.0.1", port),
        120,
        "Kafka did not listen",
        _logs(engine, name),
    )
    topic = f"t{secrets.token_hex(4)}.claims.submitted"
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for n in range(3):
            producer.send(topic, key=b"k", value=f"m{n}".encode()).get(timeout=60)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{secrets.token_hex(3)}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    try:
        values = [record.value for record in consumer][:3]
    finally:
        consumer.close()
    assert values == [b"m0", b"m1", b"m2"]
