"""Real Apache Kafka (KRaft), run from jars fetched from Maven Central: one combined
broker+controller node (KafkaBroker), or several of them as one cluster (KafkaCluster)."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ConfigResource,
    ConfigResourceType,
    ResourcePattern,
    ResourceType,
)
from kafka.errors import KafkaError, TopicAlreadyExistsError
from pydantic import SecretStr

from claimflow_devstack import processes
from claimflow_devstack.errors import DevstackError, ProcessDiedError
from claimflow_devstack.kafka_install import (
    KAFKA_VERSION,
    classpath,
    ensure_installed,
    java_bin,
)
from claimflow_devstack.tls import ServerCertificate, issue_server_certificate
from claimflow_shared.kafka.connection import connection_config
from claimflow_shared.kafka.grants import SERVICE_GRANTS
from claimflow_shared.settings import ServiceSettings

__all__ = ["KAFKA_VERSION", "KafkaBroker", "KafkaCluster", "ensure_installed"]

HOST = processes.LOCALHOST
_HEAP = "768m"
# Three nodes on a 2-core, 24 GiB machine: memory is plentiful, but a smaller heap keeps
# each node's G1 pauses short while the CPU is contended.
_CLUSTER_HEAP = "512m"
_LOG4J = """\
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log_file}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
# Failed logins (SASL) are logged at INFO.
log4j.logger.org.apache.kafka.common.network.Selector=INFO
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


@contextlib.contextmanager
def _admin_client(bootstrap: str | list[str], timeout: float) -> Iterator[Any]:
    client = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="claimflow-devstack",
        bootstrap_timeout_ms=int(timeout * 1000),
        request_timeout_ms=int(timeout * 1000),
    )
    try:
        yield client
    finally:
        client.close()


# The principals of the secured listener: the admin that grants ACLs, and a user per service
# (as Strimzi's KafkaUsers would be); the plain listener's ANONYMOUS is a super user too, so
# everything that does not test security goes on as before.
SASL_USERS = ("admin", *SERVICE_GRANTS)
_Settings = TypeVar("_Settings", bound=ServiceSettings)
# Every consumer dead-letters here (the services' default name).
DEAD_LETTER_TOPIC = ServiceSettings.model_fields["kafka_dead_letter_topic"].default


@dataclass(frozen=True)
class SecuredListener:
    """A SASL_SSL listener with SCRAM-SHA-512 users and the KRaft StandardAuthorizer."""

    port: int
    certificate: ServerCertificate
    passwords: Mapping[str, str]

    @classmethod
    def make(cls, tls_dir: Path) -> SecuredListener:
        return cls(
            processes.free_port(),
            issue_server_certificate(tls_dir, "kafka"),
            {user: secrets.token_urlsafe(18) for user in SASL_USERS},
        )

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    def broker_config(self, broker: KafkaBroker) -> dict[str, str]:
        plain = f"PLAINTEXT://{broker.bootstrap_servers}"
        secured = f"SASL_SSL://{self.bootstrap_servers}"
        controller = f"CONTROLLER://{broker.host}:{broker.controller_port}"
        return {
            "listeners": f"{plain},{secured},{controller}",
            "advertised.listeners": f"{plain},{secured}",
            "listener.security.protocol.map": (
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL"
            ),
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.certificate.key_and_chain_file),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            # The plain listener (loopback, the tests' and make run's) and the controller
            # connect as ANONYMOUS; the secured listener is where ACLs bite.
            "super.users": "User:ANONYMOUS;User:admin",
        }

    def format_args(self) -> list[str]:
        args: list[str] = []
        for user, password in self.passwords.items():
            args += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
        return args

    def grant(
        self, broker: KafkaBroker, topic_prefix: str, groups: Mapping[str, str] | None = None
    ) -> None:
        """Each service user's ACLs (claimflow_shared.kafka.grants) on the topics under
        `topic_prefix`, and on its group (`groups` names a test's own, by service)."""
        bindings = []
        for user, grants in SERVICE_GRANTS.items():
            principal = f"User:{user}"
            topics = [(t, ACLOperation.WRITE) for t in grants.writes]
            topics += [(t, ACLOperation.READ) for t in grants.reads]
            if grants.dead_letters:
                topics.append((DEAD_LETTER_TOPIC, ACLOperation.WRITE))
            for topic, operation in topics:
                pattern = ResourcePattern(ResourceType.TOPIC, topic_prefix + topic)
                bindings.append(ACL(principal, "*", operation, ACLPermissionType.ALLOW, pattern))
            names = {(groups or {}).get(user, g) for g in grants.groups}
            for group in names:
                pattern = ResourcePattern(ResourceType.GROUP, group)
                bindings.append(
                    ACL(principal, "*", ACLOperation.READ, ACLPermissionType.ALLOW, pattern)
                )
        with broker.admin() as admin:
            result = admin.create_acls(bindings)
        if result["failed"]:
            raise DevstackError(f"creating Kafka ACLs failed: {result['failed']}")

    def settings(self, user: str, cls: type[_Settings], topic_prefix: str = "") -> _Settings:
        """A service's settings (`cls`) connecting to this listener as `user`."""
        return cls(
            service_name=user,
            kafka_bootstrap_servers=self.bootstrap_servers,
            kafka_topic_prefix=topic_prefix,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username=user,
            kafka_sasl_password=SecretStr(self.passwords[user]),
            kafka_ssl_cafile=self.certificate.ca_file,
        )

    def client_config(self, user: str) -> dict[str, Any]:
        """kafka-python's arguments for `user` on this listener, as the services build them."""
        return connection_config(self.settings(user, ServiceSettings))


