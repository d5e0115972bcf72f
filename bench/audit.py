"""Benchmark of the audit log: appending to the hash chain, verifying it, archiving it.

Real PostgreSQL with durable commits (fsync on), the schema migrated by the owner and used
through the restricted application role, as in production. Phases, each after a warm-up:

- append: one writer appends batches of 1, 100 and 1,000 records (lock, head, dedupe, chain,
  insert, commit: exactly the worker's transaction), records/s and batch latency;
- replicas: several writers at once, queueing on the chain lock (one chain, no gaps);
- verify: the whole chain re-walked and re-hashed (GET /v1/audit/verify's code), records/s;
- export: the whole chain written as gzip JSON Lines and verified offline, records/s;
- worker: the real worker process consuming events from Kafka into the chain, records/s.

Next to PostgreSQL's own single-row commit rate measured by pgbench on the same server.

    python -m bench.audit [--quick] [--duration S] [--writers N] [--events N] [--no-kafka]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.meters import CpuMeter, CpuUsage
from bench.pgprobe import CommitRate, measure_commit_rate
from bench.prom import histogram, scrape
from bench.report import Row, machine_info, ms, say, table, write_results
from bench.stack import Stack
from claimflow_audit.adapters import store
from claimflow_audit.adapters.db import create_engine
from claimflow_audit.domain.chain import Entry
from claimflow_audit.service_layer.archive import export_range, verify_export
from claimflow_audit.service_layer.verification import verify_chain
from claimflow_audit.settings import AuditSettings
from claimflow_devstack import processes
from claimflow_devstack.services import service
from claimflow_shared.events import Topics
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.settings import ServiceSettings

BATCH_SIZES = (1, 100, 1000)
APP_ROLE = "claimflow_audit_app"
TOPIC_PREFIX = "bench."
CHUNK = 5000
WORKER_TIMEOUT = 600.0
# Busy cores of other processes above which the figures measure a shared machine.
NOISY_CORES = 0.25


@dataclass
class Settings:
    duration: float
    warmup: float
    writers: int
    events: int
    kafka: bool
    pgbench_seconds: int
    keep: bool


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m bench.audit", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--duration", type=float, help="seconds per measured phase (10)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before each phase (2)")
    parser.add_argument("--writers", type=int, default=4, help="concurrent writers (4)")
    parser.add_argument("--events", type=int, help="events through Kafka to the worker (20000)")
    parser.add_argument("--no-kafka", action="store_true", help="skip the worker phase")
    parser.add_argument("--quick", action="store_true", help="a smoke run: short phases")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir and its logs")
    args = parser.parse_args(argv)
    if args.writers < 1:
        parser.error("--writers must be >= 1")
    return Settings(
        duration=args.duration or (2.0 if args.quick else 10.0),
        warmup=args.warmup if args.warmup is not None else (0.5 if args.quick else 2.0),
        writers=args.writers,
        events=args.events or (2000 if args.quick else 20000),
        kafka=not args.no_kafka,
        pgbench_seconds=3 if args.quick else 10,
        keep=args.keep,
    )


# --- records ---------------------------------------------------------------------------


def entries(count: int) -> list[Entry]:
    """Records shaped like the worker's: a claim event with every field set."""
    now = datetime.now(UTC)
    return [
        Entry(
            event_id=str(uuid.uuid4()),
            type="io.claimflow.claim.submitted.v1",
            event_time=now,
            source="/claimflow/intake",
            subject=str(uuid.uuid4()),
            actor="clearinghouse",
            trace_id=uuid.uuid4().hex,
            topic="claims.submitted",
            kafka_partition=0,
            kafka_offset=0,
            payload_digest=uuid.uuid4().hex * 2,
        )
        for _ in range(count)
    ]


@dataclass
class AppendResult:
    batch: int
    writers: int
    records: int
    seconds: float
    latencies: list[float] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float | None:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else None
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]

    def summary(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "writers": self.writers,
            "records": self.records,
            "seconds": round(self.seconds, 3),
            "records_per_s": round(self.per_s, 1),
            "batch_p50_ms": _ms(self.percentile(50)),
            "batch_p99_ms": _ms(self.percentile(99)),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


async def _append_for(
    engine: AsyncEngine, batch: int, seconds: float, latencies: list[float]
) -> int:
    appended = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        chunk = entries(batch)
        started = time.perf_counter()
        async with engine.begin() as conn:
            result = await store.append(conn, chunk)
        latencies.append(time.perf_counter() - started)
        appended += len(result.records)
    return appended


async def measure_append(
    engine: AsyncEngine, batch: int, writers: int, settings: Settings
) -> AppendResult:
    await asyncio.gather(*(_append_for(engine, batch, settings.warmup, []) for _ in range(writers)))
    latencies: list[float] = []
    started = time.monotonic()
    counts = await asyncio.gather(
        *(_append_for(engine, batch, settings.duration, latencies) for _ in range(writers))
    )
    return AppendResult(batch, writers, sum(counts), time.monotonic() - started, latencies)


# --- verify and export -------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    records: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "seconds": round(self.seconds, 3),
            "records_per_s": round(self.per_s, 1),
        } | self.extra


