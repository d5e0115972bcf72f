"""Benchmark of the whole pipeline: POST accepted -> adjudicated -> audited, on this machine.

Real PostgreSQL (durable commits), real Kafka, and every service as real processes: intake
(API + worker), adjudication (worker), the fake payments system and audit-log (worker). Phases:

- ceilings: PostgreSQL's single-row commit rate (pgbench) and Kafka's produce rate with the
  project's producer settings, measured on the very servers the services use;
- sustained: closed loop at fixed concurrency for --duration (60 s) after a warm-up; claims/s
  end to end counts claims whose adjudication the audit log recorded inside the window; the
  load from wrk (bench/wrk.py), whose own CPU per request is a small fraction of Python's;
- fixed rate: open loop at --rate (200/s), submit latency from the scheduled send time, from
  the Python generator (bench/load.py), as wrk cannot send on a schedule;
- half capacity: the same at half the sustained phase's rate, a load the machine does carry.

Stage timestamps come from the services' own rows (intake's created_at, the outbox's
published_at, adjudication's adjudicated_at, the audit chain's recorded_at: one clock), so
per-stage throughput and submit->adjudicated latency need no extra instrumentation. A table is
printed; JSON and a PNG chart of rate and latency over time go to bench/results/.

    python -m bench.pipeline [--quick] [--duration S] [--concurrency N] [--rate R]
                             [--rate-duration S] [--env NAME=VALUE ...] [--keep]
                             [--sustained-load {wrk,python}] [--wrk-threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from bench import _pipeline_chart as chart
from bench.intake import CLAIM_TEMPLATE, claim_body, smoke_check
from bench.load import ClosedLoop, OpenLoop, PhaseResult, Shape, Target, run_phase
from bench.meters import CpuMeter, CpuSample, CpuUsage, measure_quiet
from bench.pgprobe import CommitRate, measure_commit_rate
from bench.prom import Histogram, histogram, scrape
from bench.report import (
    Row,
    machine_info,
    ms,
    say,
    table,
    verdict,
    with_service_env,
    write_results,
)
from bench.stack import ApiKey, Stack
from bench.wrk import WrkResult, WrkTarget, run_closed_loop
from claimflow_devstack import processes
from claimflow_devstack.paths import example_plans_dir
from claimflow_devstack.services import SERVICES
from claimflow_shared.events import ClaimLineV1, ClaimSubmittedV1, ClaimTotalsV1, new_event
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.plans import publish_plan_files
from claimflow_shared.settings import ServiceSettings

NAME = "pipeline"
TARGET_E2E = 500.0  # claims/s, accepted -> adjudicated -> audited
TARGET_P99 = 0.050  # seconds, submit latency at the fixed rate
ROUTE = {"service": "intake", "method": "POST", "route": "/v1/claims"}
ADJUDICATED_TYPE = "io.claimflow.claim.adjudicated.v1"
DRAIN_TIMEOUT = 600.0
HALF_CAPACITY = "half capacity"
GROUPS = ("intake-api", "intake-worker", "adjudication", "payments", "audit", "postgres", "kafka")


@dataclass
class Settings:
    duration: float
    warmup: float
    concurrency: int
    rate: float
    rate_duration: float
    pgbench_seconds: int
    kafka_messages: int
    pool_size: int
    keep: bool
    service_env: dict[str, str] = field(default_factory=dict)
    sustained_load: str = "wrk"
    wrk_threads: int = 1


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline")
    parser.add_argument("--duration", type=float, help="sustained phase, seconds (60; quick 15)")
    parser.add_argument("--warmup", type=float, help="warm-up before each phase, seconds (5)")
    parser.add_argument("--concurrency", type=int, default=16, help="sustained phase (16)")
    parser.add_argument("--rate", type=float, default=200.0, help="fixed rate, claims/s (200)")
    parser.add_argument("--rate-duration", type=float, help="fixed-rate phase, s (30; quick 10)")
    parser.add_argument("--pool-size", type=int, default=20, help="DB pool per process (20)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every service process, to compare settings (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: short phases")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir and its logs")
    parser.add_argument(
        "--sustained-load",
        choices=("wrk", "python"),
        default="wrk",
        help="the sustained phase's load generator (wrk); the fixed rates are always Python's",
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1)")
    # `python -m bench` hands every benchmark the same options.
    args, _unknown = parser.parse_known_args(argv)
    if min(args.concurrency, args.pool_size) < 1 or args.rate <= 0:
        parser.error("--concurrency, --pool-size and --rate must be positive")
    env = dict(item.split("=", 1) for item in args.env)
    duration = args.duration or (15.0 if args.quick else 60.0)
    warmup = args.warmup if args.warmup is not None else (3.0 if args.quick else 5.0)
    if args.sustained_load == "wrk":
        if duration != int(duration) or warmup != int(warmup):
            parser.error("wrk runs whole seconds: --duration and --warmup must be integers")
        if args.wrk_threads < 1 or args.concurrency % args.wrk_threads:
            parser.error("--wrk-threads must divide --concurrency")
    return Settings(
        duration=duration,
        warmup=warmup,
        concurrency=args.concurrency,
        rate=args.rate,
        rate_duration=args.rate_duration or (10.0 if args.quick else 30.0),
        pgbench_seconds=3 if args.quick else 10,
        kafka_messages=5000 if args.quick else 20_000,
        pool_size=args.pool_size,
        keep=args.keep,
        service_env=env,
        sustained_load=args.sustained_load,
        wrk_threads=args.wrk_threads,
    )


# --- the machine's ceilings ------------------------------------------------------------


def _sample_event() -> bytes:
    """A claims.submitted event as intake publishes it for the benchmark's 4-line claim."""
    lines = [
        ClaimLineV1(
            line_no=n,
            service_date=date(2018, 3, 28),
            submitted_procedure=code,
            plan_group="GRP-1000",
            subscriber_number="SUB-000001",
            provider_npi="1497775530",
            provider_fees=Decimal("130.00"),
            allowed_fees=Decimal("65.00"),
            member_coinsurance=Decimal("16.25"),
            member_copay=Decimal("0.00"),
            net_fee=Decimal("81.25"),
        )
        for n, code in enumerate(("D0180", "D0210", "D4346", "D4211"), start=1)
    ]
    data = ClaimSubmittedV1(
        claim_id=uuid.uuid4(),
        submitted_at=datetime.now(UTC),
        submitted_by="bench",
        lines=lines,
        totals=ClaimTotalsV1(net_fee=Decimal("325.00")),
    )
    return new_event("/bench", data, subject=str(data.claim_id)).to_json()


