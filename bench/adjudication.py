"""Benchmark of the adjudication service: claims/s from `claims.submitted` to committed results,
and the top-10 providers read while claims are being adjudicated.

Real PostgreSQL (durable commits), real Kafka, the API and the worker(s) as real processes. The
provider totals table is seeded with 100,000 providers. Claims have 1-4 lines, random
subscribers, plan groups and providers among those 100,000.

- phase 1: a backlog is put on `claims.submitted` before the worker starts, so the worker
  runs flat out; claims/s counts commits from the first one on;
- phase 2: a second backlog of the same size, while GET /v1/providers/top?limit=10 is read at
  a fixed rate over HTTP (timed from the scheduled send) and its SQL is run by pgbench at the
  same rate; the API's own /metrics histogram gives the handler's share.

    python -m bench.adjudication [--quick] [--claims N] [--providers N] [--read-rate R]
                                 [--workers N] [--keep]

Payments are an external system and are not answered here: the figure is adjudication alone.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bench.meters import CpuMeter, CpuUsage
from bench.pgprobe import pgbench
from bench.prom import Histogram, histogram, scrape
from bench.report import Row, say, table, verdict, write_results
from bench.stack import ApiKey, Stack
from claimflow_devstack import processes
from claimflow_devstack.postgres import PostgresServer
from claimflow_devstack.services import service
from claimflow_shared.events import ClaimLineV1, ClaimSubmittedV1, ClaimTotalsV1, Topics, new_event
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.settings import ServiceSettings

SERVICE = "adjudication"
SPEC = service("adjudication")
PREFIX = "bench."
PLANS_DIR = Path(__file__).resolve().parents[1] / "k8s" / "examples" / "benefitplans"
TARGET_CLAIMS_PER_S = 500.0
TARGET_TOP10_P99 = 0.005
CODES = ("D0120", "D0210", "D1110", "D2391", "D2740", "D4341", "D4346", "D7140", "D8080")
GROUPS = ("GRP-1000", "GRP-2001", "GRP-9000")
DRAIN_TIMEOUT = 600.0
FOREIGN_LOAD_WARNING = 0.2  # cores used by processes outside this benchmark


@dataclass
class Settings:
    claims: int
    providers: int
    subscribers: int
    read_rate: float
    workers: int
    keep: bool


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench.adjudication")
    parser.add_argument("--claims", type=int, help="claims per phase (20000; quick 3000)")
    parser.add_argument("--providers", type=int, default=100_000, help="seeded providers")
    parser.add_argument("--subscribers", type=int, default=20_000, help="distinct subscribers")
    parser.add_argument("--read-rate", type=float, default=25.0, help="top-10 reads per second")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (replicas)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a small backlog")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir and its logs")
    args, _unknown = parser.parse_known_args(argv)
    claims = args.claims or (3000 if args.quick else 20_000)
    if min(claims, args.providers, args.subscribers, args.workers) < 1 or args.read_rate <= 0:
        parser.error("counts, --workers and --read-rate must be positive")
    return Settings(
        claims, args.providers, args.subscribers, args.read_rate, args.workers, args.keep
    )


def npi(n: int) -> str:
    return f"{n:010d}"


def make_claims(settings: Settings, count: int, seed: int) -> list[OutgoingMessage]:
    rng = random.Random(seed)
    topic = PREFIX + Topics.CLAIMS_SUBMITTED
    messages = []
    for _ in range(count):
        subscriber = f"B{rng.randrange(settings.subscribers)}"
        group = rng.choice(GROUPS)
        provider = npi(rng.randrange(1, settings.providers + 1))
        lines = []
        for n in range(1, rng.randint(1, 4) + 1):
            fees = Decimal(rng.randrange(2000, 60000)) / 100
            allowed = (fees * Decimal(rng.choice(("0.6", "0.8", "1")))).quantize(Decimal("0.01"))
            coinsurance = Decimal(rng.randrange(0, 3000)) / 100
            lines.append(
                ClaimLineV1(
                    line_no=n,
                    service_date=date(2024, 1, 1) + timedelta(days=rng.randrange(365)),
                    submitted_procedure=rng.choice(CODES),
                    plan_group=group,
                    subscriber_number=subscriber,
                    provider_npi=provider,
                    provider_fees=fees,
                    allowed_fees=allowed,
                    member_coinsurance=coinsurance,
                    member_copay=Decimal("0.00"),
                    net_fee=fees + coinsurance - allowed,
                )
            )
        data = ClaimSubmittedV1(
            claim_id=uuid.uuid4(),
            submitted_at=datetime.now(UTC),
            submitted_by="bench",
            lines=lines,
            totals=ClaimTotalsV1(net_fee=sum((ln.net_fee for ln in lines), start=Decimal(0))),
        )
        event = new_event("/bench", data, subject=str(data.claim_id))
        messages.append(OutgoingMessage(topic, str(data.claim_id), event.to_json()))
    return messages


def publish(bootstrap: str, messages: Sequence[OutgoingMessage]) -> None:
    publisher = Publisher(ServiceSettings(kafka_bootstrap_servers=bootstrap, service_name="bench"))
    try:
        for start in range(0, len(messages), 2000):
            publisher.publish(messages[start : start + 2000])
    finally:
        publisher.close()


@dataclass
class Reads:
    """GET /v1/providers/top?limit=10 at a fixed rate, on a thread, until stopped."""

    url: str
    headers: dict[str, str]
    rate: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="top10-reads", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.perf_counter()
        with httpx.Client(timeout=10.0, headers=self.headers) as client:
            while not self._stop.is_set():
                # Timed from the scheduled send time: a stalled server is charged for the delay.
                scheduled = next_at
                response = client.get(self.url, params={"limit": 10})
                done = time.perf_counter()
                if response.status_code == 200 and len(response.json()["providers"]) == 10:
                    self.latencies.append(done - scheduled)
                else:
                    self.errors += 1
                next_at += interval
                pause = next_at - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                else:
                    next_at = time.perf_counter()


TOP_10 = (
    "SELECT provider_npi, net_fee_total, claim_count FROM provider_totals"
    " ORDER BY net_fee_total DESC, provider_npi ASC LIMIT 10"
)


def sql_reads(pg: PostgresServer, scratch: Path, rate: float, seconds: int) -> list[float]:
    """The API's top-10 statement from pgbench at a fixed rate (a C client: no GIL, no HTTP,
    no ORM), each latency timed from its scheduled start; the database's share of the read."""
    scratch.mkdir(parents=True, exist_ok=True)
    script = scratch / "top10.sql"
    script.write_text(TOP_10 + ";\n")
    logs = scratch / "pgbench-top10"
    logs.mkdir(parents=True, exist_ok=True)
    options = ["-c1", f"-R{rate:g}", f"-T{seconds}", "-M", "prepared"]
    pgbench(pg, SERVICE, script, [*options, "--log", f"--log-prefix={logs / 'top10'}"], seconds)
    latencies = []
    for log in logs.glob("top10*"):
        for line in log.read_text().splitlines():
            # client_id transaction_no time script_no time_epoch time_us schedule_lag; with
            # --rate, pgbench counts `time` from the scheduled start, so lag is inside it.
            fields = line.split()
            if len(fields) >= 6 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1e6)
    return latencies


def quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.2f} ms"


def rounded_ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


def _count(stack: Stack) -> int:
    assert stack.postgres is not None
    return int(stack.postgres.sql("SELECT count(*) FROM claims", SERVICE) or 0)


@dataclass
class Drain:
    claims: int
    seconds: float
    usage: CpuUsage

    @property
    def per_s(self) -> float:
        return self.claims / max(self.seconds, 1e-9)


def drain(stack: Stack, meter: CpuMeter, until: int) -> Drain:
    """Wait until `until` claims are committed; the rate from the first new commit on."""
    start_count = _count(stack)
    first_at: float | None = None
    first_count = start_count
    cpu_first = meter.sample()
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        stack.check_alive()
        count = _count(stack)
        now = time.monotonic()
        if first_at is None and count > start_count:
            first_at, first_count, cpu_first = now, count, meter.sample()
        if count >= until:
            break
        if now > deadline:
            raise TimeoutError(f"only {count} of {until} claims after {DRAIN_TIMEOUT:.0f}s")
        # Each count is a psql process: polled gently so it costs the machine little.
        time.sleep(0.25)
    assert first_at is not None
    return Drain(until - first_count, now - first_at, CpuMeter.usage(cpu_first, meter.sample()))


def server_latency(api_url: str, before: str) -> Histogram:
    after = scrape(f"{api_url}/metrics")
    wanted = {"method": "GET", "route": "/v1/providers/top"}
    name = "claimflow_http_request_duration_seconds"
    return histogram(after, name, wanted).minus(histogram(before, name, wanted))