class KafkaBroker:
    """One combined broker+controller node: alone (the default), or a voter of a KafkaCluster."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        controller_port: int,
        *,
        home: Path,
        log_path: Path,
        node_id: int = 1,
        voters: Mapping[int, int] | None = None,
        cluster_id: str | None = None,
        replication: int = 1,
        heap: str = _HEAP,
        secured: SecuredListener | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.home = home
        self.host = HOST
        self.port = port
        self.controller_port = controller_port
        self.log_path = log_path
        self.server_log = data_dir / "server.log"
        self.node_id = node_id
        # node id -> controller port of every voter of the static quorum, this node included.
        self.voters = dict(voters) if voters is not None else {node_id: controller_port}
        self.cluster_id = cluster_id
        # Replicas of internal and default topics, and one fewer in-sync replicas required
        # (at least 1): with 3 nodes, one may be down without refusing acks=all writes.
        self.replication = replication
        self.heap = heap
        self.secured = secured
        self._proc: processes.ManagedProcess | None = None

    @classmethod
    def start(
        cls,
        data_dir: Path,
        port: int | None = None,
        *,
        timeout: float = 120.0,
        log_path: Path | None = None,
        secured: bool = False,
    ) -> KafkaBroker:
        """With `secured`, a second listener beside the plain one: SASL_SSL with SCRAM-SHA-512
        (a CA and users made for this broker) under the StandardAuthorizer's ACLs."""
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
            secured=SecuredListener.make(data_dir / "tls") if secured else None,
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
    def running(self) -> bool:
        return self._proc is not None

    @property
    def _log_dirs(self) -> Path:
        return self.data_dir / "kraft-logs"

    def _write_config(self) -> Path:
        controller = f"{self.host}:{self.controller_port}"
        replicas = str(self.replication)
        min_isr = str(max(1, self.replication - 1))
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": ",".join(
                f"{node}@{self.host}:{port}" for node, port in sorted(self.voters.items())
            ),
            "listeners": f"PLAINTEXT://{self.bootstrap_servers},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap_servers}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            **(self.secured.broker_config(self) if self.secured else {}),
            "log.dirs": str(self._log_dirs),
            "num.partitions": "3",
            "default.replication.factor": replicas,
            # Also the consumer offsets topic's minimum, which has no setting of its own.
            "min.insync.replicas": min_isr,
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": replicas,
            # 50 partitions (the default) make the first consumer group wait seconds
            # on one small node while they are created.
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
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
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}",
            "-cp",
            classpath(self.home),
            main,
            *args,
        ]

    def _launch(self, timeout: float) -> None:
        self._spawn()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _spawn(self) -> None:
        """Format the storage on first use and start the JVM, without waiting for it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self._log_dirs / "meta.properties").exists():
            cluster_id = self.cluster_id or _cluster_id()
            argv = self._java("kafka.tools.StorageTool", "format", "-t", cluster_id)
            # SCRAM users exist from the first start: KRaft keeps them in its metadata log.
            scram = self.secured.format_args() if self.secured else []
            processes.run(
                "kafka-storage-format",
                [*argv, "-c", str(config), *scram],
                log_path=self.log_path,
                timeout=120,
            )
        ports = [self.port, self.controller_port]
        if self.secured is not None:
            ports.append(self.secured.port)
        for port in ports:
            if not processes.port_is_free(port, self.host):
                raise DevstackError(f"port {self.host}:{port} is in use; Kafka cannot bind it")
        name = "kafka" if len(self.voters) == 1 else f"kafka-{self.node_id}"
        self._proc = processes.start(
            name, self._java("kafka.Kafka", str(config)), log_path=self.log_path
        )

    def _died(self, proc: processes.ManagedProcess) -> ProcessDiedError:
        return ProcessDiedError(
            f"{proc.died_message('starting')}\nlast lines of {self.server_log}:\n"
            f"{processes.log_tail(self.server_log)}"
        )

    def admin(self, timeout: float = 10.0) -> contextlib.AbstractContextManager[Any]:
        return _admin_client(self.bootstrap_servers, timeout)

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
                "replication_factor": self.replication,
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
        # A frozen JVM cannot act on SIGTERM; whoever froze it thaws it, but never hang here.
        self.thaw()
        # SIGTERM runs Kafka's controlled shutdown, which flushes and closes the logs
        # so the next start needs no recovery.
        processes.stop(self._proc, timeout)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL, as a node failure would: no controlled shutdown, the logs need recovery."""
        if self._proc is None:
            return
        processes.stop(self._proc, sig=signal.SIGKILL)
        self._proc = None

    def launch(self, timeout: float = 120.0) -> None:
        """Start this node again (after stop or kill) with its data, ports and identity."""
        if self._proc is not None:
            raise RuntimeError(f"Kafka node {self.node_id} is already running")
        self._launch(timeout)

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its sockets open but answers nothing, a gray failure."""
        os.kill(self.pid, signal.SIGSTOP)
        try:
            processes.wait_stopped([self.pid])
        except BaseException:
            self.thaw()
            raise

    def thaw(self) -> None:
        if self._proc is not None and self._proc.alive():
            os.kill(self._proc.pid, signal.SIGCONT)

    def restart(self, timeout: float = 120.0) -> None:
        self.stop()
        self._launch(timeout)

    def __repr__(self) -> str:
        pid = self._proc.pid if self._proc else None
        return (
            f"KafkaBroker({self.bootstrap_servers!r}, node_id={self.node_id}, pid={pid}, "
            f"data_dir={str(self.data_dir)!r})"
        )


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = processes.free_port()
        if port not in ports:
            ports.append(port)
    return ports


class KafkaCluster:
    """Several combined broker+controller nodes on 127.0.0.1 with one static KRaft quorum:
    every node is a voter, so a majority must be up for the cluster to serve."""

    def __init__(self, nodes: list[KafkaBroker]) -> None:
        self.nodes = {node.node_id: node for node in nodes}

    @classmethod
    def start(cls, data_dir: Path, size: int = 3, *, timeout: float = 180.0) -> KafkaCluster:
        home = ensure_installed()
        data_dir = data_dir.resolve()
        ports = _distinct_free_ports(2 * size)
        voters = {n + 1: ports[size + n] for n in range(size)}
        cluster_id = _cluster_id()
        cluster = cls(
            [
                KafkaBroker(
                    data_dir / f"node-{node}",
                    ports[node - 1],
                    voters[node],
                    home=home,
                    log_path=data_dir / f"node-{node}.log",
                    node_id=node,
                    voters=voters,
                    cluster_id=cluster_id,
                    replication=min(size, 3),
                    heap=_CLUSTER_HEAP,
                )
                for node in voters
            ]
        )
        try:
            # All at once: no node is ready before a majority of the voters has elected a leader.
            for node in cluster.nodes.values():
                node._spawn()
            for node in cluster.nodes.values():
                node.wait_ready(timeout)
            cluster.wait_brokers(timeout)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes.values())

    @property
    def replication(self) -> int:
        return next(iter(self.nodes.values())).replication

    def node(self, node_id: int) -> KafkaBroker:
        return self.nodes[node_id]

    def stop_node(self, node_id: int, timeout: float = 30.0) -> None:
        self.nodes[node_id].stop(timeout)

    def kill_node(self, node_id: int) -> None:
        self.nodes[node_id].kill()

    def start_node(self, node_id: int, timeout: float = 120.0) -> None:
        self.nodes[node_id].launch(timeout)
        self.wait_brokers(timeout)

    def freeze_node(self, node_id: int) -> None:
        self.nodes[node_id].freeze()

    def thaw_node(self, node_id: int) -> None:
        self.nodes[node_id].thaw()

    @contextlib.contextmanager
    def frozen(self, node_id: int) -> Iterator[KafkaBroker]:
        """SIGSTOP a node for the block; SIGCONT however the block ends."""
        node = self.nodes[node_id]
        node.freeze()
        try:
            yield node
        finally:
            node.thaw()

    def admin(self, timeout: float = 10.0) -> contextlib.AbstractContextManager[Any]:
        running = [n.bootstrap_servers for n in self.nodes.values() if n.running]
        return _admin_client(running, timeout)

    def _describe(self, topics: list[str] | None, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self.admin(timeout) as admin:
            described: list[dict[str, Any]] = admin.describe_topics(topics)
            return described

    def leader(self, topic: str, partition: int, timeout: float = 30.0) -> int:
        """The node id leading `topic`'s `partition` now, from the cluster's metadata; waits
        while it has none (just created, or its leader just failed)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(KafkaError, OSError):
                for described in self._describe([topic]):
                    for part in described["partitions"]:
                        if part["partition_index"] == partition and part["leader_id"] >= 0:
                            return int(part["leader_id"])
            if time.monotonic() >= deadline:
                raise DevstackError(f"{topic}[{partition}] has no leader after {timeout:.0f}s")
            time.sleep(0.25)

    def group_coordinator(self, group: str) -> int:
        """The node coordinating a consumer group: the leader of the offsets topic partition
        the group's id hashes to: abs(String.hashCode) modulo the partition count, with Java's
        hash and the broker's abs (which maps Integer.MIN_VALUE to 0)."""
        code = 0
        units = group.encode("utf-16-be")
        for i in range(0, len(units), 2):
            code = (31 * code + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
        with self.admin() as admin:
            (offsets,) = admin.describe_topics(["__consumer_offsets"])
        signed = code - (1 << 32) if code >= 1 << 31 else code
        positive = 0 if signed == -(1 << 31) else abs(signed)
        return self.leader("__consumer_offsets", positive % len(offsets["partitions"]))

    def topic(self, topic: str) -> tuple[list[list[int]], dict[str, str]]:
        """A topic's replicas per partition and its effective configuration (set or inherited)."""
        with self.admin() as admin:
            # Created a moment ago, a topic may not have its partitions' leaders yet.
            admin.wait_for_topics([topic], timeout_ms=30_000)
            (described,) = admin.describe_topics([topic])
            configs = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
            )["topic"][topic]
        replicas = [
            sorted(part["replica_nodes"])
            for part in sorted(described["partitions"], key=lambda p: p["partition_index"])
        ]
        return replicas, {name: str(entry["value"]) for name, entry in configs.items()}

    def wait_brokers(self, timeout: float = 120.0) -> None:
        """Wait until every running node's metadata lists every running node as a broker: a
        client bootstrapped from any of them can then reach whichever node it is sent to."""
        running = sorted(node_id for node_id, node in self.nodes.items() if node.running)
        deadline = time.monotonic() + timeout
        views: dict[int, list[int]] = {}
        while True:
            for node_id in running:
                with contextlib.suppress(KafkaError, OSError):
                    with self.nodes[node_id].admin(5.0) as admin:
                        brokers = admin.describe_cluster()["brokers"]
                    views[node_id] = sorted(b["broker_id"] for b in brokers)
            if all(views.get(node_id) == running for node_id in running):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Kafka nodes {running} see brokers {views} (node: brokers)")
            time.sleep(0.25)

    def wait_in_sync(self, timeout: float = 120.0) -> None:
        """Wait until every partition of every topic has a leader and all its replicas in
        sync: what a restarted node must reach before the cluster tolerates the next fault."""
        deadline = time.monotonic() + timeout
        behind: list[str] = ["(not described yet)"]
        while True:
            with contextlib.suppress(KafkaError, OSError):
                behind = [
                    f"{topic['name']}[{part['partition_index']}]"
                    for topic in self._describe(None, 5.0)
                    for part in topic["partitions"]
                    if part["leader_id"] < 0 or len(part["isr_nodes"]) < len(part["replica_nodes"])
                ]
                if not behind:
                    return
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Kafka partitions not fully in sync after {timeout:.0f}s: {behind[:20]}"
                )
            time.sleep(0.5)

    def create_topics(
        self,
        names: Iterable[str],
        partitions: int = 3,
        config: Mapping[str, str] | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        """Create topics once the running nodes agree on who the brokers are. After a node was
        frozen or restarted, the nodes' metadata can disagree for a while; an admin client that
        meets both views may send to a broker id that its other metadata does not know
        (UnknownBrokerIdError), so the cluster a test starts from is settled first."""
        self.wait_brokers()
        next(n for n in self.nodes.values() if n.running).create_topics(
            names, partitions, config, timeout=timeout
        )

    def stop(self, timeout: float = 30.0) -> None:
        # All at once: stopped one by one, the last nodes lose their quorum and their
        # controlled shutdown waits for a controller until the timeout.
        for node in self.nodes.values():
            node.thaw()
            if node.running:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.pid, signal.SIGTERM)
        for node in self.nodes.values():
            node.stop(timeout)

    def __repr__(self) -> str:
        return f"KafkaCluster({list(self.nodes.values())!r})"
