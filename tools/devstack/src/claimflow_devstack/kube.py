"""A real Kubernetes API server on 127.0.0.1 for the chart and operator tests.

kube-apiserver stores its objects through kine (SQLite) instead of etcd. There is no kubelet
and no controller-manager: objects are admitted, validated and stored for real, RBAC is
enforced, but pods never run, Jobs never complete and namespaces never finish deleting.

`python -m claimflow_devstack.kube build` builds the binaries; `... helm ARGS` runs the
project's helm (for `make charts`); `... skaffold ARGS` runs skaffold against the local node
(claimflow_devstack.skaffold).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx
import yaml

from claimflow_devstack import processes
from claimflow_devstack.errors import DevstackError, MissingToolError, ProcessDiedError
from claimflow_devstack.go_tools import HELM, KINE, KUBE_APISERVER

HOST = processes.LOCALHOST
_ADMIN = "claimflow-admin"
_SERVICE_CIDR = "10.96.0.0/16"
# The `kubernetes` Service's address, the first of the range: in-cluster clients call it on 443.
KUBERNETES_SERVICE_IP = str(ipaddress.ip_network(_SERVICE_CIDR).network_address + 1)


def helm_binary() -> Path:
    return HELM.ensure_built()


def build_all() -> dict[str, Path]:
    """helm, the API server's binaries and the single node's (claimflow_devstack.kube_node)."""
    from claimflow_devstack import kube_node  # noqa: PLC0415 - it imports this module

    return {HELM.name: HELM.ensure_built(), **kube_node.build_all()}


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise MissingToolError(
            "no `openssl` on PATH: it makes the API server's service-account signing key "
            "(e.g. `apt-get install -y openssl`)"
        )
    return found


class HelmError(DevstackError):
    """helm exited non-zero; the message carries its stderr."""

    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"`helm {' '.join(args)}` exited {result.returncode}:\n{result.stderr.strip()}"
        )
        self.result = result


class KubeCluster:
    """kine + kube-apiserver, our children; an admin token with system:masters."""

    def __init__(self, data_dir: Path, port: int, token: str) -> None:
        self.data_dir = data_dir
        self.port = port
        self.token = token
        self.server = f"https://{HOST}:{port}"
        # kube-apiserver writes a self-signed serving cert followed by the CA it made.
        self.ca_file = data_dir / "certs" / "apiserver.crt"
        self.kubeconfig = data_dir / "kubeconfig"
        self._procs: list[processes.ManagedProcess] = []

    @classmethod
    def start(
        cls, data_dir: Path, *, timeout: float = 180.0, extra_args: Sequence[str] = ()
    ) -> KubeCluster:
        """Start kine and kube-apiserver; `extra_args` are more kube-apiserver flags."""
        binaries = {tool.name: tool.ensure_built() for tool in (KINE, KUBE_APISERVER)}
        data_dir = data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        cluster = cls(data_dir, processes.free_port(), secrets.token_urlsafe(32))
        try:
            cluster._start_kine(binaries["kine"], timeout)
            cluster._start_apiserver(binaries["kube-apiserver"], timeout, extra_args)
            cluster._write_kubeconfig()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _start_kine(self, binary: Path, timeout: float) -> None:
        port = processes.free_port()
        argv = [
            str(binary),
            "--endpoint",
            f"sqlite://{self.data_dir / 'kine.db'}?_journal=WAL&cache=shared&_busy_timeout=30000",
            "--listen-address",
            f"{HOST}:{port}",
            # "0" turns kine's metrics listener off; it would default to :8080 on all hosts.
            "--metrics-bind-address",
            "0",
        ]
        proc = processes.start("kine", argv, log_path=self.data_dir / "kine.log")
        self._procs.append(proc)
        processes.wait_for_port(HOST, port, timeout, proc)
        self._kine_url = f"http://{HOST}:{port}"

    def _start_apiserver(self, binary: Path, timeout: float, extra_args: Sequence[str]) -> None:
        sa_key = self.data_dir / "service-account.key"
        if not sa_key.exists():
            processes.run(
                "openssl genrsa",
                [_openssl(), "genrsa", "-out", str(sa_key), "2048"],
                log_path=self.data_dir / "openssl.log",
                timeout=60.0,
            )
        tokens = self.data_dir / "tokens.csv"
        tokens.write_text(f'{self.token},{_ADMIN},{_ADMIN},"system:masters"\n')
        tokens.chmod(0o600)
        argv = [
            str(binary),
            f"--etcd-servers={self._kine_url}",
            f"--bind-address={HOST}",
            f"--advertise-address={HOST}",
            f"--secure-port={self.port}",
            f"--cert-dir={self.data_dir / 'certs'}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={_SERVICE_CIDR}",
            # The `kubernetes` Service's endpoints would point at loopback, which the
            # Endpoints validation rejects; the single node routes the Service's address to
            # the API server itself (claimflow_devstack.kube_node).
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
            *extra_args,
        ]
        proc = processes.start(
            "kube-apiserver", argv, log_path=self.data_dir / "kube-apiserver.log"
        )
        self._procs.append(proc)
        self._wait_ready(proc, timeout)

    def _wait_ready(self, proc: processes.ManagedProcess, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            if not proc.alive():
                raise ProcessDiedError(proc.died_message("waiting for /readyz"))
            if self.ca_file.exists():
                try:
                    with self.client(timeout=5.0) as client:
                        response = client.get("/readyz")
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}: {response.text[-300:]}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"kube-apiserver not ready after {timeout:.0f}s (last: {last}); "
                    f"log tail:\n{proc.log_tail()}"
                )
            time.sleep(0.5)

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "claimflow-test",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": _ADMIN, "user": {"token": self.token}}],
            "contexts": [
                {"name": "claimflow-test", "context": {"cluster": "claimflow-test", "user": _ADMIN}}
            ],
            "current-context": "claimflow-test",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    def env(self) -> dict[str, str]:
        """The environment for kubeconfig-reading clients, helm's state kept in our dir."""
        helm_home = self.data_dir / "helm"
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_DATA_HOME": str(helm_home / "data"),
        }

    def helm(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        return run_helm(args, env=self.env(), timeout=timeout)

    def client(self, *, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=self.ssl_context(),
            timeout=timeout,
        )

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def create_namespace(self, name: str) -> str:
        with self.client() as client:
            response = client.post(
                "/api/v1/namespaces",
                json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            )
        response.raise_for_status()
        return name

    @property
    def started_processes(self) -> list[processes.ManagedProcess]:
        """Our kine and kube-apiserver, oldest first."""
        return list(self._procs)

    def stop(self, timeout: float = 15.0) -> None:
        # The API server first, so it does not log kine's disappearance as errors.
        while self._procs:
            processes.stop(self._procs.pop(), timeout)

    def __repr__(self) -> str:
        return f"KubeCluster({self.server!r})"


def run_helm(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 300.0
) -> subprocess.CompletedProcess[str]:
    """Run the project's helm; a failure raises with helm's own message."""
    argv = [str(helm_binary()), *args]
    result = subprocess.run(  # noqa: S603 - our binary, arguments from our code
        argv,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise HelmError(args, result)
    return result


def _subcommand(name: str) -> Callable[[Sequence[str]], int]:
    """`node`'s or `skaffold`'s entry point, importing only that one: both import this module,
    and skaffold's brings the image builds, which `node import-image` (a hook skaffold runs
    once per image) has no use for."""
    if name == "node":
        from claimflow_devstack.kube_node import main as node_main  # noqa: PLC0415

        return node_main
    from claimflow_devstack.skaffold import main as skaffold_main  # noqa: PLC0415

    return skaffold_main


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["build"]:
        for name, path in build_all().items():
            print(f"{name}: {path}")  # noqa: T201
        return 0
    if args[:1] == ["helm"]:
        return subprocess.call([str(helm_binary()), *args[1:]])  # noqa: S603
    if args[:1] in (["node"], ["skaffold"]):
        try:
            return _subcommand(args[0])(args[1:])
        except DevstackError as exc:
            print(f"kube {args[0]}: {exc}", file=sys.stderr)  # noqa: T201
            return 1
    print(  # noqa: T201
        "usage: python -m claimflow_devstack.kube "
        "{build | helm ARGS... | skaffold ARGS... | node {up | down | images | ingress}}",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