def run(settings: Settings) -> int:
    key = ApiKey("bench", ("payer-reader",))
    with Stack(SERVICE, keep=settings.keep) as stack:
        say("starting PostgreSQL and Kafka ...")
        pg = stack.start_postgres()
        kafka = stack.start_kafka()
        database_url = pg.create_database(SERVICE)
        env = {
            **os.environ,
            "CLAIMFLOW_DATABASE_URL": database_url,
            "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "CLAIMFLOW_KAFKA_TOPIC_PREFIX": PREFIX,
            "CLAIMFLOW_API_KEYS": key.config(),
            "CLAIMFLOW_HTTP_HOST": processes.LOCALHOST,
            "CLAIMFLOW_LOG_LEVEL": "WARNING",
            "CLAIMFLOW_PLANS_DIR": str(PLANS_DIR),
            # The benchmark measures the read, not the rate limit.
            "CLAIMFLOW_TOP_PROVIDERS_RATE_LIMIT": "100000/second",
        }
        stack.run("migrate", SPEC.migrate, env)
        say(f"seeding {settings.providers:,} providers ...")
        pg.sql(
            "INSERT INTO provider_totals (provider_npi, net_fee_total, claim_count)"
            " SELECT lpad(n::text, 10, '0'), round((random() * 100000)::numeric, 2),"
            f" 1 + (random() * 20)::int FROM generate_series(1, {settings.providers}) AS n",
            SERVICE,
        )
        pg.sql("VACUUM ANALYZE provider_totals", SERVICE)
        seeded_sum = pg.sql("SELECT sum(net_fee_total) FROM provider_totals", SERVICE)
        ensure_topics(
            ServiceSettings(kafka_bootstrap_servers=kafka.bootstrap_servers, service_name="bench"),
            [PREFIX + Topics.CLAIMS_SUBMITTED],
        )
        say(f"phase 1: {settings.claims:,} claims waiting on {PREFIX}{Topics.CLAIMS_SUBMITTED} ...")
        publish(kafka.bootstrap_servers, make_claims(settings, settings.claims, seed=1))
        second_wave = make_claims(settings, settings.claims, seed=2)

        api_port = processes.free_port()
        api = stack.spawn(
            "adjudication-api",
            SPEC.command("api"),
            {**env, "CLAIMFLOW_HTTP_PORT": str(api_port)},
        )
        api_url = f"http://{processes.LOCALHOST}:{api_port}"
        stack.wait_ready([f"{api_url}/readyz"])
        top_url = f"{api_url}/v1/providers/top"
        headers = dict([key.header])

        say("top-10 with the worker idle ...")
        idle = Reads(top_url, headers, settings.read_rate)
        idle.start()
        idle_sql = sql_reads(pg, stack.dir / "idle", settings.read_rate, 8)
        idle.stop()

        say(f"phase 1: {settings.workers} worker(s) adjudicating the backlog, no reads ...")
        workers = [
            stack.spawn(
                f"adjudication-worker-{n}",
                SPEC.command("worker"),
                {**env, "CLAIMFLOW_WORKER_HTTP_PORT": str(processes.free_port())},
            )
            for n in range(settings.workers)
        ]
        meter = CpuMeter(
            {
                "worker": lambda: [w.pid for w in workers],
                "api": lambda: [api.pid],
                "postgres": lambda: [pg.pid],
                "kafka": lambda: [kafka.pid],
            }
        )
        flat_out = drain(stack, meter, settings.claims)
        say(f"phase 1: {flat_out.per_s:,.0f} claims/s")

        say("phase 2: the same number again while the top-10 is read ...")
        # Workers paused while the backlog is written, so the writing is not measured.
        for w in workers:
            os.kill(w.pid, signal.SIGSTOP)
        publish(kafka.bootstrap_servers, second_wave)
        busy = Reads(top_url, headers, settings.read_rate)
        metrics_before = scrape(f"{api_url}/metrics")
        # pgbench runs for most of the drain, at the rate phase 1 suggests.
        seconds = max(3, int(0.8 * settings.claims / max(flat_out.per_s, 1.0)))
        sql_box: list[list[float]] = []
        sql_thread = threading.Thread(
            target=lambda: sql_box.append(sql_reads(pg, stack.dir, settings.read_rate, seconds)),
            daemon=True,
        )
        for w in workers:
            os.kill(w.pid, signal.SIGCONT)
        busy.start()
        sql_thread.start()
        with_reads = drain(stack, meter, 2 * settings.claims)
        busy.stop()
        sql_thread.join(seconds + 90)
        server = server_latency(api_url, metrics_before)
        sql_latencies = sql_box[0] if sql_box else []

        # Exactness, as a check on the run: the totals grew by exactly the standing claims.
        drift = pg.sql(
            "SELECT (SELECT sum(net_fee_total) FROM provider_totals) - "
            f"{seeded_sum} - (SELECT coalesce(sum(net_fee), 0) FROM claims "
            "WHERE status IN ('adjudicated', 'paid'))",
            SERVICE,
        )
        standing = pg.sql("SELECT count(*) FROM provider_totals", SERVICE)

    p50, p99 = quantile(busy.latencies, 0.5), quantile(busy.latencies, 0.99)
    sql_p50, sql_p99 = quantile(sql_latencies, 0.5), quantile(sql_latencies, 0.99)
    server_p50, server_p99 = server.quantile(0.5), server.quantile(0.99)
    idle_p50, idle_p99 = quantile(idle.latencies, 0.5), quantile(idle.latencies, 0.99)
    rows = [
        Row(
            "claims/s, backlog, no reads",
            f"{flat_out.per_s:,.0f}",
            f">= {TARGET_CLAIMS_PER_S:.0f}",
            verdict(flat_out.per_s >= TARGET_CLAIMS_PER_S),
        ),
        Row("claims/s, backlog, while reading", f"{with_reads.per_s:,.0f}"),
        Row(
            "top-10 p50 / p99 SQL (pgbench, prepared)",
            f"{ms(sql_p50)} / {ms(sql_p99)}",
            f"p99 < {TARGET_TOP10_P99 * 1000:.0f} ms",
            verdict(sql_p99 is not None and sql_p99 < TARGET_TOP10_P99),
        ),
        Row(
            "top-10 p50 / p99 API handler (/metrics buckets)",
            f"{ms(server_p50)} / {ms(server_p99)}",
        ),
        Row("top-10 p50 / p99 HTTP client, end to end", f"{ms(p50)} / {ms(p99)}"),
        Row(
            "top-10 p50 / p99 SQL / HTTP client, worker idle",
            f"{ms(quantile(idle_sql, 0.5))} / {ms(quantile(idle_sql, 0.99))}; "
            f"{ms(idle_p50)} / {ms(idle_p99)}",
        ),
        Row(
            "top-10 HTTP reads (errors) / SQL reads",
            f"{len(busy.latencies)} ({busy.errors}) / {len(sql_latencies)}",
        ),
        Row("providers in the ranking", f"{standing}"),
        Row("provider totals drift", f"{drift}", "0.00", verdict(Decimal(drift) == 0)),
    ]
    for label, phase in (("no reads", flat_out), ("reading", with_reads)):
        cores = ", ".join(f"{name} {value:.2f}" for name, value in phase.usage.groups.items())
        rows.append(Row(f"cpu cores, {label}", f"{cores}; busy {phase.usage.busy:.2f}"))
        rows.append(Row(f"cpu cores not ours, {label}", f"{phase.usage.foreign:.2f}"))
    title = (
        f"adjudication: {settings.claims:,} claims per phase, {settings.providers:,} providers, "
        f"{settings.workers} worker(s)"
    )
    say(table(title, rows))
    foreign = max(flat_out.usage.foreign, with_reads.usage.foreign)
    if foreign > FOREIGN_LOAD_WARNING:
        say(
            f"WARNING: other processes used {foreign:.2f} cores during the run; on a shared "
            "2-core machine these figures measure the contention as much as the service."
        )
    results: dict[str, Any] = {
        "claims_per_s": round(flat_out.per_s, 1),
        "claims_per_s_while_reading": round(with_reads.per_s, 1),
        "top10_while_adjudicating_ms": {
            "sql": {
                "p50": rounded_ms(sql_p50),
                "p99": rounded_ms(sql_p99),
                "n": len(sql_latencies),
            },
            "api_handler": {"p50": rounded_ms(server_p50), "p99": rounded_ms(server_p99)},
            "http_client": {
                "p50": rounded_ms(p50),
                "p99": rounded_ms(p99),
                "mean": rounded_ms(statistics.fmean(busy.latencies)) if busy.latencies else None,
                "n": len(busy.latencies),
                "errors": busy.errors,
            },
        },
        "top10_idle_ms": {
            "sql": {
                "p50": rounded_ms(quantile(idle_sql, 0.5)),
                "p99": rounded_ms(quantile(idle_sql, 0.99)),
            },
            "http_client": {"p50": rounded_ms(idle_p50), "p99": rounded_ms(idle_p99)},
        },
        "provider_totals_drift": drift,
        "cpu_cores": {"no_reads": flat_out.usage.as_dict(), "reading": with_reads.usage.as_dict()},
        "foreign_load_cores": round(max(flat_out.usage.foreign, with_reads.usage.foreign), 3),
    }
    say(f"results: {write_results(SERVICE, settings, results)}")
    ok = (
        flat_out.per_s >= TARGET_CLAIMS_PER_S
        and sql_p99 is not None
        and sql_p99 < TARGET_TOP10_P99
        and Decimal(drift) == 0
    )
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
