"""A real single-node Kubernetes: pods run, Services route, DNS answers, Jobs complete.

Everything is our child or undone by us: our own containerd (its own root, state and
socket), kine + kube-apiserver on 127.0.0.1 (claimflow_devstack.kube), controller-manager,
scheduler, kubelet, kube-proxy (iptables mode) and CoreDNS as a pod. Pods sit on a bridge of
our own (`cfkube0`, 10.244.0.0/24); the bridge's address is the node's address, so nothing
of the node listens on the host's real interfaces. NodePorts answer on 127.0.0.1 only.

The host's state is recorded before anything starts (claimflow_devstack.host_state) into a
state file with the PIDs we start; teardown undoes what the node changed and fails if the
host is not as recorded. `python -m claimflow_devstack.kube node up` / `node down`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from claimflow_devstack import apt, host_state, processes, traefik
from claimflow_devstack.docker_engine import DOCKER_CLI, DockerEngine
from claimflow_devstack.errors import DevstackError, MissingToolError
from claimflow_devstack.go_tools import (
    COREDNS,
    KINE,
    KUBE_APISERVER,
    KUBE_CONTROLLER_MANAGER,
    KUBE_PROXY,
    KUBE_SCHEDULER,
    KUBECTL,
    KUBELET,
    PROBE,
)
from claimflow_devstack.kube import HOST, KUBERNETES_SERVICE_IP, KubeCluster
from claimflow_devstack.node_cleanup import (
    iptables,
    kill_leftover_containers,
    run_tool,
    stop_recorded,
    undo_host_changes,
)
from claimflow_devstack.paths import state_dir
from claimflow_devstack.scratch_images import PAUSE_VERSION, ScratchImage, pause_binary
from claimflow_devstack.tls import issue_client_certificate

NODE_NAME = "claimflow-node"
BRIDGE = "cfkube0"
POD_SUBNET = "10.244.0.0/24"
# The bridge's own address: the node's InternalIP, where the kubelet and CoreDNS listen.
NODE_IP = "10.244.0.1"
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
PAUSE_IMAGE = f"claimflow.local/pause:{PAUSE_VERSION}"
COREDNS_IMAGE = f"claimflow.local/coredns:{COREDNS.version}"
PROBE_IMAGE = f"claimflow.local/probe:{PROBE.version}"
STATE_FILE = "node-state.json"
# A `node up` may run for days; each `up` makes new certificates.
_CERTIFICATE_VALIDITY = datetime.timedelta(days=30)
_RULE_COMMENT = "claimflow-node"
_CNI_NETWORK = "claimflow-node"
# Debian packages by the binary that shows they are installed.
_PACKAGES = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "iptables": "iptables",
    "conntrack": "conntrack",
}


def default_dir() -> Path:
    return state_dir() / "kube-node"


# Every binary the node runs, in the order build_all builds them.
TOOLS = (
    KINE,
    KUBE_APISERVER,
    KUBELET,
    KUBE_CONTROLLER_MANAGER,
    KUBE_SCHEDULER,
    KUBE_PROXY,
    KUBECTL,
    COREDNS,
    PROBE,
)


def build_all() -> dict[str, Path]:
    """Every binary the node runs, built once and cached (`claimflow-dev prepare` calls it)."""
    built = {tool.name: tool.ensure_built() for tool in TOOLS}
    built["pause"] = pause_binary()
    return built


def _require_root() -> None:
    if os.geteuid() != 0:
        raise MissingToolError(
            "the Kubernetes node runs containers, a bridge and packet-filter rules: run as root"
        )


def dns_query(server: str, name: str, *, timeout: float = 2.0) -> list[str]:
    """The IPv4 addresses `server` gives for `name` (an A query over UDP); [] if none."""
    query_id = secrets.randbelow(1 << 16)
    header = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = header + question + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (server, 53))
        answer = sock.recv(4096)
    answer_id, flags, _, count = struct.unpack(">HHHH", answer[:8])
    if answer_id != query_id or flags & 0x000F:
        return []
    offset = 12 + len(question) + 4
    found = []
    for _ in range(count):
        # Names in answers are compressed pointers (2 bytes) to the question.
        offset += 2 if answer[offset] & 0xC0 else answer.index(b"\0", offset) + 1 - offset
        kind, _, _, length = struct.unpack(">HHIH", answer[offset : offset + 10])
        offset += 10
        if kind == 1 and length == 4:
            found.append(socket.inet_ntoa(answer[offset : offset + 4]))
        offset += length
    return found


class KubeNode:
    """A single-node cluster, our children; `kubeconfig` holds an admin token."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.logs = data_dir / "logs"
        self.containerd_socket = data_dir / "containerd" / "containerd.sock"
        self.cluster: KubeCluster | None = None
        self._procs: list[processes.ManagedProcess] = []
        self._state: dict[str, Any] = {}

    # -- public -----------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "control-plane" / "kubeconfig"

    def api_server(self) -> str:
        """The API server's URL, on the node's loopback (the one the kubeconfig names)."""
        config = yaml.safe_load(self.kubeconfig.read_text())
        server: str = config["clusters"][0]["cluster"]["server"]
        return server

    @property
    def recorded_host_state(self) -> dict[str, Any]:
        """The host as recorded before the node last started (claimflow_devstack.host_state)."""
        recorded: dict[str, Any] = self._state["host"]
        return recorded

    @classmethod
    def up(cls, data_dir: Path | None = None, *, timeout: float = 600.0) -> KubeNode:
        """Record the host, start everything, return once the node is Ready and DNS answers."""
        node = cls((data_dir or default_dir()).resolve())
        node.start(timeout=timeout)
        return node

    def start(self, *, timeout: float = 600.0) -> None:
        """Bring the node up (again, after `down`): a fresh cluster on a recorded host."""
        _require_root()
        apt.ensure_installed(_PACKAGES, "the Kubernetes node")
        binaries = build_all()
        data_dir = self.data_dir
        if (data_dir / STATE_FILE).exists():
            raise DevstackError(
                f"a node is up, or was left by a killed run, in {data_dir}: "
                "`python -m claimflow_devstack.kube node down` first"
            )
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            raise DevstackError(
                f"the bridge {BRIDGE} exists: another node runs on this host (one at a time)"
            )
        leftover = host_state.mounts_under([data_dir])
        if leftover:
            raise DevstackError(f"mounts left under {data_dir}: {leftover}")
        # Nothing of a previous run may leak in (kine's objects, the kubelet's pods).
        for entry in data_dir.glob("*") if data_dir.exists() else ():
            if entry.name != "logs":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        data_dir.mkdir(parents=True, exist_ok=True)
        self._state = {"host": host_state.record([data_dir]), "pids": []}
        self._save_state()
        deadline = time.monotonic() + timeout
        try:
            self._start(binaries, deadline)
        except BaseException:
            with contextlib.suppress(DevstackError):
                self.down()
            raise

    @property
    def kube_proxy_log(self) -> Path:
        return self.logs / "kube-proxy.log"

    def kubectl_command(self, *args: str) -> list[str]:
        """The node's kubectl with `args`, against the node: for a caller that streams its
        output (`--watch`)."""
        return [str(KUBECTL.binary), f"--kubeconfig={self.kubeconfig}", *args]

    def kubectl(
        self, *args: str, input_text: str | None = None, timeout: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the node's kubectl against it; a failure raises with kubectl's stderr."""
        result = subprocess.run(  # noqa: S603 - our binary, arguments from our code
            self.kubectl_command(*args),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise DevstackError(
                f"`kubectl {' '.join(args)}` exited {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def apply(self, objects: Sequence[dict[str, Any]]) -> None:
        self.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(objects))

    def load_image(self, image: ScratchImage) -> None:
        """Import `image` into the node's containerd, where pods find it by its tag."""
        name = image.tag.replace("/", "_").replace(":", "_")
        self.import_archive(image.write_archive(self.data_dir / "images" / f"{name}.tar"))

    def import_archive(self, archive: Path) -> None:
        """Import every image of an archive (`docker save`, or an OCI layout's tar) into the
        node's containerd. There is no registry: pods find the images by their tags, with
        imagePullPolicy Never (`claimflow-intake:0.1.0` is docker.io/library/... to both)."""
        self._ctr("images", "import", str(archive))

    def import_docker_images(self, engine: DockerEngine | None, tags: Sequence[str]) -> None:
        """Import images of a Docker engine (the devstack's, or None for the one DOCKER_HOST
        names): one `docker save` of them all (layers they share are written once), removed
        once imported."""
        work = self.data_dir / "images"
        work.mkdir(parents=True, exist_ok=True)
        # skaffold builds two artifacts at once, and imports each: an archive of its own each.
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            archive = Path(tmp) / "docker-images.tar"
            save = ("save", "--output", str(archive), *tags)
            if engine is None:
                run_tool([str(DOCKER_CLI), *save], timeout=900.0)
            else:
                engine.docker(*save, timeout=900.0)
            self.import_archive(archive)

    def down(self) -> None:
        """Delete the workloads, stop our processes, undo the host changes, then check that
        the host is as recorded (DevstackError listing each difference if not)."""
        before = self._state.get("host")
        if before is None or not (self.data_dir / STATE_FILE).exists():
            return  # never started, or already down
        self._delete_workloads()
        self._stop_processes()
        rules = _forward_rules()
        if port := self._state.get("kubelet_port"):
            rules.append(_kubelet_guard_rule(port))
        if port := self._state.get("apiserver_port"):
            rules.append(_api_server_rule(port))
        undo_host_changes(
            self.data_dir, before, bridge=BRIDGE, cni_network=_CNI_NETWORK, rules=rules
        )
        self.cluster = None
        host_state.restore_sysctls(before)
        differences = host_state.differences(before, host_state.record(before["watched_dirs"]))
        if differences:
            raise DevstackError(
                "the host differs from its state before the node started:\n  "
                + "\n  ".join(differences)
            )
        (self.data_dir / STATE_FILE).unlink(missing_ok=True)

    @classmethod
    def down_from_state(cls, data_dir: Path | None = None) -> None:
        """Tear down a node whose `up` was killed: only the PIDs its state file lists."""
        _require_root()
        data_dir = (data_dir or default_dir()).resolve()
        path = data_dir / STATE_FILE
        if not path.exists():
            return
        node = cls(data_dir)
        node._state = json.loads(path.read_text())
        node.down()

    def __repr__(self) -> str:
        return f"KubeNode({self.data_dir!s})"

    # -- start ------------------------------------------------------------------------------

    def _save_state(self) -> None:
        path = self.data_dir / STATE_FILE
        path.write_text(json.dumps(self._state, indent=1))
        path.chmod(0o600)

    def _started(self, proc: processes.ManagedProcess) -> processes.ManagedProcess:
        self._procs.append(proc)
        self._state["pids"].append({"pid": proc.pid, "argv0": proc.argv[0], "name": proc.name})
        self._save_state()
        return proc

    def _left(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the Kubernetes node did not come up in time")
        return left

    def _start(self, binaries: dict[str, Path], deadline: float) -> None:
        self._make_bridge()
        self._start_containerd(deadline)
        self.load_image(ScratchImage(PAUSE_IMAGE, {"pause": binaries["pause"]}, ["/pause"]))
        self.load_image(ScratchImage(COREDNS_IMAGE, {"coredns": binaries["coredns"]}, ["/coredns"]))
        self.load_image(ScratchImage(PROBE_IMAGE, {"probe": binaries["probe"]}, ["/probe"]))
        # The API server proves itself to the kubelet (logs, exec) with a client certificate;
        # the kubelet asks the API server whether its callers may do what they ask.
        self._kubelet_client = issue_client_certificate(
            self.data_dir / "kubelet-client",
            "kube-apiserver-kubelet-client",
            "system:masters",
            valid_for=_CERTIFICATE_VALIDITY,
        )
        plane = self.data_dir / "control-plane"
        self.cluster = KubeCluster.start(
            plane,
            timeout=self._left(deadline),
            extra_args=[
                # The node's name resolves nowhere: logs and exec go to its address.
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-client-certificate={self._kubelet_client.cert_file}",
                f"--kubelet-client-key={self._kubelet_client.key_file}",
            ],
        )
        for proc in self.cluster.started_processes:
            self._state["pids"].append({"pid": proc.pid, "argv0": proc.argv[0], "name": proc.name})
        # Recorded first: a killed `up` leaves nothing `node down` does not know of.
        self._state["apiserver_port"] = self.cluster.port
        self._save_state()
        run_tool(iptables("-I", _api_server_rule(self.cluster.port)))
        self._start_controller_manager(binaries["kube-controller-manager"], deadline)
        self._start_scheduler(binaries["kube-scheduler"], deadline)
        self._start_kubelet(binaries["kubelet"], deadline)
        self._wait_node_ready(deadline)
        self._start_kube_proxy(binaries["kube-proxy"], deadline)
        self._start_coredns(deadline)

    def _make_bridge(self) -> None:
        # Made here, not by the CNI plugin on the first pod: the kubelet needs the node's
        # address before any pod exists.
        run_tool(["ip", "link", "add", BRIDGE, "type", "bridge"])
        run_tool(["ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE])
        run_tool(["ip", "link", "set", BRIDGE, "up"])
        # Pods' packets to the API server are sent on to its loopback address (_api_server_rule);
        # the setting goes with the bridge.
        Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet").write_text("1\n")
        # dockerd sets the FORWARD policy to DROP, which would cut pods off from Services.
        for rule in _forward_rules():
            run_tool(iptables("-I", rule))

    def _start_containerd(self, deadline: float) -> None:
        base = self.data_dir / "containerd"
        cni_conf = base / "cni"
        cni_conf.mkdir(parents=True, exist_ok=True)
        (cni_conf / "10-claimflow.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "0.4.0",
                    "name": _CNI_NETWORK,
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": BRIDGE,
                            "isGateway": True,
                            "ipMasq": False,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(base / "ipam"),
                            },
                        },
                        {"type": "portmap", "capabilities": {"portMappings": True}},
                    ],
                },
                indent=1,
            )
        )
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"

