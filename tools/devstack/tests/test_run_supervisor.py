"""`claimflow-dev run` SIGKILLed leaves nothing behind: within 10 s every process it started
(PostgreSQL and its backends, Kafka, every service, the reaper) is gone, and no port of the
stack still listens. The stack runs on ports and in a state dir of its own, beside any
developer's `make run`."""

from __future__ import annotations

import os
import random
import secrets
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from claimflow_devstack import processes
from claimflow_devstack.paths import repo_root
from claimflow_devstack.services import SERVICES

START_TIMEOUT = 300.0
READY_WITHIN = 180.0
GONE_WITHIN = 10.0
RUNNING = "claimflow is running"

# A process as (pid, start time in clock ticks): a PID the kernel reuses is another process.
Proc = tuple[int, int]


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces; everything after its ')' splits cleanly.
    return raw.rsplit(")", 1)[1].split()


def _descendants(root: int) -> set[Proc]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[Proc] = set()
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        if (fields := _stat(pid)) is not None:
            found.add((pid, int(fields[19])))
            pending.extend(children.get(pid, []))
    return found


def _alive(proc: Proc) -> bool:
    fields = _stat(proc[0])
    # A zombie has exited; only its parent's wait() is missing.
    return fields is not None and int(fields[19]) == proc[1] and fields[0] != "Z"


def _free_offset() -> int:
    ports = [p for spec in SERVICES for p in spec.ports()]
    for _ in range(100):
        offset = random.randrange(20_000, 50_000)
        if all(processes.port_is_free(p + offset) for p in ports):
            return offset
    raise AssertionError("no free block of ports for the stack")


def _wait_running(supervisor: subprocess.Popen[bytes]) -> str:
    assert supervisor.stdout is not None
    fd = supervisor.stdout.fileno()
    output = b""
    deadline = time.monotonic() + START_TIMEOUT
    while RUNNING.encode() not in output:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the stack did not start:\n{output.decode(errors='replace')}"
        readable, _, _ = select.select([fd], [], [], min(remaining, 1.0))
        if readable:
            chunk = os.read(fd, 65536)
            assert chunk, f"the supervisor exited:\n{output.decode(errors='replace')}"
            output += chunk
    return output.decode(errors="replace")


def test_a_sigkilled_supervisor_leaves_no_process_and_no_listener(devstack_dir: Path) -> None:
    offset = _free_offset()
    pg_port, kafka_port = processes.free_port(), processes.free_port()
    ports = [pg_port, kafka_port] + [p + offset for s in SERVICES for p in s.ports()]
    env = {
        **os.environ,
        "CLAIMFLOW_STATE_DIR": str(devstack_dir / f"run-{secrets.token_hex(4)}"),
        "CLAIMFLOW_DEV_PG_PORT": str(pg_port),
        "CLAIMFLOW_DEV_KAFKA_PORT": str(kafka_port),
        "CLAIMFLOW_DEV_PORT_OFFSET": str(offset),
        "CLAIMFLOW_API_KEY": secrets.token_urlsafe(16),
    }
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "claimflow_devstack.cli", "run"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=repo_root(),
    )
    started: set[Proc] = set()
    try:
        printed = _wait_running(supervisor)
        assert f"http://127.0.0.1:{8080 + offset}" in printed
        for port in ports:
            # The stack waits for the APIs; the workers open their ports when they are up,
            # which on a machine busy with other suites can take as long as a service start.
            processes.wait_for_port(processes.LOCALHOST, port, READY_WITHIN)
        started = _descendants(supervisor.pid)
        names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid, _ in started}
        assert {"postgres", "java"} <= names, names

        os.kill(supervisor.pid, signal.SIGKILL)
        supervisor.wait()

        deadline = time.monotonic() + GONE_WITHIN
        while (left := {p for p in started if _alive(p)}) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, f"still running {GONE_WITHIN}s after the supervisor died: {left}"
        listening = [p for p in ports if processes.port_accepts(processes.LOCALHOST, p)]
        assert not listening, f"ports still listening: {listening}"
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        # What a failed run left: every one was started, indirectly, by this test.
        for pid, ticks in started | _descendants(supervisor.pid):
            if _alive((pid, ticks)):
                os.kill(pid, signal.SIGKILL)
        if supervisor.stdout is not None:
            supervisor.stdout.close()
