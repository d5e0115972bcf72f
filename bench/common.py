"""What every benchmark under bench/ shares: a throwaway stack, the machine's commit rate,
CPU accounting, Prometheus scrapes and the report.

A benchmark owns everything it measures: its own PostgreSQL (durable, unlike the test
server), its own Kafka and its own service processes, all in a scratch directory that is
removed afterwards, so a run never depends on, or disturbs, a `make run` stack.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from claimflow_devstack import processes
from claimflow_devstack.errors import DevstackError, ProcessDiedError
from claimflow_devstack.kafka import KafkaBroker
from claimflow_devstack.paths import state_dir
from claimflow_devstack.postgres import SUPERUSER, PostgresServer

RESULTS_DIR = Path(__file__).resolve().parent / "results"
READY_TIMEOUT = 90.0


def say(message: str) -> None:
    print(message, flush=True)


# --- the stack ---------------------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # A supervisor's SIGTERM must reach the finally blocks that stop our children.
    raise KeyboardInterrupt


class Stack:
    """PostgreSQL, Kafka and service processes of one benchmark run.

    Everything is started by this object and stopped by PID on exit, newest first, so no
    service outlives the database or broker it talks to.
    """

    def __init__(self, name: str, *, keep: bool = False) -> None:
        self.name = name
        self.dir = state_dir() / f"bench-{os.getpid()}"
        self.keep = keep
        self.postgres: PostgresServer | None = None
        self.kafka: KafkaBroker | None = None
        self.procs: list[processes.ManagedProcess] = []

    def __enter__(self) -> Stack:
        signal.signal(signal.SIGTERM, _interrupt)
        self.dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A second Ctrl-C must not leave half the stack running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if exc is not None and not isinstance(exc, KeyboardInterrupt):
                for proc in self.procs:
                    say(f"--- last lines of {proc.name}:\n{proc.log_tail(15)}")
            for proc in reversed(self.procs):
                processes.stop(proc, 15.0)
            self.procs.clear()
            if self.kafka is not None:
                self.kafka.stop()
            if self.postgres is not None:
                self.postgres.stop()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if self.keep:
                say(f"kept {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def log(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def start_postgres(self) -> PostgresServer:
        # fast=False: fsync and synchronous commit stay on, as in production.
        self.postgres = PostgresServer.start(
            self.dir / "postgres", fast=False, log_path=self.log("postgres")
        )
        return self.postgres

    def start_kafka(self) -> KafkaBroker:
        self.kafka = KafkaBroker.start(self.dir / "kafka", log_path=self.log("kafka"))
        return self.kafka

    def run(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        processes.run(name, argv, log_path=self.log(name), timeout=300.0, env=env)

    def spawn(
        self, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> processes.ManagedProcess:
        proc = processes.start(name, argv, log_path=self.log(name), env=env)
        self.procs.append(proc)
        return proc

    def wait_ready(
        self, urls: Iterable[str], procs: Sequence[processes.ManagedProcess] | None = None
    ) -> None:
        """Wait until every URL answers 200 (readiness), failing fast if a process dies."""
        watched = list(procs if procs is not None else self.procs)
        deadline = time.monotonic() + READY_TIMEOUT
        for url in urls:
            try:
                processes.wait_ready(url, watched, max(0.0, deadline - time.monotonic()))
            except TimeoutError as exc:
                raise DevstackError(str(exc)) from None

    def check_alive(self) -> None:
        for proc in self.procs:
            if not proc.alive():
                raise ProcessDiedError(proc.died_message("the benchmark was running"))


@dataclass(frozen=True)
class ApiKey:
    """A fresh bearer key; services are given only its digest, as in production."""

    principal: str
    roles: tuple[str, ...]
    key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    def config(self) -> str:
        digest = hashlib.sha256(self.key.encode()).hexdigest()
        return json.dumps([{"principal": self.principal, "sha256": digest, "roles": self.roles}])

    @property
    def header(self) -> tuple[str, str]:
        return ("Authorization", f"Bearer {self.key}")


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


# --- PostgreSQL's own commit rate ----------------------------------------------


@dataclass(frozen=True)
class CommitRate:
    tps: float
    latency_ms: float | None
    clients: int
    threads: int
    seconds: int
    notify: bool = False

    @property
    def label(self) -> str:
        what = "INSERT + pg_notify" if self.notify else "1-row INSERT"
        return f"pgbench -c{self.clients} -j{self.threads} -T{self.seconds}, {what}"


_SINGLE_INSERT = "INSERT INTO bench_kv (v) VALUES ('x');\n"
# What a transactional outbox with a NOTIFY trigger adds to each commit: PostgreSQL
# serialises the commits of notifying transactions on one lock, WAL flush included.
_INSERT_NOTIFY = (
    "BEGIN;\nINSERT INTO bench_kv (v) VALUES ('x');\n"
    "SELECT pg_notify('bench_commit_rate', '');\nCOMMIT;\n"
)


# Names are interpolated into SQL; a strict pattern keeps that safe.
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_TPS = re.compile(r"^tps = ([0-9.]+)", re.MULTILINE)
_LATENCY = re.compile(r"^latency average = ([0-9.]+) ms", re.MULTILINE)


def measure_commit_rate(
    pg: PostgresServer,
    scratch: Path,
    *,
    seconds: int,
    clients: int = 8,
    threads: int = 2,
    notify: bool = False,
) -> CommitRate:
    """pgbench single-row INSERT commits: the ceiling any one-transaction-per-request
    service on this machine's disk can approach, measured on the very server it uses."""
    database = "bench_commit_rate"
    pg.create_database(database)
    pg.sql("CREATE TABLE IF NOT EXISTS bench_kv (id bigserial PRIMARY KEY, v text)", database)
    script = scratch / "commit-rate.sql"
    script.write_text(_INSERT_NOTIFY if notify else _SINGLE_INSERT)
    argv = [
        str(pg.bin_dir / "pgbench"),
        "-n",
        f"-c{clients}",
        f"-j{threads}",
        f"-T{seconds}",
        "-f",
        str(script),
        "-h",
        pg.host,
        "-p",
        str(pg.port),
        "-U",
        SUPERUSER,
        database,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = _TPS.search(out.stdout)
    if out.returncode != 0 or match is None:
        raise DevstackError(f"pgbench failed ({out.returncode}): {out.stderr[-2000:]}")
    latency = _LATENCY.search(out.stdout)
    pg.drop_database(database)
    return CommitRate(
        tps=float(match.group(1)),
        latency_ms=float(latency.group(1)) if latency else None,
        clients=clients,
        threads=threads,
        seconds=seconds,
        notify=notify,
    )


def sessions_opened(pg: PostgresServer, database: str) -> int:
    """Connections ever opened to `database`: a pool that keeps opening new ones during
    steady load is paying a fork and a handshake per request."""
    if not _DB_NAME.fullmatch(database):
        raise ValueError(f"database name {database!r} must match {_DB_NAME.pattern}")
    out = pg.sql(f"SELECT sessions FROM pg_stat_database WHERE datname = '{database}'")
    return int(out or 0)


# --- CPU -------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessInfo:
    ppid: int
    name: str
    cpu: float  # seconds, user + system


def process_table() -> dict[int, ProcessInfo]:
    """Every process on the machine, from /proc."""
    table: dict[int, ProcessInfo] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name may hold spaces and parentheses; the fields after the last ')'
        # are fixed: state, ppid, ..., utime (12th), stime (13th).
        head, _, tail = text.rpartition(")")
        fields = tail.split()
        cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        table[int(entry.name)] = ProcessInfo(int(fields[1]), head.partition("(")[2], cpu)
    return table


def descendants(table: Mapping[int, ProcessInfo], roots: Iterable[int]) -> set[int]:
    """The roots and every process below them: PostgreSQL does its work in child processes."""
    children: dict[int, list[int]] = {}
    for pid, info in table.items():
        children.setdefault(info.ppid, []).append(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def _machine_ticks() -> tuple[int, int, int]:
    """(busy, iowait, total) jiffies of the whole machine since boot."""
    with Path("/proc/stat").open() as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already inside user).
    total = sum(values[:8])
    idle, iowait = values[3], values[4]
    return total - idle - iowait, iowait, total


@dataclass(frozen=True)
class CpuSample:
    at: float
    table: dict[int, ProcessInfo]
    groups: dict[str, set[int]]
    machine: tuple[int, int, int]


@dataclass(frozen=True)
class CpuUsage:
    """Cores used (1.0 = one core busy) between two samples."""

    groups: dict[str, float]
    ours: float  # this benchmark's whole process tree, groups included
    # Processes outside that tree: a colleague's test run on a shared machine shows up here
    # instead of silently slowing the service down.
    foreign: float
    foreign_top: dict[str, float]  # by process name
    busy: float  # the machine's busy cores, kernel time included
    machine_busy_pct: float
    machine_iowait_pct: float

    @property
    def unaccounted(self) -> float:
        """Busy time no living process holds: kernel work (loopback TCP) and processes that
        exited in between, such as short-lived database connections."""
        return max(0.0, self.busy - self.ours - self.foreign)

    def as_dict(self) -> dict[str, Any]:
        return {
            **{name: round(v, 3) for name, v in self.groups.items()},
            "ours_total": round(self.ours, 3),
            "foreign": round(self.foreign, 3),
            "foreign_top": {name: round(v, 3) for name, v in self.foreign_top.items()},
            "unaccounted": round(self.unaccounted, 3),
            "machine_busy_pct": self.machine_busy_pct,
            "machine_iowait_pct": self.machine_iowait_pct,
        }


class CpuMeter:
    """CPU per named group of processes (each root with its descendants), from /proc."""

    def __init__(self, groups: Mapping[str, Callable[[], Iterable[int]]]) -> None:
        self.groups = dict(groups)

    def sample(self) -> CpuSample:
        table = process_table()
        members = {name: descendants(table, roots()) for name, roots in self.groups.items()}
        members[_OURS] = descendants(table, [os.getpid()])
        return CpuSample(time.monotonic(), table, members, _machine_ticks())

    @staticmethod
    def usage(first: CpuSample, second: CpuSample) -> CpuUsage:
        wall = max(second.at - first.at, 1e-9)

        def used(pid: int) -> float:
            # A process born in between counts from zero; one that died is lost to us.
            before = first.table.get(pid)
            return (second.table[pid].cpu - (before.cpu if before else 0.0)) / wall

        def total(pids: Iterable[int]) -> float:
            return sum(used(pid) for pid in pids if pid in second.table)

        groups = {name: total(pids) for name, pids in second.groups.items() if name != _OURS}
        ours = second.groups[_OURS] | first.groups[_OURS]
        foreign: dict[str, float] = {}
        for pid, info in second.table.items():
            if pid not in ours:
                foreign[info.name] = foreign.get(info.name, 0.0) + used(pid)
        top = sorted(foreign.items(), key=lambda item: -item[1])[:5]
        busy, iowait, ticks = (b - a for a, b in zip(first.machine, second.machine, strict=True))
        return CpuUsage(
            groups=groups,
            ours=total(ours),
            foreign=sum(foreign.values()),
            foreign_top={name: v for name, v in top if v >= 0.005},
            busy=busy / max(ticks, 1) * (os.cpu_count() or 1),
            machine_busy_pct=round(100.0 * busy / max(ticks, 1), 1),
            machine_iowait_pct=round(100.0 * iowait / max(ticks, 1), 1),
        )


_OURS = "\0ours"


def measure_quiet(meter: CpuMeter, seconds: float = 2.0) -> CpuUsage:
    """CPU use while our services idle: well above zero means someone else's load will be
    measured with ours."""
    first = meter.sample()
    time.sleep(seconds)
    return CpuMeter.usage(first, meter.sample())


# --- Prometheus ------------------------------------------------------------------


def scrape(url: str) -> str:
    response = httpx.get(url, timeout=5.0)
    response.raise_for_status()
    return response.text


def _matches(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def counter_total(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (name, f"{name}_total") and _matches(sample.labels, labels or {}):
                total += sample.value
    return total


@dataclass(frozen=True)
class Histogram:
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count)
    sum: float
    count: float

    def minus(self, earlier: Histogram) -> Histogram:
        before = dict(earlier.buckets)
        return Histogram(
            tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets),
            self.sum - earlier.sum,
            self.count - earlier.count,
        )

    def quantile(self, q: float) -> float | None:
        """Prometheus' histogram_quantile: linear within the bucket that holds the rank."""
        if self.count <= 0:
            return None
        rank = q * self.count
        lower, below = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                if le == float("inf"):
                    return lower
                inside = cumulative - below
                return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = le, cumulative
        return lower

    @classmethod
    def combine(cls, parts: Iterable[Histogram]) -> Histogram:
        """One histogram of several processes' (replicas') series."""
        buckets: dict[float, float] = {}
        total = count = 0.0
        for part in parts:
            for le, n in part.buckets:
                buckets[le] = buckets.get(le, 0.0) + n
            total += part.sum
            count += part.count
        return cls(tuple(sorted(buckets.items())), total, count)

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count > 0 else None


def histogram(text: str, name: str, labels: Mapping[str, str] | None = None) -> Histogram:
    """One histogram summed over every series whose labels include `labels`."""
    buckets: dict[float, float] = {}
    total = count = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if not _matches(sample.labels, labels or {}):
                continue
            if sample.name.endswith("_bucket"):
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
    return Histogram(tuple(sorted(buckets.items())), total, count)


# --- the transactional outbox ------------------------------------------------------

_UNPUBLISHED = "SELECT count(*) FROM outbox WHERE published_at IS NULL"


async def _drain(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        began = time.monotonic()
        backlog: int = await conn.fetchval(_UNPUBLISHED)
        remaining = backlog
        while remaining:
            await asyncio.sleep(0.05)
            remaining = await conn.fetchval(_UNPUBLISHED)
        seconds = time.monotonic() - began
    finally:
        await conn.close()
    return {
        "backlog_rows": backlog,
        "drain_s": round(seconds, 2),
        "rows_per_s": round(backlog / seconds, 1) if backlog else None,
    }


def drain_outbox(dsn: str, timeout: float = 300.0) -> dict[str, Any]:
    """Wait until a service's relay has published every outbox row; how many and how long."""

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return await _drain(dsn)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        raise TimeoutError(f"the outbox was not drained within {timeout:.0f}s") from None


# --- the report --------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    metric: str
    measured: str
    target: str = ""
    verdict: str = ""


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(title: str, rows: Sequence[Row]) -> str:
    header = Row("metric", "measured", "target", "")
    widths = [
        max(len(getattr(r, f)) for r in [header, *rows])
        for f in ("metric", "measured", "target", "verdict")
    ]
    lines = [title, "=" * len(title)]
    for index, row in enumerate([header, *rows]):
        cells = (row.metric, row.measured, row.target, row.verdict)
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths).rstrip())
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_results(benchmark: str, results: Mapping[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{benchmark}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"
