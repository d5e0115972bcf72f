"""Child process handling: logs, fail-fast waits, and stopping only what we started."""

from __future__ import annotations

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
