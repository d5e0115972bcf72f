"""The watchdog of a supervisor (`claimflow-dev run`): kills what the supervisor leaves behind.

Every child of the supervisor gets its stop signal from the kernel the moment the supervisor
dies (PR_SET_PDEATHSIG, see processes.supervised). A child that ignores it, or takes too
long, is this process's business: the supervisor tells it, on its stdin, each PID it starts
("+PID") and each it has stopped itself ("-PID"). When stdin closes (the supervisor exited,
however it died), the children still running get `grace` seconds, then SIGKILL, to their
whole process group.

It holds a pidfd per child, so a PID the kernel has since given to another process is never
signalled: a child that exited is skipped, and a live leader keeps its group id its own.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time

POLL_SECONDS = 0.1


def _exited(pidfd: int) -> bool:
    readable, _, _ = select.select([pidfd], [], [], 0)
    return bool(readable)


def _watch(line: str, watched: dict[int, int]) -> None:
    sign, pid = line[:1], int(line[1:])
    if sign == "+":
        with contextlib.suppress(ProcessLookupError):
            watched[pid] = os.pidfd_open(pid)
    elif pid in watched:
        os.close(watched.pop(pid))


def reap(watched: dict[int, int], grace: float) -> list[int]:
    """Wait up to grace for the watched processes to exit; SIGKILL the groups of the rest.
    Returns the PIDs it killed."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if all(_exited(fd) for fd in watched.values()):
            return []
        time.sleep(POLL_SECONDS)
    killed = []
    for pid, fd in watched.items():
        if not _exited(fd):
            # Each child leads its own session and group (processes.start); while it lives
            # the group id is its PID and cannot name anyone else's group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def main(argv: list[str]) -> int:
    grace = float(argv[0]) if argv else 5.0
    # Ctrl-C in the supervisor's terminal is the supervisor's to handle, not ours.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watched: dict[int, int] = {}
    for raw in sys.stdin:
        line = raw.strip()
        if line:
            _watch(line, watched)
    killed = reap(watched, grace)
    if killed:
        print(f"reaper: killed {killed} that outlived their supervisor", file=sys.stderr)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
