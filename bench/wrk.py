"""Closed-loop HTTP load from wrk, a compiled generator, with its own CPU measured apart.

The Python generators of bench/load.py spend over a millisecond of CPU per request; on a small
machine that is taken from the service being measured. wrk spends a few microseconds. It
POSTs a body template with a run-unique number per request (bench/wrk_post.lua), keeps
`concurrency` connections busy, and reports completions, errors by kind, statuses other than
the expected one and its latency percentiles. Its CPU (user + system, every thread) comes from
the kernel's accounting of the child when it exits (wait4), so nothing else is counted in it.

wrk is closed loop only: a connection sends its next request when the last is answered, so it
cannot keep to a schedule of arrival times, and a stalled server slows the load down instead
of being charged for the requests it delayed. The open-loop (fixed-rate) phases therefore stay
on the Python generator, which measures latency from each request's scheduled send time.

The warm-up is a separate wrk run whose figures are dropped: wrk's latency histogram cannot
be split in time.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.load import ClosedLoop, Observer, Target, reserve_seq_range
from claimflow_devstack.wrk import Wrk, find_wrk

SCRIPT = Path(__file__).resolve().with_name("wrk_post.lua")
PLACEHOLDER = b"@SEQ@"
# How long wrk may take to start and stop around its run before we give up on it.
_GRACE = 30.0


@dataclass(frozen=True)
class WrkTarget:
    """What wrk sends: one host, one port per API replica, and a body template."""

    urls: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    body_template: bytes  # each PLACEHOLDER is replaced by the request's number
    ok_status: int = 202
    timeout: float = 30.0

    @classmethod
    def of(cls, target: Target, body_template: bytes) -> WrkTarget:
        """The Python generator's target, sent by wrk: the template must give the same
        bodies as the target's body function."""
        if target.body(7) != body_template.replace(PLACEHOLDER, b"7"):
            raise ValueError("the body template does not match the target's body function")
        return cls(target.urls, target.headers, body_template, target.ok_status, target.timeout)

    def __post_init__(self) -> None:
        if PLACEHOLDER not in self.body_template:
            raise ValueError(f"the body template has no {PLACEHOLDER!r}")
        parts = [urlsplit(url) for url in self.urls]
        if not parts or len({(p.scheme, p.hostname, p.path) for p in parts}) != 1:
            raise ValueError("wrk sends to one host and path; replicas may differ by port only")


