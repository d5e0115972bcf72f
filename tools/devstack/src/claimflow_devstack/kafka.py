"""A real single-node Apache Kafka broker (KRaft), run from jars fetched from Maven Central."""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from claimflow_devstack import processes
from claimflow_devstack.errors import DevstackError, ProcessDiedError
from claimflow_devstack.kafka_install import (
    KAFKA_VERSION,
    classpath,
    ensure_installed,
    java_bin,
)

__all__ = ["KAFKA_VERSION", "KafkaBroker", "ensure_installed"]

HOST = processes.LOCALHOST
_HEAP = "768m"
_LOG4J = """\
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log_file}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


def _cluster_id() -> str:
    # Kafka's own format (Uuid.randomUuid): URL-safe base64 of 16 random bytes without
    # padding, never starting with "-" so that its CLI does not read it as an option.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _read_properties(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


class KafkaBroker:
    def __init__(
        self, data_dir: Path, port: int, controller_port: int, *, home: Path, log_path: Path
    ) -> None:
        self.data_dir = data_dir
        self.home = home
        self.host = HOST
        self.port = port
        self.controller_port = controller_port
        self.log_path = log_path
        self.server_log = data_dir / "server.log"
        self._proc: processes.ManagedProcess | None = None

    @classmethod
    def start(
        cls,
        data_dir: Path,
        port: int | None = None,
        *,
        timeout: float = 120.0,
        log_path: Path | None = None,
    ) -> KafkaBroker:
        home = ensure_installed()
        data_dir = data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        previous = _read_properties(data_dir / "server.properties")
        # Reusing the old controller port keeps the static quorum config unchanged.
        voters = previous.get("controller.quorum.voters", ":0")
        controller_port = int(voters.rsplit(":", 1)[1])
        if not controller_port or not processes.port_is_free(controller_port):
            controller_port = processes.free_port()
        broker = cls(
            data_dir,
            port or processes.free_port(),
            controller_port,
            home=home,
            log_path=log_path or data_dir.with_name(f"{data_dir.name}.log"),
        )
        broker._launch(timeout)
        return broker

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("Kafka is not running")
        return self._proc.pid

    @property
    def _log_dirs(self) -> Path:
        return self.data_dir / "kraft-logs"

    def _write_config(self) -> Path:
        controller = f"{self.host}:{self.controller_port}"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{controller}",
            "listeners": f"PLAINTEXT://{self.bootstrap_servers},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap_servers}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self._log_dirs),
            "num.partitions": "3",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            # 50 partitions (the default) make the first consumer group wait seconds
            # on one small node while they are created.
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "group.initial.rebalance.delay.ms": "0",
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        return path

    def _java(self, main: str, *args: str) -> list[str]:
        log4j = self.data_dir / "log4j.properties"
        log4j.write_text(_LOG4J.format(log_file=self.server_log))
        return [
            java_bin(),
            f"-Xmx{_HEAP}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}",
            "-cp",
            classpath(self.home),
            main,
            *args,
        ]

    def _launch(self, timeout: float) -> None:
        config = self._write_config()
        if not (self._log_dirs / "meta.properties").exists():
            argv = self._java("kafka.tools.StorageTool", "format", "-t", _cluster_id())
            processes.run(
                "kafka-storage-format",
                [*argv, "-c", str(config)],
                log_path=self.log_path,
                timeout=120,
            )
        for port in (self.port, self.controller_port):
            if not processes.port_is_free(port, self.host):
                raise DevstackError(f"port {self.host}:{port} is in use; Kafka cannot bind it")
        self._proc = processes.start(
            "kafka", self._java("kafka.Kafka", str(config)), log_path=self.log_path
        )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _died(self, proc: processes.ManagedProcess) -> ProcessDiedError:
        return ProcessDiedError(
            f"{proc.died_message('starting')}\nlast lines of {self.server_log}:\n"
            f"{processes.log_tail(self.server_log)}"
        )

    @contextlib.contextmanager
    def admin(self, timeout: float = 10.0) -> Iterator[Any]:
        client = KafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            client_id="claimflow-devstack",
            bootstrap_timeout_ms=int(timeout * 1000),
            request_timeout_ms=int(timeout * 1000),
        )
        try:
            yield client
        finally:
            client.close()

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Return once an admin client can list topics: the broker serves metadata."""
        proc = self._proc
        if proc is None:
            raise RuntimeError("Kafka is not running")
        deadline = time.monotonic() + timeout
        try:
            processes.wait_for_port(self.host, self.port, timeout, proc)
        except ProcessDiedError:
            raise self._died(proc) from None
        while True:
            if not proc.alive():
                raise self._died(proc)
            try:
                with self.admin(timeout=5.0) as admin:
                    admin.list_topics()
            except (KafkaError, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"Kafka at {self.bootstrap_servers} not ready after {timeout:.0f}s "
                        f"({exc!r}); last lines of {self.server_log}:\n"
                        f"{processes.log_tail(self.server_log)}"
                    ) from exc
                time.sleep(0.25)
            else:
                return

    def create_topics(
        self,
        names: Iterable[str],
        partitions: int = 3,
        config: Mapping[str, str] | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        """Create topics that do not exist yet and wait until each has a leader."""
        names = list(names)
        spec = {
            name: {
                "num_partitions": partitions,
                "replication_factor": 1,
                "configs": dict(config or {}),
            }
            for name in names
        }
        with self.admin(timeout) as admin:
            result = admin.create_topics(spec, timeout_ms=int(timeout * 1000), raise_errors=False)
            failed = [
                f"{topic['name']}: {topic.get('error_message') or topic['error_code']}"
                for topic in result["topics"]
                if topic["error_code"] not in (0, TopicAlreadyExistsError.errno)
            ]
            if failed:
                raise DevstackError(f"could not create topics: {'; '.join(failed)}")
            admin.wait_for_topics(names, timeout_ms=int(timeout * 1000))

    def stop(self, timeout: float = 30.0) -> None:
        if self._proc is None:
            return
        # SIGTERM runs Kafka's controlled shutdown, which flushes and closes the logs
        # so the next start needs no recovery.
        processes.stop(self._proc, timeout)
        self._proc = None

    def restart(self, timeout: float = 120.0) -> None:
        self.stop()
        self._launch(timeout)

    def __repr__(self) -> str:
        pid = self._proc.pid if self._proc else None
        return (
            f"KafkaBroker({self.bootstrap_servers!r}, pid={pid}, data_dir={str(self.data_dir)!r})"
        )
