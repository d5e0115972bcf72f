"""Child processes that we start, log, wait for and stop: always by our own PID."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from claimflow_devstack.errors import ProcessDiedError

LOCALHOST = "127.0.0.1"
_TAIL_BYTES = 64 * 1024
# prctl(2): the signal the kernel sends a process when the thread that forked it exits.
_PR_SET_PDEATHSIG = 1
# How long children get, after their supervisor died, before the reaper SIGKILLs them.
REAPER_GRACE_SECONDS = 5.0


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] = field(repr=False)
    pid_file: Path | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def died_message(self, waiting_for: str) -> str:
        return (
            f"{self.name} (pid {self.pid}) exited with code {self.popen.returncode} "
            f"while {waiting_for}; last lines of {self.log_path}:\n{self.log_tail()}"
        )


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - _TAIL_BYTES))
            text = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _open_log(log_path: Path, argv: Sequence[str]) -> int:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    # A header per run makes restarts visible in a log that several runs append to.
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    os.write(fd, f"\n=== {stamp} starting: {' '.join(argv)}\n".encode())
    return fd


class _Reaper:
    """The supervisor's end of the reaper process (claimflow_devstack.reaper)."""

    def __init__(self, grace: float) -> None:
        self.popen = subprocess.Popen(  # noqa: S603 - our own module, no shell
            [sys.executable, "-m", "claimflow_devstack.reaper", str(grace)],
            stdin=subprocess.PIPE,
            # Its own session: a signal to the supervisor's group (Ctrl-C) spares it.
            start_new_session=True,
        )

    def tell(self, line: str) -> None:
        assert self.popen.stdin is not None
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.popen.stdin.write(f"{line}\n".encode())
            self.popen.stdin.flush()

    def close(self) -> None:
        assert self.popen.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.popen.stdin.close()
        self.popen.wait()


_reaper: _Reaper | None = None


@contextlib.contextmanager
def supervised(grace: float = REAPER_GRACE_SECONDS) -> Iterator[None]:
    """Children started in this block, from the main thread, do not outlive this process,
    however it ends (SIGKILL included): the kernel sends each its stop signal when we die
    (PR_SET_PDEATHSIG), and a reaper process SIGKILLs, after `grace` seconds, the groups of
    those still running. Linux only; elsewhere a no-op."""
    global _reaper  # noqa: PLW0603 - one supervisor per process
    if not sys.platform.startswith("linux") or _reaper is not None:
        yield
        return
    _reaper = _Reaper(grace)
    try:
        yield
    finally:
        reaper, _reaper = _reaper, None
        reaper.close()


def _libc_prctl() -> Callable[..., int]:
    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


def _die_with_us(death_signal: int) -> Callable[[], None] | None:
    """A preexec_fn tying the child to this process, when supervised.

    The kernel signals the child when the *thread* that forked it exits, so only children
    forked by the main thread are tied: one started from a worker thread would be stopped when
    that thread ends, long before we do.
    """
    if _reaper is None or threading.current_thread() is not threading.main_thread():
        return None
    prctl = _libc_prctl()  # looked up here: the child runs as little Python as it can
    parent = os.getpid()

    def tie() -> None:
        # Runs in the child after any change of user (which would clear the setting).
        if prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            os._exit(1)  # we died before prctl took effect: nobody would signal it now

    return tie


def start(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    pid_file: Path | None = None,
    death_signal: int = signal.SIGTERM,
) -> ManagedProcess:
    """Start `argv` detached from our terminal's signals, output appended to `log_path`.

    Its own session makes it a process-group leader: Ctrl-C in the terminal reaches
    only us, so we decide the shutdown order, and stop() can find its children. Under
    supervised(), `death_signal` is what it gets if we die without stopping it.
    """
    fd = _open_log(log_path, argv)
    try:
        popen = subprocess.Popen(  # noqa: S603 - argv comes from our own code, no shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            user=user,
            start_new_session=True,
            preexec_fn=_die_with_us(death_signal),  # noqa: PLW1509 - see _die_with_us
        )
    finally:
        os.close(fd)
    if _reaper is not None:
        _reaper.tell(f"+{popen.pid}")
    if pid_file is not None:
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{popen.pid}\n")
    return ManagedProcess(name, list(argv), log_path, popen, pid_file)