def measure_produce_rate(bootstrap: str, settings: Settings) -> dict[str, Any]:
    """Messages/s one Publisher (the relay's producer, same config) gets acknowledged,
    in batches of the relay's default size."""
    overrides = {
        name: int(settings.service_env[f"CLAIMFLOW_{name.upper()}"])
        for name in ("kafka_linger_ms", "kafka_batch_size")
        if f"CLAIMFLOW_{name.upper()}" in settings.service_env
    }
    service = ServiceSettings(
        service_name="bench-produce", kafka_bootstrap_servers=bootstrap
    ).model_copy(update=overrides)
    topic = "bench.produce-rate"
    ensure_topics(service, [topic])
    value = _sample_event()
    batch = service.outbox_batch_size
    messages = [OutgoingMessage(topic, str(uuid.uuid4()), value) for _ in range(batch)]
    publisher = Publisher(service)
    try:
        publisher.publish(messages[:10])  # connections and metadata before the clock starts
        began = time.perf_counter()
        sent = 0
        while sent < settings.kafka_messages:
            publisher.publish(messages)
            sent += len(messages)
        seconds = time.perf_counter() - began
    finally:
        publisher.close()
    return {
        "messages": sent,
        "message_bytes": len(value),
        "batch": batch,
        "linger_ms": service.kafka_linger_ms,
        "batch_size": service.kafka_batch_size,
        "seconds": round(seconds, 2),
        "per_s": round(sent / seconds, 1),
    }


# --- the services ----------------------------------------------------------------------


@dataclass
class Services:
    procs: dict[str, processes.ManagedProcess]
    api_url: str
    databases: dict[str, str]  # service -> database name (the owner's)


