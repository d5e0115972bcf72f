"""Benchmark of the intake service: POST /v1/claims on this machine, end to end.

Real PostgreSQL (durable commits), real Kafka, the API and worker as real processes, and
the load generator on the same machine. Two phases after a warm-up each:

- sustained: closed loop at fixed concurrency, accepted claims per second and latency, the
  load from wrk (bench/wrk.py), which costs the machine far less CPU per request than Python;
- fixed rate: open loop at a fixed arrival rate, latency from the scheduled send time, from
  the Python generator (bench/load.py): wrk cannot send on a schedule;

each followed by the outbox drain (every accepted claim reaches Kafka); then the relay's
capacity, from a backlog built while the worker is paused. All next to the machine's own
commit rate, measured by pgbench on the same server: single-row INSERTs, and with the
pg_notify that the outbox trigger adds to every claim's transaction.

The load generator's own CPU is reported apart from the services', per request it sent.

    python -m bench.intake [--quick] [--duration S] [--concurrency N] [--rate R]
                           [--api-processes N] [--generators N] [--sustained-load {wrk,python}]
                           [--wrk-threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.load import ClosedLoop, OpenLoop, PhaseResult, Shape, Target, run_phase
from bench.meters import CpuMeter, CpuSample, CpuUsage, measure_quiet
from bench.pgprobe import CommitRate, drain_outbox, measure_commit_rate, sessions_opened
from bench.prom import Histogram, counter_total, histogram, scrape
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
from claimflow_devstack.services import service

TARGET_THROUGHPUT = 1000.0  # claims/s sustained
TARGET_P99 = 0.050  # seconds, at the fixed rate
SERVICE = "intake"
ROUTE = {"service": SERVICE, "method": "POST", "route": "/v1/claims"}

# A claim like examples/claim_1234.csv: four lines, money as strings with "$" and a trailing
# space, and both date formats, so the benchmark pays for the parsing real files need.
_LINE = {
    "plan_group": "GRP-1000",
    "provider_npi": "1497775530",
    "subscriber_number": "SUB-@SEQ@",
}
_CLAIM = {
    "external_id": "bench-@SEQ@",
    "lines": [
        {
            **_LINE,
            "service_date": "3/28/18 0:00",
            "submitted_procedure": "D0180",
            "provider_fees": "$100.00 ",
            "allowed_fees": "$100.00 ",
            "member_coinsurance": "$0.00 ",
            "member_copay": "$0.00 ",
        },
        {
            **_LINE,
            "service_date": "2018-03-28",
            "submitted_procedure": "D0210",
            "provider_fees": "$108.00 ",
            "allowed_fees": "$108.00 ",
            "member_coinsurance": "$0.00 ",
            "member_copay": "$0.00 ",
        },
        {
            **_LINE,
            "service_date": "3/28/18 0:00",
            "submitted_procedure": "D4346",
            "provider_fees": "$130.00 ",
            "allowed_fees": "$65.00 ",
            "member_coinsurance": "$16.25 ",
            "member_copay": "$0.00 ",
        },
        {
            **_LINE,
            "service_date": "2018-03-28",
            "submitted_procedure": "D4211",
            "quadrant": "UR",
            "provider_fees": "$178.00 ",
            "allowed_fees": "$178.00 ",
            "member_coinsurance": "$35.60 ",
            "member_copay": "$0.00 ",
        },
    ],
}
# wrk fills in the number itself (bench/wrk_post.lua), from this same template.
CLAIM_TEMPLATE = json.dumps(_CLAIM, separators=(",", ":")).encode()


def claim_body(seq: int) -> bytes:
    # A unique subscriber and external id per request keep every claim distinct.
    return CLAIM_TEMPLATE.replace(b"@SEQ@", str(seq).encode())


@dataclass
class Settings:
    duration: float
    warmup: float
    concurrency: int
    rate: float
    api_processes: int
    generators: int
    pool_size: int
    pgbench_seconds: int
    keep: bool
    sustained_load: str = "wrk"
    wrk_threads: int = 1
    service_env: dict[str, str] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--duration", type=float, help="seconds per measured phase (30)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before each phase (5)")
    parser.add_argument("--concurrency", type=int, default=32, help="sustained phase (32)")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="fixed-rate phase, claims/s (200)"
    )
    parser.add_argument(
        "--api-processes", type=int, default=1, help="API replicas, one port each (1)"
    )
    parser.add_argument(
        "--generators", type=int, default=1, help="Python load generator processes (1)"
    )
    parser.add_argument(
        "--sustained-load",
        choices=("wrk", "python"),
        default="wrk",
        help="the closed-loop phases' load generator (wrk); the fixed rate is always Python's",
    )
    parser.add_argument(
        "--wrk-threads", type=int, help="wrk threads, a multiple of --api-processes (that)"
    )
    parser.add_argument("--pool-size", type=int, default=20, help="DB pool per API process (20)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the service processes, to compare settings (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: short phases")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir and its logs")
    args = parser.parse_args(argv)
    if min(args.concurrency, args.api_processes, args.generators, args.pool_size) < 1:
        parser.error("--concurrency, --api-processes, --generators and --pool-size must be >= 1")
    if args.rate <= 0:
        parser.error("--rate must be positive")
    if any("=" not in pair for pair in args.env):
        parser.error("--env takes NAME=VALUE")
    duration = args.duration or (3.0 if args.quick else 30.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 5.0)
    wrk_threads = args.wrk_threads or args.api_processes
    if args.sustained_load == "wrk":
        if duration != int(duration) or warmup != int(warmup):
            parser.error("wrk runs whole seconds: --duration and --warmup must be integers")
        if wrk_threads % args.api_processes or args.concurrency % wrk_threads:
            parser.error(
                "--wrk-threads must be a multiple of --api-processes and divide --concurrency"
            )
    return Settings(
        duration=duration,
        warmup=warmup,
        concurrency=args.concurrency,
        rate=args.rate,
        api_processes=args.api_processes,
        generators=args.generators,
        pool_size=args.pool_size,
        pgbench_seconds=3 if args.quick else 10,
        keep=args.keep,
        sustained_load=args.sustained_load,
        wrk_threads=wrk_threads,
        service_env=dict(pair.split("=", 1) for pair in args.env),
    )


@dataclass
class Services:
    api: list[processes.ManagedProcess]
    api_urls: list[str]
    worker: processes.ManagedProcess
    worker_url: str


@dataclass
class Window:
    """What the servers did during one measured window: CPU per process group and the
    intake metrics (server-side latency, outbox relay)."""

    meter: CpuMeter
    services: Services
    db_sessions: Callable[[], int]
    cpu: list[CpuSample] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)
    api_metrics: list[list[str]] = field(default_factory=list)
    worker_metrics: list[str] = field(default_factory=list)

    def _sample(self) -> None:
        self.cpu.append(self.meter.sample())
        self.api_metrics.append([scrape(f"{u}/metrics") for u in self.services.api_urls])
        self.worker_metrics.append(scrape(f"{self.services.worker_url}/metrics"))
        self.sessions.append(self.db_sessions())

    def window_start(self) -> None:
        self._sample()

    def window_end(self) -> None:
        self._sample()

    def server_latency(self) -> Histogram:
        before, after = (
            Histogram.combine(
                histogram(t, "claimflow_http_request_duration_seconds", ROUTE) for t in texts
            )
            for texts in self.api_metrics
        )
        return after.minus(before)

    def relayed_per_s(self) -> float:
        first, second = (
            counter_total(t, "claimflow_outbox_published", {"service": SERVICE})
            for t in self.worker_metrics
        )
        return (second - first) / max(self.cpu[1].at - self.cpu[0].at, 1e-9)

    def usage(self) -> CpuUsage:
        return CpuMeter.usage(self.cpu[0], self.cpu[1])

    def sessions_opened(self) -> int:
        return self.sessions[1] - self.sessions[0]


def start_services(stack: Stack, settings: Settings, api_key: ApiKey) -> Services:
    assert stack.postgres is not None
    assert stack.kafka is not None
    database_url = stack.postgres.create_database(SERVICE)
    env = {
        **os.environ,
        "CLAIMFLOW_DATABASE_URL": database_url,
        "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS": stack.kafka.bootstrap_servers,
        "CLAIMFLOW_API_KEYS": api_key.config(),
        "CLAIMFLOW_HTTP_HOST": processes.LOCALHOST,
        "CLAIMFLOW_LOG_LEVEL": "WARNING",
        "CLAIMFLOW_DATABASE_POOL_SIZE": str(settings.pool_size),
        # The benchmark is one principal's load: it measures intake, not the rate limit.
        "CLAIMFLOW_SUBMISSION_RATE_LIMIT": "1000000/second",
        "CLAIMFLOW_IMPORT_RATE_LIMIT": "1000000/second",
        **settings.service_env,
    }
    spec = service("intake")
    say("intake: migrating ...")
    stack.run("intake-migrate", spec.migrate, env)
    worker_port = processes.free_port()
    env["CLAIMFLOW_WORKER_HTTP_PORT"] = str(worker_port)
    api, urls = [], []
    for index in range(settings.api_processes):
        port = processes.free_port()
        proc = stack.spawn(
            f"intake-api-{index}",
            spec.command("api"),
            {**env, "CLAIMFLOW_HTTP_PORT": str(port)},
        )
        api.append(proc)
        urls.append(f"http://{processes.LOCALHOST}:{port}")
    worker = stack.spawn("intake-worker", spec.command("worker"), env)
    worker_url = f"http://{processes.LOCALHOST}:{worker_port}"
    say(f"intake: waiting for {settings.api_processes} API process(es) and the worker ...")
    stack.wait_ready([f"{u}/readyz" for u in [*urls, worker_url]])
    return Services(api, urls, worker, worker_url)


def claims_target(services: Services, api_key: ApiKey) -> Target:
    """POST /v1/claims of the benchmark's claim to every API process, with the key."""
    return Target(
        urls=tuple(f"{u}/v1/claims" for u in services.api_urls),
        headers=(api_key.header, ("Content-Type", "application/json")),
        body=claim_body,
    )