def _reaped(proc: ManagedProcess) -> None:
    if _reaper is not None:
        _reaper.tell(f"-{proc.pid}")


def run(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> None:
    """Run a one-shot command to completion; raise with its log tail if it fails."""
    proc = start(name, argv, log_path=log_path, env=env, cwd=cwd, user=user)
    try:
        code = proc.popen.wait(timeout)
        _reaped(proc)
    except subprocess.TimeoutExpired:
        stop(proc, 5.0)
        raise TimeoutError(
            f"{name} did not finish within {timeout:.0f}s; last lines of {log_path}:\n"
            f"{proc.log_tail()}"
        ) from None
    if code != 0:
        raise ProcessDiedError(proc.died_message("running to completion"))


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float, proc: ManagedProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and not proc.alive():
            raise ProcessDiedError(proc.died_message(f"waiting for {host}:{port}"))
        if port_accepts(host, port):
            return
        if time.monotonic() >= deadline:
            tail = f"; last lines of {proc.log_path}:\n{proc.log_tail()}" if proc else ""
            raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s{tail}")
        time.sleep(0.1)


def free_port(host: str = LOCALHOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option the servers set, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # exited while we looked
    # The command name (field 2) may hold spaces and ")": the fields that follow it are
    # state, parent, ...
    return stat.rsplit(")", 1)[1].split()


# Stopped (T, or t under a tracer), or never to run again: a zombie (Z) or dead (X).
_NOT_RUNNING = frozenset({"T", "t", "Z", "X"})


def wait_stopped(pids: Iterable[int], timeout: float = 10.0) -> None:
    """Wait until every process that still exists is stopped (state T) or is a zombie.

    SIGSTOP takes effect when the process next leaves the kernel, not when kill() returns:
    one in the middle of a system call runs on until it finishes. A process that exits
    instead while its parent is stopped stays a zombie (nobody reaps it) until the parent
    runs again: it runs no more either.
    """
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while True:
        pending = {
            pid
            for pid in pending
            if (fields := _stat_fields(pid)) and fields[0] not in _NOT_RUNNING
        }
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"processes {sorted(pending)} not stopped after {timeout:.0f}s")
        time.sleep(0.01)


def children(pid: int) -> list[int]:
    """The PIDs whose parent is `pid`, read from /proc."""
    found: list[int] = []
    for entry in os.scandir("/proc"):
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _exited_unreaped(pid: int, timeout: float) -> bool:
    # WNOWAIT leaves the child a zombie, so its PID (and process-group ID) cannot be
    # recycled by an unrelated process while we still signal the group.
    deadline = time.monotonic() + timeout
    while True:
        result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if result is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def stop(
    proc: ManagedProcess,
    timeout: float = 10.0,
    *,
    sig: int = signal.SIGTERM,
    whole_group: bool = True,
) -> int:
    """Ask `proc` to exit with `sig`, SIGKILL its group after `timeout`; returns the exit code.

    `whole_group=False` signals only the leader, for servers (PostgreSQL) whose
    leader must coordinate the shutdown of its own children.
    """
    if proc.popen.returncode is None:
        pid = proc.pid
        try:
            if whole_group:
                _signal_group(pid, sig)
            else:
                os.kill(pid, sig)
            if not _exited_unreaped(pid, timeout):
                _signal_group(pid, signal.SIGKILL)
                _exited_unreaped(pid, 10.0)
            # Children the leader left behind share its group: they are ours too.
            _signal_group(pid, signal.SIGKILL)
        except ChildProcessError:
            pass  # already reaped elsewhere; nothing of ours left to signal
        proc.popen.wait()
    _reaped(proc)
    if proc.pid_file is not None:
        proc.pid_file.unlink(missing_ok=True)
    return proc.popen.returncode


def wait_ready(url: str, watched: Sequence[ManagedProcess], timeout: float) -> None:
    """Wait until url answers 200 (a /readyz), failing fast when a watched process dies."""
    import httpx  # noqa: PLC0415 - the process helpers need no HTTP client otherwise

    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while True:
            for proc in watched:
                if not proc.alive():
                    raise ProcessDiedError(proc.died_message(f"waiting for {url}"))
            try:
                response = client.get(url)
            except httpx.HTTPError as exc:
                last = repr(exc)
            else:
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code} {response.text[:200]}"
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{url} not ready after {timeout:.0f}s (last: {last})")
            time.sleep(0.2)
