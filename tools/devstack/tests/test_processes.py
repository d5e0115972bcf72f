"""Child process handling: logs, fail-fast waits, and stopping only what we started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from claimflow_devstack import processes
from claimflow_devstack.errors import ProcessDiedError


def test_wait_for_port_fails_fast_with_log_tail(tmp_path: Path) -> None:
    proc = processes.start(
        "dies",
        [sys.executable, "-c", "print('boom: missing config'); raise SystemExit(3)"],
        log_path=tmp_path / "dies.log",
    )
    started = time.monotonic()
    with pytest.raises(ProcessDiedError, match=r"(?s)code 3.*boom: missing config"):
        processes.wait_for_port("127.0.0.1", processes.free_port(), 30, proc)
    assert time.monotonic() - started < 10
    processes.stop(proc)


def test_stop_kills_the_group_after_timeout(tmp_path: Path) -> None:
    # The child ignores SIGTERM and has a grandchild: both must be gone after stop().
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    pid_file = tmp_path / "stubborn.pid"
    proc = processes.start(
        "stubborn", [sys.executable, "-c", script], log_path=tmp_path / "s.log", pid_file=pid_file
    )
    assert pid_file.read_text().strip() == str(proc.pid)
    deadline = time.monotonic() + 10
    while not (tmp_path / "s.log").read_text().strip().splitlines()[-1].isdigit():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = int((tmp_path / "s.log").read_text().strip().splitlines()[-1])

    code = processes.stop(proc, timeout=1.0)

    assert code == -9
    assert not pid_file.exists()
    assert not Path(f"/proc/{grandchild}").exists() or "Z" in _state(grandchild)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]


def test_port_helpers() -> None:
    port = processes.free_port()
    assert processes.port_is_free(port)
    assert not processes.port_accepts("127.0.0.1", port)


_SUPERVISOR = """
import signal, sys, time
from pathlib import Path
from claimflow_devstack import processes

logs = Path(sys.argv[1])
polite = "import time; print('ready', flush=True); time.sleep(600)"
stubborn = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(600)"
)
with processes.supervised(grace=1.0):
    started = [
        processes.start(name, [sys.executable, "-c", code], log_path=logs / f"{name}.log")
        for name, code in (("polite", polite), ("stubborn", stubborn))
    ]
    print(" ".join(str(p.pid) for p in started), flush=True)
    time.sleep(600)
"""


def test_children_of_a_sigkilled_supervisor_are_stopped_then_killed(tmp_path: Path) -> None:
    # One child exits on the SIGTERM the kernel sends when its parent dies; the other ignores
    # it and is SIGKILLed by the reaper once the grace period is over.
    supervisor = subprocess.Popen(
        [sys.executable, "-c", _SUPERVISOR, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    children: list[int] = []
    try:
        assert supervisor.stdout is not None
        children = [int(pid) for pid in supervisor.stdout.readline().split()]
        assert len(children) == 2
        deadline = time.monotonic() + 30
        for name in ("polite", "stubborn"):
            # The line on its own: the log's header quotes the command, 'ready' included.
            while "ready" not in (tmp_path / f"{name}.log").read_text().splitlines():
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert all(_running(pid) for pid in children)
        os.kill(supervisor.pid, signal.SIGKILL)
        supervisor.wait()
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in children if _running(pid)]
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        for pid in children:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)  # a failed run's leftovers: this test's own


def _running(pid: int) -> bool:
    try:
        return _state(pid) != "Z"
    except FileNotFoundError:
        return False


def test_a_process_that_exits_while_its_parent_is_frozen_counts_as_stopped() -> None:
    """Freezing PostgreSQL stops the postmaster, then its backends; a backend that exits in
    between stays a zombie (its stopped parent cannot reap it) and must not be waited on."""
    exited = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while processes._stat_fields(exited.pid)[0] != "Z":  # type: ignore[index]
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        running = subprocess.Popen(["sleep", "30"])
        try:
            with pytest.raises(TimeoutError, match=str(running.pid)):
                processes.wait_stopped([exited.pid, running.pid], timeout=0.5)
            running.send_signal(signal.SIGSTOP)
            processes.wait_stopped([exited.pid, running.pid], timeout=5)
        finally:
            running.kill()
            running.wait()
    finally:
        exited.wait()