async def measure_verify(engine: AsyncEngine) -> Throughput:
    result = await verify_chain(engine, chunk_size=CHUNK)
    if not result.valid:
        raise RuntimeError(f"the benchmark's chain does not verify: {result.finding}")
    return Throughput(result.checked, result.seconds)


async def measure_export(engine: AsyncEngine, scratch: Path) -> tuple[Throughput, Throughput]:
    output = scratch / "export.jsonl.gz"
    started = time.perf_counter()
    summary = await export_range(
        engine, datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), output
    )
    exported = Throughput(
        summary.count,
        time.perf_counter() - started,
        {"bytes_per_record": round(summary.bytes / max(summary.count, 1), 1)},
    )
    started = time.perf_counter()
    check = await asyncio.to_thread(verify_export, output)
    if not check.valid:
        raise RuntimeError(f"the export does not verify: {check.as_json()}")
    return exported, Throughput(check.checked, time.perf_counter() - started)


async def in_process(app_url: str, settings: Settings, scratch: Path) -> dict[str, Any]:
    # The service's own engine factory: its connection settings are part of what is measured.
    engine = create_engine(
        AuditSettings(database_url=app_url, database_pool_size=settings.writers + 2)
    )
    try:
        phases: dict[str, Any] = {}
        for batch in BATCH_SIZES:
            say(f"append: batch {batch}, {settings.warmup:g}s warm-up + {settings.duration:g}s ...")
            phases[f"append_{batch}"] = await measure_append(engine, batch, 1, settings)
            say(f"append: {json.dumps(phases[f'append_{batch}'].summary())}")
        say(f"replicas: {settings.writers} writers, batch 100 ...")
        phases["replicas"] = await measure_append(engine, 100, settings.writers, settings)
        say(f"replicas: {json.dumps(phases['replicas'].summary())}")
        say("verify: the whole chain ...")
        phases["verify"] = await measure_verify(engine)
        say(f"verify: {json.dumps(phases['verify'].summary())}")
        say("export: the whole chain, then verify-export ...")
        phases["export"], phases["verify_export"] = await measure_export(engine, scratch)
        say(f"export: {json.dumps(phases['export'].summary())}")
    finally:
        await engine.dispose()
    return phases


# --- the worker, through Kafka ----------------------------------------------------------


def _event(topic: str, claim: str, index: int) -> bytes:
    data: dict[str, Any] = {"claim_id": claim, "principal": f"reader-{index % 7}"}
    if topic == Topics.CLAIMS_SUBMITTED:
        # A submitted claim's size: four lines of PHI and money.
        data = {
            "claim_id": claim,
            "submitted_by": "clearinghouse",
            "lines": [
                {"line_no": n, "subscriber_number": f"S{index:08d}", "provider_fees": "130.00"}
                for n in range(1, 5)
            ],
        }
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/bench",
            "type": "io.claimflow.claim.submitted.v1"
            if topic == Topics.CLAIMS_SUBMITTED
            else "io.claimflow.audit.access.v1",
            "time": datetime.now(UTC).isoformat(),
            "subject": claim,
            "data": data,
        }
    ).encode()