[grpc]
  address = "{self.containerd_socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # The VM drops CAP_SYS_RESOURCE: without this runc fails every sandbox
  # ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false

[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{cni_conf}"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  Root = "{base / "runc"}"
  SystemdCgroup = false
"""
        config_path = base / "config.toml"
        config_path.write_text(config)
        proc = self._started(
            processes.start(
                "containerd",
                [shutil.which("containerd") or "containerd", "--config", str(config_path)],
                log_path=self.logs / "containerd.log",
            )
        )
        while not self.containerd_socket.exists():
            if not proc.alive():
                raise DevstackError(proc.died_message("waiting for its socket"))
            self._left(deadline)
            time.sleep(0.2)
        self._wait_for(
            lambda: self._ctr("version", check=False) is not None, deadline, "containerd"
        )

    def _ctr(self, *args: str, check: bool = True) -> str | None:
        argv = ["ctr", f"--address={self.containerd_socket}", "--namespace=k8s.io", *args]
        try:
            return run_tool(argv, timeout=300.0)
        except DevstackError:
            if check:
                raise
            return None

    def _wait_for(self, ready: Any, deadline: float, what: str) -> None:
        while not ready():
            for proc in self._procs:
                if not proc.alive():
                    raise DevstackError(proc.died_message(f"waiting for {what}"))
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what} not ready in time")
            time.sleep(1.0)

    def _component_kubeconfig(self) -> str:
        assert self.cluster is not None
        return str(self.cluster.kubeconfig)

    def _start_controller_manager(self, binary: Path, deadline: float) -> None:
        assert self.cluster is not None
        port = processes.free_port()
        plane = self.cluster.data_dir
        argv = [
            str(binary),
            f"--kubeconfig={self._component_kubeconfig()}",
            f"--bind-address={HOST}",
            f"--secure-port={port}",
            f"--cert-dir={self.data_dir / 'controller-manager'}",
            "--leader-elect=false",
            f"--service-account-private-key-file={plane / 'service-account.key'}",
            f"--root-ca-file={self.cluster.ca_file}",
            "--use-service-account-credentials=false",
            "--profiling=false",
            "--v=1",
        ]
        proc = self._started(
            processes.start(
                "kube-controller-manager", argv, log_path=self.logs / "controller-manager.log"
            )
        )
        processes.wait_for_port(HOST, port, self._left(deadline), proc)

    def _start_scheduler(self, binary: Path, deadline: float) -> None:
        port = processes.free_port()
        argv = [
            str(binary),
            f"--kubeconfig={self._component_kubeconfig()}",
            f"--authentication-kubeconfig={self._component_kubeconfig()}",
            f"--authorization-kubeconfig={self._component_kubeconfig()}",
            f"--bind-address={HOST}",
            f"--secure-port={port}",
            f"--cert-dir={self.data_dir / 'scheduler'}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ]
        proc = self._started(
            processes.start("kube-scheduler", argv, log_path=self.logs / "scheduler.log")
        )
        processes.wait_for_port(HOST, port, self._left(deadline), proc)

    def _start_kubelet(self, binary: Path, deadline: float) -> None:
        base = self.data_dir / "kubelet"
        base.mkdir(parents=True, exist_ok=True)
        self._kubelet_port = processes.free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": self._kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": HOST,
            "healthzPort": processes.free_port(),
            # No anonymous callers; an INPUT rule also keeps pods off this port.
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self._kubelet_client.ca_file)},
            },
            "authorization": {"mode": "Webhook"},
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "clusterDNS": [CLUSTER_DNS],
            "clusterDomain": CLUSTER_DOMAIN,
            "podLogsDir": str(base / "pod-logs"),
            "failSwapOn": False,
            # A shared disk's usage must neither evict our pods nor delete imported images
            # (they cannot be pulled back).
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "50Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "serializeImagePulls": False,
            "maxPods": 50,
        }
        config_path = base / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        argv = [
            str(binary),
            f"--config={config_path}",
            f"--kubeconfig={self._component_kubeconfig()}",
            f"--root-dir={base / 'root'}",
            f"--cert-dir={base / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        ]
        # The INPUT rule needs the port, known only now.
        self._state["kubelet_port"] = self._kubelet_port
        self._save_state()
        run_tool(iptables("-I", _kubelet_guard_rule(self._kubelet_port)))
        self._started(processes.start("kubelet", argv, log_path=self.logs / "kubelet.log"))

    def _node_ready(self) -> bool:
        result = self.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
        if result.returncode != 0:
            return False
        conditions = json.loads(result.stdout)["status"].get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _wait_node_ready(self, deadline: float) -> None:
        self._wait_for(self._node_ready, deadline, f"node {NODE_NAME}")

    def _start_kube_proxy(self, binary: Path, deadline: float) -> None:
        healthz = processes.free_port()
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": self._component_kubeconfig()},
            "hostnameOverride": NODE_NAME,
            "healthzBindAddress": f"{HOST}:{healthz}",
            "metricsBindAddress": f"{HOST}:{processes.free_port()}",
            "mode": "iptables",
            "clusterCIDR": POD_SUBNET,
            # NodePorts on loopback only (kube-proxy sets route_localnet for that).
            "nodePortAddresses": ["127.0.0.0/8"],
            # Pod-to-Service traffic whose endpoint is on the same bridge comes back through
            # the host, so the reply is un-NATed without relying on bridge netfilter.
            "iptables": {"masqueradeAll": True, "localhostNodePorts": True},
            # Zeros leave the host's conntrack settings alone.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
        }
        config_path = self.data_dir / "kube-proxy.yaml"
        config_path.write_text(yaml.safe_dump(config))
        proc = self._started(
            processes.start(
                "kube-proxy",
                # Verbosity 2: when each sync of its rules begins and ends.
                [str(binary), f"--config={config_path}", "--v=2"],
                log_path=self.kube_proxy_log,
            )
        )
        processes.wait_ready(f"http://{HOST}:{healthz}/healthz", [proc], self._left(deadline))

    def _start_coredns(self, deadline: float) -> None:
        assert self.cluster is not None
        conf = self.data_dir / "coredns"
        conf.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.cluster.ca_file, conf / "ca.crt")
        kubeconfig = yaml.safe_load(self.cluster.kubeconfig.read_text())
        kubeconfig["clusters"][0]["cluster"]["certificate-authority"] = "/etc/coredns/ca.crt"
        kubeconfig["users"][0]["user"] = {"token": self._coredns_token(deadline)}
        (conf / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
        (conf / "kubeconfig").chmod(0o600)
        ready_port = processes.free_port()
        # hostNetwork: pods cannot reach the API server on loopback, CoreDNS on the host can.
        # It listens on the node's bridge address only; health and readiness on loopback.
        (conf / "Corefile").write_text(
            f""".:53 {{
    bind {NODE_IP}
    errors
    health {HOST}:{processes.free_port()}
    ready {HOST}:{ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig /etc/coredns/kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
}}
"""
        )
        labels = {"k8s-app": "kube-dns"}
        self.apply(
            [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "coredns", "namespace": "kube-system"},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "hostNetwork": True,
                                "dnsPolicy": "Default",
                                "terminationGracePeriodSeconds": 5,
                                "containers": [
                                    {
                                        "name": "coredns",
                                        "image": COREDNS_IMAGE,
                                        "imagePullPolicy": "Never",
                                        "args": ["-conf", "/etc/coredns/Corefile"],
                                        "readinessProbe": {
                                            "httpGet": {
                                                "host": HOST,
                                                "port": ready_port,
                                                "path": "/ready",
                                            },
                                            "periodSeconds": 2,
                                        },
                                        "volumeMounts": [
                                            {
                                                "name": "conf",
                                                "mountPath": "/etc/coredns",
                                                "readOnly": True,
                                            }
                                        ],
                                    }
                                ],
                                "volumes": [
                                    {
                                        "name": "conf",
                                        "hostPath": {"path": str(conf), "type": "Directory"},
                                    }
                                ],
                            },
                        },
                    },
                },
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "kube-dns", "namespace": "kube-system"},
                    "spec": {
                        "clusterIP": CLUSTER_DNS,
                        "selector": labels,
                        "ports": [
                            {"name": "dns", "port": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                        ],
                    },
                },
            ]
        )
        name = f"kubernetes.default.svc.{CLUSTER_DOMAIN}"

        def answers() -> bool:
            try:
                # Through the Service's IP, as pods ask: kube-proxy routes it to CoreDNS.
                return bool(dns_query(CLUSTER_DNS, name))
            except OSError:
                return False

        self._wait_for(answers, deadline, "CoreDNS")

    def _coredns_token(self, deadline: float) -> str:
        """A token of CoreDNS's own service account, allowed only to read what it serves.

        A long-lived token Secret (the token controller fills it in): a bound token would
        expire while `node up` runs, and CoreDNS on the host network has no projected volume
        refreshing it."""
        namespace = {"namespace": "kube-system"}
        self.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "coredns", **namespace},
                },
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": "system:coredns"},
                    "rules": [
                        {
                            "apiGroups": [""],
                            "resources": ["endpoints", "services", "pods", "namespaces"],
                            "verbs": ["list", "watch"],
                        },
                        {
                            "apiGroups": ["discovery.k8s.io"],
                            "resources": ["endpointslices"],
                            "verbs": ["list", "watch"],
                        },
                    ],
                },
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": "system:coredns"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "system:coredns",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": "coredns", **namespace}],
                },
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "kubernetes.io/service-account-token",
                    "metadata": {
                        "name": "coredns-token",
                        "annotations": {"kubernetes.io/service-account.name": "coredns"},
                        **namespace,
                    },
                },
            ]
        )
        token: list[str] = []

        def filled() -> bool:
            result = self.kubectl(
                "-n", "kube-system", "get", "secret", "coredns-token",
                "-o", "jsonpath={.data.token}", check=False,
            )  # fmt: skip
            if result.returncode == 0 and result.stdout:
                token.append(base64.b64decode(result.stdout).decode())
            return bool(token)

        self._wait_for(filled, deadline, "CoreDNS's service-account token")
        return token[0]

    # -- stop -------------------------------------------------------------------------------

    def _delete_workloads(self) -> None:
        if not self.kubeconfig.exists():
            return
        # Owners before what they own, so nothing is recreated while it is being deleted.
        kinds = ",".join(
            (
                "cronjobs",
                "jobs",
                "deployments",
                "replicasets",
                "replicationcontrollers",
                "statefulsets",
                "daemonsets",
                "pods",
            )
        )
        if self.kubectl("delete", kinds, "--all", "-A", "--wait=false", check=False).returncode:
            return  # the API server is gone: the containers are stopped below instead
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline:
            left = self.kubectl("get", "pods", "-A", "-o", "name", check=False)
            if left.returncode != 0 or not left.stdout.strip():
                break
            time.sleep(1.0)
        # The kubelet stops each sandbox (CNI DEL, netns) after its pod is gone.
        while time.monotonic() < deadline and self._ctr("tasks", "ls", "-q", check=False):
            time.sleep(1.0)

    def _stop_processes(self) -> None:
        # Newest first: kube-proxy and the kubelet before the API server; containerd last,
        # after the containers the kubelet did not stop (shims outlive containerd).
        containerd = [p for p in self._procs if p.name == "containerd"]
        for proc in reversed([p for p in self._procs if p.name != "containerd"]):
            processes.stop(proc, 20.0)
        if self.cluster is not None:
            self.cluster.stop()
        entries = list(reversed(self._state.get("pids", [])))
        for entry in entries:
            if entry["name"] != "containerd":
                stop_recorded(entry)
        kill_leftover_containers(self.data_dir, self.logs)
        for proc in containerd:
            processes.stop(proc, 20.0)
        for entry in entries:
            stop_recorded(entry)
        self._procs.clear()


_COMMENT = ("-m", "comment", "--comment", _RULE_COMMENT)


def _forward_rules() -> list[list[str]]:
    return [
        ["filter", "FORWARD", "-i", BRIDGE, *_COMMENT, "-j", "ACCEPT"],
        ["filter", "FORWARD", "-o", BRIDGE, *_COMMENT, "-j", "ACCEPT"],
    ]


def _kubelet_guard_rule(port: int) -> list[str]:
    return [
        "filter",
        "INPUT",
        "-i",
        BRIDGE,
        "-p",
        "tcp",
        "--dport",
        str(port),
        *_COMMENT,
        "-j",
        "DROP",
    ]


def _api_server_rule(port: int) -> list[str]:
    """The `kubernetes` Service's address from the pods, to the API server on loopback.

    The Service has no endpoints here (Endpoints may not name a loopback address, and the API
    server listens on nothing else), so kube-proxy would refuse its connections; this rule
    comes first. Its serving certificate names the Service's address, and kube-proxy's own
    guard against outside packets to loopback lets NATed ones through."""
    return [
        "nat", "PREROUTING", "-i", BRIDGE, "-d", KUBERNETES_SERVICE_IP, "-p", "tcp",
        "--dport", "443", *_COMMENT, "-j", "DNAT", "--to-destination", f"{HOST}:{port}",
    ]  # fmt: skip


def running_node(data_dir: Path | None = None) -> KubeNode:
    """The node a `node up` runs in `data_dir` (the default one if None)."""
    _require_root()
    node = KubeNode((data_dir or default_dir()).resolve())
    if not node.containerd_socket.exists():
        raise DevstackError(f"no node runs in {node.data_dir}: `node up` first")
    return node


def import_built_image(tag: str, data_dir: Path | None = None) -> None:
    """Import `tag` from the Docker engine DOCKER_HOST names into the running node, under
    every tag the engine has for that image: the after-build hook of skaffold.yaml's
    local-node profile (claimflow_devstack.skaffold), which skaffold runs with the tag it
    built; a build without a push is deployed by another tag, of the image's ID."""
    node = running_node(data_dir)
    inspect = [str(DOCKER_CLI), "image", "inspect", "--format", "{{json .RepoTags}}", tag]
    node.import_docker_images(None, json.loads(run_tool(inspect)))


def import_local_images(data_dir: Path | None = None) -> list[str]:
    """Import the images `make images` built (the services', Kafka's and PostgreSQL's) into a
    running node's containerd, for the umbrella chart and k8s/data/local."""
    from claimflow_devstack import images  # noqa: PLC0415 - the image builds import much

    node = running_node(data_dir)
    tags = images.local_cluster_images()
    with DockerEngine.start(node.logs) as engine:
        missing = [t for t in tags if engine.docker("image", "inspect", t, check=False).returncode]
        if missing:
            raise DevstackError(f"not built: {', '.join(missing)}; `make images` first")
        node.import_docker_images(engine, tags)
    return tags


def run_ingress_controller(
    namespace: str,
    data_dir: Path | None = None,
    *,
    https_port: int = traefik.HTTPS_PORT,
    ping_port: int = 0,
) -> str:
    """Traefik (claimflow_devstack.traefik) for `namespace`'s Ingresses on a running node,
    ready; the URL it serves them at."""
    node = running_node(data_dir)
    node.load_image(traefik.image())
    node.apply(traefik.objects(namespace, node.api_server(), https_port, ping_port))
    node.kubectl(
        "-n", namespace, "rollout", "status", f"deployment/{traefik.NAME}", "--timeout=300s",
        timeout=330.0,
    )  # fmt: skip
    return f"https://localhost:{https_port}"


def main(argv: Sequence[str]) -> int:
    """`node up [DIR]`: run until Ctrl-C/SIGTERM, then tear down; `node down [DIR]`;
    `node images [DIR]`: import the images `make images` built into the running node;
    `node ingress NAMESPACE [DIR]`: run the ingress controller for NAMESPACE's Ingresses;
    `node import-image TAG [DIR]`: import TAG from the Docker engine of DOCKER_HOST."""
    if argv[:1] == ["import-image"] and len(argv) > 1:
        # skaffold's hook passes the node's directory, empty for the default one.
        import_built_image(argv[1], Path(argv[2]) if len(argv) > 2 and argv[2] else None)
        print(f"imported {argv[1]}")  # noqa: T201
        return 0
    if argv[:1] == ["ingress"] and len(argv) > 1:
        with processes.supervised():
            url = run_ingress_controller(argv[1], Path(argv[2]) if len(argv) > 2 else None)
        print(f"ingress controller ready; {argv[1]}'s Ingresses at {url}")  # noqa: T201
        return 0
    if not argv or argv[0] not in {"up", "down", "images"}:
        print(  # noqa: T201
            "usage: python -m claimflow_devstack.kube node {up | down | images} [DIR]\n"
            "       python -m claimflow_devstack.kube node ingress NAMESPACE [DIR]\n"
            "       python -m claimflow_devstack.kube node import-image TAG [DIR]",
            file=sys.stderr,
        )
        return 2
    data_dir = Path(argv[1]) if len(argv) > 1 else None
    if argv[0] == "down":
        KubeNode.down_from_state(data_dir)
        print("node down; host as recorded")  # noqa: T201
        return 0
    if argv[0] == "images":
        with processes.supervised():
            for tag in import_local_images(data_dir):
                print(f"imported {tag}")  # noqa: T201
        return 0

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    with processes.supervised():
        node = KubeNode.up(data_dir)
        print(f"node {NODE_NAME} Ready; KUBECONFIG={node.kubeconfig}", flush=True)  # noqa: T201
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            print("tearing the node down ...", flush=True)  # noqa: T201
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            node.down()
    print("node down; host as recorded")  # noqa: T201
    return 0