def cpu_meter(stack: Stack, services: Services) -> CpuMeter:
    """CPU of the intake stack's process groups: API processes, worker, PostgreSQL, Kafka."""
    pg, kafka = stack.postgres, stack.kafka
    assert pg is not None
    assert kafka is not None
    return CpuMeter(
        {
            "api": lambda: [p.pid for p in services.api],
            "worker": lambda: [services.worker.pid],
            "postgres": lambda: [pg.pid],
            "kafka": lambda: [kafka.pid],
        }
    )


def smoke_check(target: Target) -> None:
    """One claim before the load, so a rejected payload fails loudly instead of as errors."""
    response = httpx.post(
        target.urls[0], content=claim_body(-1), headers=dict(target.headers), timeout=30.0
    )
    if response.status_code != target.ok_status:
        raise RuntimeError(
            f"intake answered HTTP {response.status_code} to the benchmark claim: "
            f"{response.text[:1000]}"
        )


GROUPS = ("api", "worker", "postgres", "kafka", "generator")


@dataclass
class Phase:
    result: PhaseResult | WrkResult
    server: Histogram  # POST /v1/claims as the API processes timed it
    cpu: CpuUsage  # the generator's own figure is in result: it is measured where it runs
    relayed_per_s: float
    drain: dict[str, Any]
    db_sessions_opened: int

    def cores(self, group: str) -> float:
        if group == "generator":
            return self.result.generator_cores
        return self.cpu.groups.get(group, 0.0)

    def cpu_ms_per_claim(self, group: str) -> float | None:
        # Per claim the API handled in the window: an overloaded open loop completes its
        # window's claims only later, so the client's count would mislead.
        if self.server.count <= 0:
            return None
        return 1000 * self.cores(group) * self.result.duration / self.server.count

    def summary(self) -> dict[str, Any]:
        return {
            "client": self.result.summary(),
            "server_post_claims": {
                "requests": int(self.server.count),
                "mean_ms": _ms(self.server.mean),
                "p50_ms": _ms(self.server.quantile(0.5)),
                "p99_ms": _ms(self.server.quantile(0.99)),
                "buckets": [[le, n] for le, n in self.server.buckets],
            },
            "cpu_cores": self.cpu.as_dict() | {"generator": round(self.result.generator_cores, 3)},
            "cpu_ms_per_claim_handled": {
                g: None if (v := self.cpu_ms_per_claim(g)) is None else round(v, 2) for g in GROUPS
            },
            "outbox_relayed_per_s_during_load": round(self.relayed_per_s, 1),
            "db_sessions_opened": self.db_sessions_opened,
            "outbox_drain_after_load": self.drain,
        }