def produce(bootstrap: str, count: int) -> float:
    """Publish count events over two topics, three partitions each; returns seconds taken."""
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, kafka_topic_prefix=TOPIC_PREFIX)
    publisher = Publisher(settings)
    started = time.monotonic()
    try:
        for offset in range(0, count, 1000):
            messages = []
            for index in range(offset, min(count, offset + 1000)):
                topic = Topics.CLAIMS_SUBMITTED if index % 2 else Topics.AUDIT_ACCESS
                claim = str(uuid.UUID(int=index // 2))
                messages.append(
                    OutgoingMessage(settings.topic(topic), claim, _event(topic, claim, index))
                )
            publisher.publish(messages)
    finally:
        publisher.close()
    return time.monotonic() - started


async def _head(app_url: str) -> int:
    engine = create_async_engine(app_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return (await store.chain_head(conn)).seq
    finally:
        await engine.dispose()


async def _wait_for_length(app_url: str, length: int, stack: Stack) -> float:
    started = time.monotonic()
    while (await _head(app_url)) < length:
        if time.monotonic() - started > WORKER_TIMEOUT:
            raise TimeoutError(f"the worker did not reach {length} records")
        stack.check_alive()
        await asyncio.sleep(0.1)
    return time.monotonic()


def worker_phase(
    stack: Stack, settings: Settings, env: dict[str, str], app_url: str
) -> dict[str, Any]:
    kafka = stack.start_kafka()
    port = processes.free_port()
    worker_env = env | {
        "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "CLAIMFLOW_KAFKA_TOPIC_PREFIX": TOPIC_PREFIX,
        "CLAIMFLOW_WORKER_HTTP_PORT": str(port),
        "CLAIMFLOW_LOG_LEVEL": "WARNING",
        # The append path alone: the scheduled verification's full walk at start would
        # re-hash the earlier phases' records on the same two cores (verify is measured above).
        "CLAIMFLOW_AUDIT_VERIFY_INTERVAL_SECONDS": "0",
    }
    stack.spawn("audit-worker", service("audit-log").command("worker"), worker_env)
    url = f"http://{processes.LOCALHOST}:{port}"
    stack.wait_ready([f"{url}/readyz"])
    before = asyncio.run(_head(app_url))
    say(f"worker: publishing {settings.events} events to Kafka, then waiting for the chain ...")
    started = time.monotonic()
    produce_seconds = produce(kafka.bootstrap_servers, settings.events)
    finished = asyncio.run(_wait_for_length(app_url, before + settings.events, stack))
    batches = histogram(scrape(f"{url}/metrics"), "claimflow_audit_append_batch_records")
    return Throughput(
        settings.events,
        finished - started,
        {
            "produce_s": round(produce_seconds, 2),
            "mean_batch_records": None if batches.mean is None else round(batches.mean, 1),
        },
    ).summary()


# --- the report --------------------------------------------------------------------------


def report(
    commit: CommitRate, phases: dict[str, Any], worker: dict[str, Any] | None, cpu: CpuUsage
) -> list[Row]:
    rows = [Row(f"PostgreSQL commit rate ({commit.label})", f"{commit.tps:,.0f} tps", "reference")]
    for batch in BATCH_SIZES:
        result: AppendResult = phases[f"append_{batch}"]
        rows.append(
            Row(
                f"append, batch {batch:,}: records/s (1 writer)",
                f"{result.per_s:,.0f}  (batch p50 {ms(result.percentile(50))}, "
                f"p99 {ms(result.percentile(99))})",
            )
        )
    replicas: AppendResult = phases["replicas"]
    rows.append(
        Row(
            f"append, batch 100, {replicas.writers} writers on the lock: records/s",
            f"{replicas.per_s:,.0f}  (batch p99 {ms(replicas.percentile(99))})",
        )
    )
    verify: Throughput = phases["verify"]
    rows.append(
        Row(
            f"verify: records/s ({verify.records:,} records, chunks of {CHUNK:,})",
            f"{verify.per_s:,.0f}  ({verify.seconds:.2f} s)",
        )
    )
    export: Throughput = phases["export"]
    rows.append(
        Row(
            "export (gzip JSON Lines, verified while written): records/s",
            f"{export.per_s:,.0f}  ({export.extra['bytes_per_record']} bytes/record)",
        )
    )
    checked: Throughput = phases["verify_export"]
    rows.append(Row("verify-export (offline): records/s", f"{checked.per_s:,.0f}"))
    if worker is not None:
        rows.append(
            Row(
                f"worker via Kafka: records/s ({worker['records']:,} events, 3 partitions)",
                f"{worker['records_per_s']:,.0f}  (mean batch {worker['mean_batch_records']})",
            )
        )
    # Processes that exited during the run (other people's test sessions) show only as
    # busy time nobody living holds, so that counts as someone else's load too.
    others = cpu.foreign + cpu.unaccounted
    top = ", ".join(f"{n} {v:.2f}" for n, v in cpu.foreign_top.items())
    rows.append(
        Row(
            "CPU cores busy outside the benchmark (living + exited processes)",
            f"{cpu.foreign:.2f} + {cpu.unaccounted:.2f}" + (f" ({top})" if top else ""),
            f"< {NOISY_CORES:g}",
            "NOISY" if others >= NOISY_CORES else "ok",
        )
    )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    with Stack("audit", keep=settings.keep) as stack:
        say("starting PostgreSQL (fsync on) ...")
        pg = stack.start_postgres()
        say(f"measuring PostgreSQL's commit rate with pgbench ({settings.pgbench_seconds}s) ...")
        commit = measure_commit_rate(pg, stack.dir, seconds=settings.pgbench_seconds)
        owner_url = pg.create_database("audit")
        app_url = make_url(owner_url).set(username=APP_ROLE).render_as_string(False)
        env = {
            **os.environ,
            "CLAIMFLOW_DATABASE_URL": app_url,
            "CLAIMFLOW_MIGRATION_DATABASE_URL": owner_url,
        }
        say("audit-log: migrating (owner) and granting the application role ...")
        stack.run("audit-migrate", service("audit-log").migrate, env)
        meter = CpuMeter({"postgres": lambda: [pg.pid]})
        before = meter.sample()
        phases = asyncio.run(in_process(app_url, settings, stack.dir))
        worker = worker_phase(stack, settings, env, app_url) if settings.kafka else None
        if worker is not None:
            say(f"worker: {json.dumps(worker)}")
        cpu = CpuMeter.usage(before, meter.sample())
    rows = report(commit, phases, worker, cpu)
    title = f"claimflow audit-log benchmark: {machine_info()['cpus']} CPUs, fsync on"
    say("\n" + table(title, rows))
    results = {
        "postgres_commit_rate": commit.__dict__,
        "phases": {
            name: value.summary() if hasattr(value, "summary") else value
            for name, value in phases.items()
        },
        "worker": worker,
        "cpu": cpu.as_dict(),
    }
    say(f"\nresults: {write_results('audit', settings, results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