@dataclass
class WrkResult:
    """One measured wrk run; read like bench.load.PhaseResult by the reports."""

    shape: ClosedLoop
    warmup: float
    duration: float  # wrk's own measured time, seconds
    threads: int
    requests: int  # responses received
    sent: int  # requests written or about to be; those in flight at the end go unanswered
    ok: int
    errors: Counter[str] = field(default_factory=Counter)
    latency_us: dict[str, float] = field(default_factory=dict)  # every response, any status
    cpu_s: float = 0.0  # wrk's user + system time over the measured run
    first_seq: int = 0

    generator = "wrk"

    @property
    def throughput(self) -> float:
        return self.ok / self.duration

    @property
    def generator_cores(self) -> float:
        return self.cpu_s / self.duration

    @property
    def generator_cpu_ms_per_request(self) -> float | None:
        return 1000 * self.cpu_s / self.requests if self.requests else None

    def percentile(self, p: float) -> float | None:
        """Seconds, from wrk's histogram; None if no response came back."""
        value = self.latency_us.get(f"p{p:g}")
        return None if value is None or not self.requests else value / 1e6

    def summary(self) -> dict[str, Any]:
        return {
            "generator": self.generator,
            "shape": type(self.shape).__name__,
            **vars(self.shape),
            "warmup_s": self.warmup,
            "duration_s": round(self.duration, 3),
            "wrk_threads": self.threads,
            "generator_cores": round(self.generator_cores, 3),
            "generator_cpu_s": round(self.cpu_s, 3),
            "generator_cpu_ms_per_request": _round(self.generator_cpu_ms_per_request, 4),
            "sent": self.sent,
            "responses": self.requests,
            "accepted": self.ok,
            "accepted_per_s": round(self.throughput, 1),
            "errors": dict(self.errors),
            "latency_ms": {k: round(v / 1000, 2) for k, v in self.latency_us.items()},
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def run_closed_loop(
    target: WrkTarget,
    shape: ClosedLoop,
    *,
    warmup: float,
    duration: float,
    threads: int = 1,
    observer: Observer | None = None,
    binary: Wrk | None = None,
) -> WrkResult:
    """A warm-up run (dropped), then the measured run, the observer's window around it.

    wrk counts whole seconds; `shape.concurrency` connections are split evenly over `threads`,
    and threads over the target's ports.
    """
    for name, seconds in (("warmup", warmup), ("duration", duration)):
        if seconds != int(seconds) or seconds < 0:
            raise ValueError(f"wrk runs whole seconds: {name}={seconds:g}")
    if duration < 1:
        raise ValueError("wrk needs a duration of at least 1 s")
    if threads < 1 or shape.concurrency % threads:
        raise ValueError(f"{shape.concurrency} connections do not split over {threads} threads")
    if threads % len(target.urls):
        raise ValueError(f"{threads} threads do not split over {len(target.urls)} replicas")
    binary = binary or find_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        scratch = Path(tmp)
        (scratch / "body").write_bytes(target.body_template)
        if warmup:
            _run(binary, target, shape, int(warmup), threads, scratch, None)
        result = _run(binary, target, shape, int(duration), threads, scratch, observer)
    result.warmup = warmup
    return result


def _run(
    binary: Wrk,
    target: WrkTarget,
    shape: ClosedLoop,
    seconds: int,
    threads: int,
    scratch: Path,
    observer: Observer | None,
) -> WrkResult:
    first_seq = reserve_seq_range()
    out_file = scratch / "result.json"
    out_file.unlink(missing_ok=True)
    url = urlsplit(target.urls[0])
    env = binary.env() | {
        "BENCH_WRK_BODY_FILE": str(scratch / "body"),
        "BENCH_WRK_FIRST_SEQ": str(first_seq),
        "BENCH_WRK_THREADS": str(threads),
        "BENCH_WRK_PORTS": ",".join(str(urlsplit(u).port or "") for u in target.urls),
        "BENCH_WRK_OK_STATUS": str(target.ok_status),
        "BENCH_WRK_RESULT_FILE": str(out_file),
    }
    argv = [
        str(binary.path),
        f"--threads={threads}",
        f"--connections={shape.concurrency}",
        f"--duration={seconds}s",
        f"--timeout={max(1, round(target.timeout))}s",
        f"--script={SCRIPT}",
        *(f"--header={name}: {value}" for name, value in target.headers),
        url.geturl(),
    ]
    log = scratch / "wrk.log"
    with log.open("wb") as output:
        if observer is not None:
            observer.window_start()
        proc = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, env=env)
        code, cpu_s = _wait(proc, seconds + target.timeout + _GRACE)
        if observer is not None:
            observer.window_end()
    if code != 0 or not out_file.is_file():
        raise RuntimeError(f"wrk exited with {code}: {log.read_text(errors='replace')[-2000:]}")
    return parse(json.loads(out_file.read_text()), shape, cpu_s, first_seq)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, float]:
    """Reap wrk ourselves: wait4 hands back its rusage, the CPU of all its threads."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise TimeoutError(f"wrk still running {timeout:g}s after it started")
        time.sleep(0.02)


def parse(document: dict[str, Any], shape: ClosedLoop, cpu_s: float, first_seq: int) -> WrkResult:
    """The JSON that bench/wrk_post.lua's done() writes, as a WrkResult."""
    errors: Counter[str] = Counter()
    for code, count in document["unexpected_status"].items():
        errors[f"HTTP {code}"] += int(count)
    # Socket errors by kind; `status` (>= 400) is already counted by code above.
    for kind, count in document["errors"].items():
        if kind != "status" and count:
            errors[kind] += int(count)
    requests = int(document["requests"])
    unexpected = sum(int(n) for n in document["unexpected_status"].values())
    return WrkResult(
        shape=shape,
        warmup=0.0,
        duration=int(document["duration_us"]) / 1e6,
        threads=int(document["threads"]),
        requests=requests,
        # wrk calls the first thread's request() once before starting, to check that the
        # request parses, and never sends that one.
        sent=int(document["sent"]) - 1,
        ok=requests - unexpected,
        errors=errors,
        latency_us={k: float(v) for k, v in document["latency_us"].items()},
        cpu_s=cpu_s,
        first_seq=first_seq,
    )
