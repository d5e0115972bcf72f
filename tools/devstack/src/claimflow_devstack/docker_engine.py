"""A Docker engine of our own, for building claimflow's images and trying them.

dockerd (Debian's docker.io) runs as our child with its own data root, exec root and socket.
The data root lives in the cache, so image layers outlast a run and a rebuild of unchanged
code is a cache hit. Everything dockerd would otherwise change on the host is turned off: no
bridge interface, no iptables chains, no ip_forward. Builds and containers share the host's
network namespace instead (`--network host`), so a container's ports are on 127.0.0.1 and
nothing is NATed. What the engine could still change is recorded before it starts and
checked to be gone after it stops.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from claimflow_devstack import apt, host_state, processes
from claimflow_devstack.errors import DevstackError
from claimflow_devstack.paths import cache_dir

# The docker.io package's own client: its API version matches its daemon, and its BuildKit
# needs no buildx plugin. Another `docker` earlier on PATH may be a newer client only.
DOCKER_CLI = Path("/usr/bin/docker")
DOCKERD = Path("/usr/sbin/dockerd")
# Debian packages by the binary that shows they are installed.
_PACKAGES = {
    str(DOCKERD): "docker.io",
    str(DOCKER_CLI): "docker.io",
    "/usr/sbin/debootstrap": "debootstrap",
    "iptables": "iptables",
}
_LOCK_WAIT_SECONDS = 1800.0


def data_root() -> Path:
    return cache_dir() / "docker"


class DockerEngine:
    """dockerd as our child; `docker(...)` runs the CLI against it."""

    def __init__(
        self,
        proc: processes.ManagedProcess,
        run_dir: Path,
        lock: IO[str],
    ) -> None:
        self._proc = proc
        self._run_dir = run_dir
        self._lock = lock
        self.socket = run_dir / "docker.sock"
        self._stopped = False

    @classmethod
    def start(cls, log_dir: Path, *, timeout: float = 60.0) -> DockerEngine:
        apt.ensure_installed(_PACKAGES, "building the images")
        root = data_root()
        root.mkdir(parents=True, exist_ok=True)
        lock = _lock_data_root(root)
        # Short paths: containerd's sockets live under the exec root, and a unix socket's
        # path must stay under 108 bytes.
        run_dir = Path(tempfile.mkdtemp(prefix="claimflow-docker-"))
        argv = [
            str(DOCKERD),
            f"--data-root={root / 'data'}",
            f"--exec-root={run_dir / 'exec'}",
            f"--pidfile={run_dir / 'dockerd.pid'}",
            f"--host=unix://{run_dir / 'docker.sock'}",
            "--bridge=none",
            "--iptables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            # The engine's containerd runs in a namespace of its own name, apart from any other.
            "--containerd-namespace=claimflow",
            "--containerd-plugins-namespace=claimflow-plugins",
        ]
        proc = processes.start("dockerd", argv, log_path=log_dir / "dockerd.log")
        engine = cls(proc, run_dir, lock)
        try:
            engine._wait_ready(timeout)
        except BaseException:
            engine.stop()
            raise
        return engine

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self._proc.alive():
                raise DevstackError(self._proc.died_message("starting"))
            if self.socket.exists() and self.docker("version", check=False).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise DevstackError(
                    f"dockerd did not answer within {timeout:.0f}s; last lines of its log:\n"
                    f"{self._proc.log_tail()}"
                )
            time.sleep(0.5)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_BUILDKIT": "1",
            # The client's own settings (auths, contexts) stay out of the project's builds.
            "DOCKER_CONFIG": str(self._run_dir / "client"),
        }

    def docker(
        self,
        *args: str,
        timeout: float = 120.0,
        check: bool = True,
        stdin: IO[bytes] | None = None,
        stdout: int | IO[bytes] | None = subprocess.PIPE,
    ) -> subprocess.CompletedProcess[bytes]:
        """`docker ARGS` against this engine; raises with its stderr when `check` and it fails."""
        result = subprocess.run(  # noqa: S603 - argv from our own code, no shell
            [str(DOCKER_CLI), *args],
            env=self.env,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise DockerError(args, result)
        return result

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        processes.stop(self._proc, timeout=30.0, whole_group=False)
        # dockerd leaves its own network namespace bind-mounted under the exec root
        # (exec/netns/default) when it exits: ours to take down.
        for point in host_state.mounts_under([self._run_dir]):
            subprocess.run(["umount", point], capture_output=True, check=False)  # noqa: S603, S607
        try:
            if left := self._leftovers():
                raise DevstackError(
                    "dockerd left the host changed: " + "; ".join(left) + " (it runs with "
                    "no bridge, no iptables and no ip_forward precisely so it would not)"
                )
        finally:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._lock.close()

    def _leftovers(self) -> list[str]:
        """The engine's own footprint on the host, which must be gone once it stopped. Only its
        own: a Kubernetes node may be changing iptables and interfaces at the same time."""
        found = [
            f"still mounted: {point}"
            for point in host_state.mounts_under([data_root(), self._run_dir])
        ]
        found += [
            f"iptables chain {chain}"
            for chain in host_state.iptables_chains()
            if chain.partition(":")[2].startswith("DOCKER")
        ]
        if "docker0" in host_state.interfaces():
            found.append("interface docker0 exists")
        return found

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class DockerError(DevstackError):
    """The docker CLI exited non-zero; the message carries the end of its stderr."""

    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[bytes]) -> None:
        stderr = result.stderr.decode(errors="replace").strip()[-4000:]
        super().__init__(f"`docker {' '.join(args[:3])} ...` exited {result.returncode}:\n{stderr}")
        self.result = result


def _lock_data_root(root: Path) -> IO[str]:
    """One engine per data root: a second run waits for the first rather than corrupting it."""
    lock = (root / ".lock").open("w")
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.close()
                raise DevstackError(
                    f"another Docker engine has held {root} for {_LOCK_WAIT_SECONDS:.0f}s"
                ) from None
            time.sleep(1.0)
        else:
            return lock