def run_load(
    stack: Stack, settings: Settings, services: Services, target: Target, meter: CpuMeter
) -> dict[str, Phase]:
    pg = stack.postgres
    assert pg is not None
    dsn = pg.dsn(SERVICE)
    shapes: dict[str, Shape] = {
        "sustained": ClosedLoop(settings.concurrency),
        "fixed_rate": OpenLoop(settings.rate, connections=max(64, settings.concurrency)),
    }
    phases: dict[str, Phase] = {}
    for name, shape in shapes.items():
        window = Window(meter, services, lambda: sessions_opened(pg, SERVICE))
        result: PhaseResult | WrkResult
        if isinstance(shape, ClosedLoop) and settings.sustained_load == "wrk":
            say(
                f"{name}: {shape}, {settings.warmup:g}s warm-up + {settings.duration:g}s "
                f"measured, wrk with {settings.wrk_threads} thread(s) ..."
            )
            result = run_closed_loop(
                WrkTarget.of(target, CLAIM_TEMPLATE),
                shape,
                warmup=settings.warmup,
                duration=settings.duration,
                threads=settings.wrk_threads,
                observer=window,
            )
        else:
            say(
                f"{name}: {shape}, {settings.warmup:g}s warm-up + {settings.duration:g}s "
                f"measured, {settings.generators} Python generator process(es) ..."
            )
            result = run_phase(
                target,
                shape,
                warmup=settings.warmup,
                duration=settings.duration,
                generators=settings.generators,
                observer=window,
            )
        stack.check_alive()
        say(f"{name}: draining the outbox ...")
        drain = drain_outbox(dsn)
        phases[name] = Phase(
            result,
            window.server_latency(),
            window.usage(),
            window.relayed_per_s(),
            drain,
            window.sessions_opened(),
        )
        say(f"{name}: {json.dumps(result.summary())}")
    return phases