def start_services(stack: Stack, settings: Settings, key: ApiKey) -> Services:
    pg, kafka = stack.postgres, stack.kafka
    assert pg is not None
    assert kafka is not None
    common = {
        **os.environ,
        "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "CLAIMFLOW_API_KEYS": key.config(),
        "CLAIMFLOW_HTTP_HOST": processes.LOCALHOST,
        "CLAIMFLOW_LOG_LEVEL": "WARNING",
        "CLAIMFLOW_DATABASE_POOL_SIZE": str(settings.pool_size),
        # The benchmark is one principal's load: it measures intake, not the rate limit.
        "CLAIMFLOW_SUBMISSION_RATE_LIMIT": "1000000/second",
        "CLAIMFLOW_IMPORT_RATE_LIMIT": "1000000/second",
        # A checkpoint is one more record in the chain; none inside the measured windows.
        "CLAIMFLOW_CHECKPOINT_INTERVAL_SECONDS": "86400",
    }
    # adjudication reads plans from the plans topic only, where the operator puts them.
    publish_plan_files(
        ServiceSettings(service_name="bench", kafka_bootstrap_servers=kafka.bootstrap_servers),
        example_plans_dir(),
        "/bench",
    )
    procs: dict[str, processes.ManagedProcess] = {}
    ready: list[str] = []
    databases: dict[str, str] = {}
    api_url = ""
    # Consumers first, so no producer waits on a consumer group to form.
    for spec in sorted(
        SERVICES, key=lambda s: ("audit-log", "adjudication", "intake").index(s.name)
    ):
        databases[spec.name] = spec.database
        worker_port = processes.free_port()
        env = {
            **common,
            **spec.database_env(pg.create_database(spec.database)),
            **spec.env(),
            "CLAIMFLOW_SERVICE_NAME": spec.name,
            "CLAIMFLOW_WORKER_HTTP_PORT": str(worker_port),
            **settings.service_env,
        }
        say(f"{spec.name}: migrating ...")
        stack.run(f"{spec.name}-migrate", spec.migrate, env)
        for role, argv in spec.processes.items():
            role_env = env
            if role == "api":
                if spec.name != "intake":
                    continue  # only intake's API is on the claim's path
                port = processes.free_port()
                role_env = {**env, "CLAIMFLOW_HTTP_PORT": str(port)}
                api_url = f"http://{processes.LOCALHOST}:{port}"
                ready.append(f"{api_url}/readyz")
            elif role == "worker":
                ready.append(f"http://{processes.LOCALHOST}:{worker_port}/readyz")
            procs[f"{spec.name}-{role}"] = stack.spawn(f"{spec.name}-{role}", argv, role_env)
    say("waiting for every process to be ready ...")
    stack.wait_ready(ready)
    return Services(procs, api_url, databases)


def _cpu_groups(stack: Stack, services: Services) -> CpuMeter:
    pg, kafka, procs = stack.postgres, stack.kafka, services.procs
    assert pg is not None
    assert kafka is not None
    pids = {
        "intake-api": "intake-api",
        "intake-worker": "intake-worker",
        "adjudication": "adjudication-worker",
        "payments": "adjudication-payments-fake",
        "audit": "audit-log-worker",
    }
    groups = {g: (lambda name=name: [procs[name].pid]) for g, name in pids.items()}
    return CpuMeter({**groups, "postgres": lambda: [pg.pid], "kafka": lambda: [kafka.pid]})


# --- what the services recorded --------------------------------------------------------


def _fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


@dataclass
class Timeline:
    """Per claim: accepted, adjudicated and audited (epoch seconds); relay times of rows."""

    accepted: dict[str, float]
    adjudicated: dict[str, float]
    audited: dict[str, float]
    relayed: list[float]
    audit_records: list[float]

    @classmethod
    def read(cls, stack: Stack, services: Services) -> Timeline:
        pg = stack.postgres
        assert pg is not None
        db = services.databases

        def epochs(service: str, sql: str) -> list[asyncpg.Record]:
            return _fetch(pg.dsn(db[service]), sql)

        accepted = epochs(
            "intake", "SELECT id::text AS k, extract(epoch FROM created_at) AS t FROM claims"
        )
        relayed = epochs(
            "intake",
            "SELECT extract(epoch FROM published_at) AS t FROM outbox"
            " WHERE published_at IS NOT NULL AND topic LIKE '%claims.submitted'",
        )
        adjudicated = epochs(
            "adjudication",
            "SELECT claim_id::text AS k, extract(epoch FROM adjudicated_at) AS t FROM claims",
        )
        records = epochs(
            "audit-log",
            "SELECT subject AS k, type, extract(epoch FROM recorded_at) AS t FROM audit_records",
        )
        return cls(
            accepted={r["k"]: float(r["t"]) for r in accepted},
            adjudicated={r["k"]: float(r["t"]) for r in adjudicated},
            audited={r["k"]: float(r["t"]) for r in records if r["type"] == ADJUDICATED_TYPE},
            relayed=[float(r["t"]) for r in relayed],
            audit_records=[float(r["t"]) for r in records],
        )

    def count(self, times: Any, start: float, end: float) -> int:
        values = times.values() if isinstance(times, dict) else times
        return sum(1 for t in values if start <= t < end)

    def e2e_latencies(self, start: float, end: float) -> tuple[list[float], list[float]]:
        """submit->adjudicated and submit->audited, for claims accepted inside the window."""
        adjudicated, audited = [], []
        for claim, at in self.accepted.items():
            if start <= at < end:
                if claim in self.adjudicated:
                    adjudicated.append(self.adjudicated[claim] - at)
                if claim in self.audited:
                    audited.append(self.audited[claim] - at)
        return sorted(adjudicated), sorted(audited)


def quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest rank on sorted values."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, round(q * len(values) + 0.5) - 1))]


def wait_drained(stack: Stack, services: Services) -> float:
    """Until every accepted claim's adjudication is in the audit chain; returns seconds."""
    pg = stack.postgres
    assert pg is not None
    intake = pg.dsn(services.databases["intake"])
    audit = pg.dsn(services.databases["audit-log"])
    began = time.monotonic()
    while time.monotonic() - began < DRAIN_TIMEOUT:
        stack.check_alive()
        accepted = _fetch(intake, "SELECT count(*) AS n FROM claims")[0]["n"]
        done = _fetch(
            audit, f"SELECT count(*) AS n FROM audit_records WHERE type = '{ADJUDICATED_TYPE}'"
        )[0]["n"]
        if done >= accepted:
            return time.monotonic() - began
        time.sleep(0.5)
    raise TimeoutError(f"the pipeline did not drain within {DRAIN_TIMEOUT:.0f}s")


# --- phases ----------------------------------------------------------------------------


class Sampler:
    """Scrapes the API's latency histogram every second for the chart, and marks windows."""

    def __init__(self, api_url: str, meter: CpuMeter) -> None:
        self.api_url = api_url
        self.meter = meter
        self.samples: list[tuple[float, Histogram]] = []
        self.windows: list[tuple[str, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                text = scrape(f"{self.api_url}/metrics")
            except Exception:  # a missed sample is only a gap in the chart
                continue
            self.samples.append(
                (time.time(), histogram(text, "claimflow_http_request_duration_seconds", ROUTE))
            )


class Window:
    """The measured window of one phase: wall-clock bounds, CPU and load average."""

    def __init__(self, meter: CpuMeter) -> None:
        self.meter = meter
        self.bounds: list[float] = []
        self.cpu: list[CpuSample] = []
        self.loadavg: list[tuple[float, float, float]] = []

    def _mark(self) -> None:
        self.bounds.append(time.time())
        self.cpu.append(self.meter.sample())
        self.loadavg.append(os.getloadavg())

    def window_start(self) -> None:
        self._mark()

    def window_end(self) -> None:
        self._mark()

    def usage(self) -> CpuUsage:
        return CpuMeter.usage(self.cpu[0], self.cpu[1])


@dataclass
class Phase:
    name: str
    result: PhaseResult | WrkResult
    window: Window
    drain_s: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    adjudicated_latency: list[float] = field(default_factory=list)
    audited_latency: list[float] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.window.bounds[0]

    @property
    def end(self) -> float:
        return self.window.bounds[1]

    def measure(self, timeline: Timeline) -> None:
        seconds = self.end - self.start
        per_s = {
            "intake accepted": timeline.accepted,
            "intake outbox relayed (claims.submitted)": timeline.relayed,
            "adjudicated": timeline.adjudicated,
            "audit records appended": timeline.audit_records,
            "end to end (adjudication audited)": timeline.audited,
        }
        self.stages = {
            stage: timeline.count(times, self.start, self.end) / seconds
            for stage, times in per_s.items()
        }
        self.adjudicated_latency, self.audited_latency = timeline.e2e_latencies(
            self.start, self.end
        )

    def cpu_ms_per_claim(self) -> dict[str, float | None]:
        """CPU per claim that went all the way through in the window: unlike rates, this
        hardly moves when someone else's load shares the machine."""
        usage = self.window.usage()
        claims = self.stages["end to end (adjudication audited)"] * (self.end - self.start)
        cores = {g: usage.groups.get(g, 0.0) for g in GROUPS}
        cores["generator"] = self.result.generator_cores
        cores["all"] = sum(cores.values())
        return {
            g: round(1000 * c * (self.end - self.start) / claims, 2) if claims else None
            for g, c in cores.items()
        }

    def summary(self) -> dict[str, Any]:
        usage = self.window.usage()
        return {
            "client": self.result.summary(),
            "cpu_ms_per_claim": self.cpu_ms_per_claim(),
            "stages_per_s": {k: round(v, 1) for k, v in self.stages.items()},
            "submit_to_adjudicated_ms": _quantiles(self.adjudicated_latency),
            "submit_to_audited_ms": _quantiles(self.audited_latency),
            "drain_after_s": round(self.drain_s, 1),
            "cpu_cores": usage.as_dict(),
            "loadavg": self.window.loadavg,
        }


def _quantiles(values: Sequence[float]) -> dict[str, float | None]:
    return {
        f"p{q * 100:g}": None if (v := quantile(values, q)) is None else round(v * 1000, 1)
        for q in (0.5, 0.99)
    }


def run_phases(
    stack: Stack, settings: Settings, services: Services, target: Target, meter: CpuMeter
) -> list[Phase]:
    shapes: list[tuple[str, Shape, float]] = [
        ("sustained", ClosedLoop(settings.concurrency), settings.duration),
        ("fixed rate", OpenLoop(settings.rate, connections=64), settings.rate_duration),
    ]
    phases: list[Phase] = []
    while shapes:
        name, shape, duration = shapes.pop(0)
        window = Window(meter)
        result: PhaseResult | WrkResult
        if isinstance(shape, ClosedLoop) and settings.sustained_load == "wrk":
            say(f"{name}: {shape}, {settings.warmup:g}s warm-up + {duration:g}s measured, wrk ...")
            result = run_closed_loop(
                WrkTarget.of(target, CLAIM_TEMPLATE),
                shape,
                warmup=settings.warmup,
                duration=duration,
                threads=settings.wrk_threads,
                observer=window,
            )
        else:
            say(f"{name}: {shape}, {settings.warmup:g}s warm-up + {duration:g}s measured ...")
            result = run_phase(
                target,
                shape,
                warmup=settings.warmup,
                duration=duration,
                generators=1,
                observer=window,
            )
        stack.check_alive()
        say(f"{name}: waiting for the pipeline to drain ...")
        phase = Phase(name, result, window)
        phase.drain_s = wait_drained(stack, services)
        phases.append(phase)
        if name == "sustained":
            # Latency at a load this machine does sustain, next to the target's rate, which
            # a machine short of capacity answers with an ever-growing queue.
            half = round(result.throughput / 2, 1)
            if 0 < half < settings.rate:
                shapes.append(
                    (HALF_CAPACITY, OpenLoop(half, connections=64), settings.rate_duration)
                )
    return phases


# --- the report ------------------------------------------------------------------------


def report(
    settings: Settings,
    commit: CommitRate,
    produce: dict[str, Any],
    quiet: CpuUsage,
    phases: list[Phase],
) -> list[Row]:
    sustained, fixed = phases[0], phases[1]
    e2e = sustained.stages["end to end (adjudication audited)"]
    rows = [
        Row(
            f"ceiling: PostgreSQL commits/s ({commit.label})",
            f"{commit.tps:,.0f} tps",
            "reference",
        ),
        Row(
            f"ceiling: Kafka produce, {produce['message_bytes']} B events in batches of "
            f"{produce['batch']} (linger {produce['linger_ms']} ms, batch {produce['batch_size']})",
            f"{produce['per_s']:,.0f} msg/s",
            "reference",
        ),
        Row(
            "before load: machine busy / other users' cores / load average (1 min)",
            f"{quiet.machine_busy_pct:.0f}% / {quiet.foreign:.2f} / {os.getloadavg()[0]:.1f}",
        ),
        Row(
            f"sustained {settings.duration:g}s: end-to-end claims/s (c={settings.concurrency})",
            f"{e2e:,.1f}",
            f">= {TARGET_E2E:,.0f}",
            verdict(e2e >= TARGET_E2E),
        ),
    ]
    for phase in phases:
        rows += _phase_rows(phase)
    fixed_p99 = fixed.result.percentile(99)
    rows.append(
        Row(
            f"fixed rate {settings.rate:g}/s: submit p99 (from scheduled send)",
            ms(fixed_p99),
            f"< {TARGET_P99 * 1000:.0f} ms",
            verdict(fixed_p99 is not None and fixed_p99 < TARGET_P99),
        )
    )
    for phase in phases[2:]:
        shape = phase.result.shape
        rate = shape.rate if isinstance(shape, OpenLoop) else 0.0
        rows.append(
            Row(
                f"{phase.name} ({rate:g}/s): submit p99 (from scheduled send)",
                ms(phase.result.percentile(99)),
                "reference",
            )
        )
    return rows


def _phase_rows(phase: Phase) -> list[Row]:
    result, usage = phase.result, phase.window.usage()
    errors = sum(result.errors.values())
    stages = " / ".join(f"{v:,.1f}" for v in phase.stages.values())
    adj, aud = _quantiles(phase.adjudicated_latency), _quantiles(phase.audited_latency)
    load = phase.window.loadavg
    per_request = result.generator_cpu_ms_per_request
    return [
        Row(
            f"{phase.name}: submit p50 / p99, accepted/s, errors",
            f"{ms(result.percentile(50))} / {ms(result.percentile(99))}, "
            f"{result.throughput:,.1f}/s, {errors}",
        ),
        Row(f"{phase.name}: per s: accepted / relayed / adjudicated / audit records / e2e", stages),
        Row(
            f"{phase.name}: submit->adjudicated p50 / p99; ->audited p50 / p99",
            f"{adj['p50']} / {adj['p99']} ms; {aud['p50']} / {aud['p99']} ms",
        ),
        Row(
            f"{phase.name}: CPU cores {' / '.join(GROUPS)}",
            " / ".join(f"{usage.groups.get(g, 0.0):.2f}" for g in GROUPS)
            + f" (+ generator {result.generator_cores:.2f})",
        ),
        Row(
            # Apart from the services': what driving the load cost this machine.
            f"{phase.name}: load generator ({result.generator}) CPU ms per response",
            "n/a" if per_request is None else f"{per_request:.3f}",
        ),
        Row(
            f"{phase.name}: CPU ms per end-to-end claim, same order, generator, all",
            " / ".join(
                "n/a" if v is None else f"{v:.1f}" for v in phase.cpu_ms_per_claim().values()
            ),
        ),
        Row(
            f"{phase.name}: machine busy, other users' cores, load average start/end",
            f"{usage.machine_busy_pct:.0f}%, {usage.foreign:.2f}, "
            f"{load[0][0]:.1f}/{load[1][0]:.1f}",
        ),
        Row(f"{phase.name}: backlog drained after the window", f"{phase.drain_s:.1f} s"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    key = ApiKey("bench", ("submitter", "reader", "auditor"))
    with Stack(NAME, keep=settings.keep) as stack:
        say("starting PostgreSQL (fsync on) and Kafka ...")
        pg = stack.start_postgres()
        kafka = stack.start_kafka()
        say(f"ceiling: PostgreSQL commit rate with pgbench ({settings.pgbench_seconds}s) ...")
        commit = measure_commit_rate(pg, stack.dir, seconds=settings.pgbench_seconds)
        say(f"ceiling: Kafka produce rate ({settings.kafka_messages} messages) ...")
        produce = measure_produce_rate(kafka.bootstrap_servers, settings)
        services = start_services(stack, settings, key)
        target = Target(
            urls=(f"{services.api_url}/v1/claims",),
            headers=(key.header, ("Content-Type", "application/json")),
            body=claim_body,
        )
        smoke_check(target)
        meter = _cpu_groups(stack, services)
        say("measuring the machine's background load with the services idle ...")
        quiet = measure_quiet(meter)
        sampler = Sampler(services.api_url, meter)
        sampler.start()
        try:
            phases = run_phases(stack, settings, services, target, meter)
        finally:
            sampler.stop()
        timeline = Timeline.read(stack, services)
    for phase in phases:
        phase.measure(timeline)
    rows = report(settings, commit, produce, quiet, phases)
    title = (
        f"claimflow pipeline benchmark: {machine_info()['cpus']} CPUs, one process per role, "
        f"PostgreSQL fsync on, DB pool {settings.pool_size}"
    )
    title = with_service_env(title, settings.service_env)
    say("")
    say(table(title, rows))
    path = write_results(
        NAME,
        settings,
        {
            "targets": {"end_to_end_per_s": TARGET_E2E, "fixed_rate_p99_ms": TARGET_P99 * 1000},
            "postgres_commit_rate": vars(commit),
            "kafka_produce_rate": produce,
            "cpu_cores_before_load": quiet.as_dict(),
            "phases": {phase.name: phase.summary() for phase in phases},
            "table": [vars(r) for r in rows],
        },
    )
    png = chart.draw(
        path.with_suffix(".png"),
        timeline,
        sampler.samples,
        [(p.name, p.start, p.end) for p in phases],
        title,
    )
    say(f"\nresults: bench/results/{path.name}, chart: bench/results/{png.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