def relay_capacity(
    stack: Stack, settings: Settings, services: Services, target: Target
) -> dict[str, Any]:
    """How fast the relay empties a backlog, which the phases above cannot tell while it
    keeps up: the worker is paused (SIGSTOP) while claims pile up, then resumed."""
    assert stack.postgres is not None
    # Whole seconds, which is all wrk counts.
    seconds = float(max(3, round(settings.duration / 3)))
    say(f"relay capacity: worker paused, {seconds:g}s of load, then draining ...")
    os.kill(services.worker.pid, signal.SIGSTOP)
    try:
        load: PhaseResult | WrkResult
        if settings.sustained_load == "wrk":
            load = run_closed_loop(
                WrkTarget.of(target, CLAIM_TEMPLATE),
                ClosedLoop(settings.concurrency),
                warmup=0,
                duration=seconds,
                threads=settings.wrk_threads,
            )
        else:
            load = run_phase(
                target,
                ClosedLoop(settings.concurrency),
                warmup=0.0,
                duration=seconds,
                generators=settings.generators,
            )
    finally:
        os.kill(services.worker.pid, signal.SIGCONT)
    drain = drain_outbox(stack.postgres.dsn(SERVICE))
    stack.check_alive()
    return drain | {"load_s": seconds, "accepted_per_s_while_paused": round(load.throughput, 1)}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def report(
    settings: Settings,
    commits: list[CommitRate],
    quiet: CpuUsage,
    phases: dict[str, Phase],
    relay: dict[str, Any],
) -> list[Row]:
    sustained, fixed = phases["sustained"].result, phases["fixed_rate"].result
    assert isinstance(fixed, PhaseResult), "the open loop is always the Python generator's"
    rows = [
        Row(
            f"PostgreSQL commits/s ({commit.label})",
            f"{commit.tps:,.0f} tps"
            + (f", {commit.latency_ms:.1f} ms avg" if commit.latency_ms is not None else ""),
            "reference",
        )
        for commit in commits
    ]
    rows += [
        Row("before load (services idle): machine busy", f"{quiet.machine_busy_pct:.0f}%"),
        _foreign_row("before load: CPU cores of processes not ours", quiet),
        Row(
            f"sustained: accepted claims/s (closed loop, c={settings.concurrency}, "
            f"{sustained.generator})",
            f"{sustained.throughput:,.1f}",
            f">= {TARGET_THROUGHPUT:,.0f}",
            verdict(sustained.throughput >= TARGET_THROUGHPUT),
        ),
        Row(
            "sustained: latency p50 / p90 / p99",
            " / ".join(ms(sustained.percentile(p)) for p in (50, 90, 99)),
        ),
        Row("sustained: errors (non-202)", _errors(sustained), "0", verdict(not sustained.errors)),
    ]
    rows += _server_rows("sustained", phases["sustained"])
    fixed_p99 = fixed.percentile(99)
    rows += [
        Row(
            # Every request due in the window counts, however late it completed: whether the
            # service kept up shows in the latency, not here.
            f"fixed rate: sent on schedule / accepted (open loop, {settings.rate:g}/s)",
            f"{fixed.sent:,} / {fixed.ok:,} (max send lag {ms(fixed.max_send_lag)})",
            f"{settings.rate * settings.duration:,.0f} due",
        ),
        Row(
            "fixed rate: latency p50 / p99 (from scheduled send)",
            f"{ms(fixed.percentile(50))} / {ms(fixed_p99)}",
            f"p99 < {TARGET_P99 * 1000:.0f} ms",
            verdict(fixed_p99 is not None and fixed_p99 < TARGET_P99),
        ),
        Row("fixed rate: errors (non-202)", _errors(fixed), "0", verdict(not fixed.errors)),
    ]
    rows += _server_rows("fixed rate", phases["fixed_rate"])
    rows.append(
        Row(
            "relay capacity: backlog built with the worker paused, drained (to keep up at target)",
            f"{relay['backlog_rows']} rows in {relay['drain_s']:.2f} s"
            + (f" = {relay['rows_per_s']:,.0f} rows/s" if relay["rows_per_s"] else ""),
            f">= {TARGET_THROUGHPUT:,.0f} rows/s",
            verdict((relay["rows_per_s"] or 0) >= TARGET_THROUGHPUT),
        )
    )
    return rows


def _errors(result: PhaseResult | WrkResult) -> str:
    if not result.errors:
        return "0"
    detail = ", ".join(f"{kind}: {n}" for kind, n in result.errors.most_common())
    return f"{sum(result.errors.values())} ({detail})"


NOISY_CORES = 0.1


def _foreign_row(metric: str, cpu: CpuUsage) -> Row:
    measured = f"{cpu.foreign:.2f}"
    if cpu.foreign >= NOISY_CORES:
        measured += " (" + ", ".join(f"{n} {v:.2f}" for n, v in cpu.foreign_top.items()) + ")"
    # Not a target of the service: a warning that these figures include someone else's load.
    return Row(
        metric, measured, f"< {NOISY_CORES:g}", "ok" if cpu.foreign < NOISY_CORES else "NOISY"
    )


def _server_rows(label: str, phase: Phase) -> list[Row]:
    server, cpu, drain = phase.server, phase.cpu, phase.drain
    # No rate here: a backlog of a few rows measures the relay's wake-up, not its speed.
    drained = f"{drain['backlog_rows']} rows in {drain['drain_s']:.2f} s"
    per_claim = [phase.cpu_ms_per_claim(g) for g in GROUPS]
    per_request = phase.result.generator_cpu_ms_per_request
    return [
        Row(
            f"{label}: server-side POST mean / p50 / p99 (histogram)",
            " / ".join(ms(v) for v in (server.mean, server.quantile(0.5), server.quantile(0.99))),
        ),
        Row(
            f"{label}: CPU cores {' / '.join(GROUPS)}",
            " / ".join(f"{phase.cores(g):.2f}" for g in GROUPS),
        ),
        Row(
            f"{label}: CPU ms per claim the API handled, same order",
            " / ".join("n/a" if v is None else f"{v:.1f}" for v in per_claim),
        ),
        Row(
            # Apart from the services': what driving the load cost this machine.
            f"{label}: load generator ({phase.result.generator}) CPU ms per response / cores",
            ("n/a" if per_request is None else f"{per_request:.3f}")
            + f" / {phase.result.generator_cores:.2f}",
        ),
        Row(
            f"{label}: machine busy / iowait / kernel+exited (cores)",
            f"{cpu.machine_busy_pct:.0f}% / {cpu.machine_iowait_pct:.0f}% / {cpu.unaccounted:.2f}",
        ),
        _foreign_row(f"{label}: CPU cores of processes not ours", cpu),
        Row(f"{label}: DB connections opened during the window", f"{phase.db_sessions_opened:,}"),
        Row(f"{label}: outbox relayed during load", f"{phase.relayed_per_s:,.1f} rows/s"),
        Row(f"{label}: outbox drained after load", drained),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    api_key = ApiKey("bench", ("submitter", "reader"))
    with Stack(SERVICE, keep=settings.keep) as stack:
        say("starting PostgreSQL (fsync on) and Kafka ...")
        pg = stack.start_postgres()
        stack.start_kafka()
        say(f"measuring PostgreSQL's commit rate with pgbench ({settings.pgbench_seconds}s) ...")
        commits = [measure_commit_rate(pg, stack.dir, seconds=settings.pgbench_seconds)]
        # The intake outbox's NOTIFY trigger, at pgbench's and at our own concurrency.
        commits += [
            measure_commit_rate(
                pg, stack.dir, seconds=settings.pgbench_seconds, clients=clients, notify=True
            )
            for clients in sorted({8, settings.concurrency})
        ]
        services = start_services(stack, settings, api_key)
        target = claims_target(services, api_key)
        smoke_check(target)
        meter = cpu_meter(stack, services)
        say("measuring the machine's background load with the services idle ...")
        quiet = measure_quiet(meter)
        phases = run_load(stack, settings, services, target, meter)
        relay = relay_capacity(stack, settings, services, target)
    rows = report(settings, commits, quiet, phases, relay)
    sustained_load = (
        f"wrk {settings.wrk_threads} thread(s)"
        if settings.sustained_load == "wrk"
        else f"{settings.generators} Python generator(s)"
    )
    title = (
        f"claimflow intake benchmark: {machine_info()['cpus']} CPUs, "
        f"{settings.api_processes} API process(es), closed loop by {sustained_load}, "
        f"fixed rate by {settings.generators} Python generator(s), "
        f"DB pool {settings.pool_size}, PostgreSQL fsync on, {settings.duration:g}s per phase"
    )
    title = with_service_env(title, settings.service_env)
    say("")
    say(table(title, rows))
    path = write_results(
        SERVICE,
        settings,
        {
            "targets": {
                "accepted_per_s": TARGET_THROUGHPUT,
                "fixed_rate_p99_ms": TARGET_P99 * 1000,
            },
            "postgres_commit_rate": [vars(c) for c in commits],
            "cpu_cores_before_load": quiet.as_dict(),
            "phases": {name: phase.summary() for name, phase in phases.items()},
            "relay_capacity": relay,
            "table": [vars(r) for r in rows],
        },
    )
    say(f"\nresults: bench/results/{path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
