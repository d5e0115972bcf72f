"""Scale curve of intake: submit latency against the claims already stored.

intake's API and worker over their own PostgreSQL (fsync on) and Kafka, as bench.intake runs
them. The database starts empty; before each step claims are bulk-loaded with COPY straight
into `claims` and `claim_lines` (never through the API: ten million claims through it would
take hours), history-shaped: one to four lines, created over the past two years, already
paid, in the benchmark principal's organisation. At each step, after a VACUUM (ANALYZE) and
a CHECKPOINT (so that neither the planner's view, the tables' upkeep nor the load's dirty
pages differ between steps):

- fixed rate: an open loop of 4-line claims at `--rate` (Python generator), latency from each
  request's scheduled send time, and the API's own timing of POST /v1/claims;
- sustained: a closed loop by wrk, accepted claims per second.

The figure of the target is the fixed rate's p99 at the last step against the first (within
20 %). It writes bench/results/scale-<UTC time>.json and a .png of latency against stored
claims.

    python -m bench.scale [--claims 10000000] [--steps 4] [--rate 100] [--duration 20] [--quick]

The top-10 providers read with 1,000,000 providers under write load is bench.adjudication's
(`--providers 1000000`).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import matplotlib as mpl

from bench import intake
from bench.load import ClosedLoop, OpenLoop, Target, run_phase
from bench.meters import CpuMeter
from bench.pgprobe import drain_outbox
from bench.report import Row, machine_info, ms, say, table, verdict, write_results
from bench.stack import ApiKey, Stack
from bench.wrk import WrkTarget, run_closed_loop
from claimflow_intake.adapters.repository import STATUS_RANK

mpl.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt

SERVICE = intake.SERVICE
# The fixed rate's p99 at the most claims stored may be this much above the empty database's.
TARGET_GROWTH = 0.20
COPY_BATCH = 50_000
CODES = ("D0120", "D0210", "D1110", "D2391", "D2740", "D4341", "D4346", "D7140", "D8080")
_CLAIM_COLUMNS = (
    "id", "external_id", "status", "status_rank", "submitted_by", "organisation",
    "created_at", "updated_at", "line_count", "net_fee_total",
)  # fmt: skip
_LINE_COLUMNS = (
    "claim_id", "line_no", "service_date", "submitted_procedure", "plan_group",
    "subscriber_number", "provider_npi", "provider_fees", "allowed_fees",
    "member_coinsurance", "member_copay", "net_fee",
)  # fmt: skip


@dataclass
class Settings:
    claims: int
    steps: int
    rate: float
    duration: float
    warmup: float
    concurrency: int
    keep: bool


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--claims", type=int, help="claims stored at the last step (10,000,000)")
    parser.add_argument("--steps", type=int, default=4, help="loads after the empty step (4)")
    parser.add_argument("--rate", type=float, default=100.0, help="fixed rate, claims/s (100)")
    parser.add_argument("--duration", type=int, help="seconds per measured phase (20)")
    parser.add_argument("--concurrency", type=int, default=32, help="sustained phase (32)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200,000 claims")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir and its logs")
    args = parser.parse_args(argv)
    claims = args.claims or (200_000 if args.quick else 10_000_000)
    if min(claims, args.steps, args.concurrency) < 1 or args.rate <= 0:
        parser.error("--claims, --steps, --concurrency and --rate must be positive")
    duration = args.duration or (5 if args.quick else 20)
    return Settings(
        claims, args.steps, args.rate, duration, 1 if args.quick else 3, args.concurrency, args.keep
    )


def _history(count: int, first: int, organisation: str) -> Iterator[tuple[list[Any], list[Any]]]:
    """`count` stored claims in batches: (claim rows, line rows), each a COPY's records."""
    rng = random.Random(first)
    now = datetime.now(UTC)
    fees = [Decimal(n) / 100 for n in range(2000, 60000, 137)]
    for start in range(0, count, COPY_BATCH):
        claim_rows: list[Any] = []
        line_rows: list[Any] = []
        for number in range(first + start, first + min(start + COPY_BATCH, count)):
            claim_id = uuid.uuid4()
            created = now - timedelta(seconds=rng.randrange(2 * 365 * 86400))
            lines = rng.randint(1, 4)
            total = Decimal(0)
            for line_no in range(1, lines + 1):
                fee = rng.choice(fees)
                allowed = (fee * Decimal("0.8")).quantize(Decimal("0.01"))
                net = fee - allowed
                total += net
                line_rows.append(
                    (
                        claim_id, line_no, created.date() - timedelta(days=rng.randrange(30)),
                        rng.choice(CODES), "GRP-1000", f"SUB-S{number}",
                        f"{rng.randrange(1, 1_000_000):010d}", fee, allowed,
                        Decimal("0.00"), Decimal("0.00"), net,
                    )
                )  # fmt: skip
            claim_rows.append(
                (
                    claim_id, f"stored-{number}", "paid", STATUS_RANK["paid"], organisation,
                    organisation, created, created, lines, total,
                )
            )  # fmt: skip
        yield claim_rows, line_rows


async def _copy_history(dsn: str, count: int, first: int, organisation: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for claim_rows, line_rows in _history(count, first, organisation):
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "claims", records=claim_rows, columns=_CLAIM_COLUMNS
                )
                await connection.copy_records_to_table(
                    "claim_lines", records=line_rows, columns=_LINE_COLUMNS
                )
    finally:
        await connection.close()


async def _settle(dsn: str) -> None:
    """The tables' upkeep before a measurement, the same at every size."""
    connection = await asyncpg.connect(dsn)
    try:
        # A table that grew over months has been vacuumed as it grew; right after a bulk load
        # the first vacuum rewrites every page (hint bits, the visibility map), and
        # autovacuum would do that in the middle of a measurement.
        for table_name in ("claims", "claim_lines"):
            await connection.execute(f"VACUUM (ANALYZE) {table_name}")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


async def _table_sizes(dsn: str) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        return {
            "claims": await connection.fetchval("SELECT count(*) FROM claims"),
            "claim_lines": await connection.fetchval("SELECT count(*) FROM claim_lines"),
            "database_bytes": await connection.fetchval(
                "SELECT pg_database_size(current_database())"
            ),
        }
    finally:
        await connection.close()


@dataclass
class Step:
    stored: dict[str, Any]
    load_s: float
    fixed: intake.Phase
    sustained_per_s: float

    def summary(self) -> dict[str, Any]:
        return {
            "stored": self.stored,
            "load_s": round(self.load_s, 1),
            "fixed_rate": self.fixed.summary(),
            "sustained_accepted_per_s": round(self.sustained_per_s, 1),
        }


def _measure(
    stack: Stack,
    settings: Settings,
    services: intake.Services,
    target: Target,
    meter: CpuMeter,
    loaded: tuple[dict[str, Any], float],
) -> Step:
    assert stack.postgres is not None
    pg = stack.postgres
    window = intake.Window(meter, services, lambda: 0)
    fixed = run_phase(
        target,
        OpenLoop(settings.rate, connections=64),
        warmup=settings.warmup,
        duration=settings.duration,
        generators=1,
        observer=window,
    )
    drain = drain_outbox(pg.dsn(SERVICE))
    phase = intake.Phase(
        fixed, window.server_latency(), window.usage(), window.relayed_per_s(), drain, 0
    )
    sustained = run_closed_loop(
        WrkTarget.of(target, intake.CLAIM_TEMPLATE),
        ClosedLoop(settings.concurrency),
        warmup=int(settings.warmup),
        duration=int(settings.duration),
    )
    drain_outbox(pg.dsn(SERVICE))
    stack.check_alive()
    stored, load_s = loaded
    return Step(stored, load_s, phase, sustained.throughput)


def _chart(steps: Sequence[Step], path: Path) -> Path:
    stored = [s.stored["claims"] / 1e6 for s in steps]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for label, values in (
        ("client p50", [s.fixed.result.percentile(50) for s in steps]),
        ("client p99", [s.fixed.result.percentile(99) for s in steps]),
        ("API p99", [s.fixed.server.quantile(0.99) for s in steps]),
    ):
        axes.plot(stored, [1000 * (v or 0) for v in values], marker="o", label=label)
    axes.set_xlabel("claims stored (millions)")
    axes.set_ylabel("POST /v1/claims latency at a fixed rate (ms)")
    axes.set_ylim(bottom=0)
    axes.grid(visible=True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    api_key = ApiKey("bench", ("submitter", "reader"))
    intake_settings = intake.Settings(
        duration=settings.duration,
        warmup=settings.warmup,
        concurrency=settings.concurrency,
        rate=settings.rate,
        api_processes=1,
        generators=1,
        pool_size=20,
        pgbench_seconds=0,
        keep=settings.keep,
    )
    steps: list[Step] = []
    with Stack(SERVICE, keep=settings.keep) as stack:
        say("starting PostgreSQL (fsync on) and Kafka ...")
        pg = stack.start_postgres()
        stack.start_kafka()
        services = intake.start_services(stack, intake_settings, api_key)
        target = intake.claims_target(services, api_key)
        intake.smoke_check(target)
        meter = intake.cpu_meter(stack, services)
        dsn = pg.dsn(SERVICE)
        per_step = settings.claims // settings.steps
        loaded_so_far = 0
        for index in range(settings.steps + 1):
            started = time.monotonic()
            if index:
                count = settings.claims - loaded_so_far if index == settings.steps else per_step
                say(f"step {index}: COPY of {count:,} claims ...")
                asyncio.run(_copy_history(dsn, count, loaded_so_far, api_key.principal))
                loaded_so_far += count
            asyncio.run(_settle(dsn))
            # The load's time with its upkeep; the empty step loads nothing.
            load_s = time.monotonic() - started if index else 0.0
            stored = asyncio.run(_table_sizes(dsn))
            say(f"step {index}: {stored}; measuring ...")
            steps.append(_measure(stack, settings, services, target, meter, (stored, load_s)))
    first, last = steps[0], steps[-1]
    p99_first = first.fixed.result.percentile(99) or 0.0
    p99_last = last.fixed.result.percentile(99) or 0.0
    growth = p99_last / p99_first - 1 if p99_first else float("inf")
    rows = [
        Row(
            f"{s.stored['claims']:,} claims stored ({s.stored['database_bytes'] / 2**30:.1f} GiB)",
            f"p50 {ms(s.fixed.result.percentile(50))}, p99 {ms(s.fixed.result.percentile(99))}"
            f" (API p99 {ms(s.fixed.server.quantile(0.99))}); wrk {s.sustained_per_s:,.0f}/s"
            + (f"; COPY {s.load_s:.0f} s" if s.load_s else ""),
        )
        for s in steps
    ]
    rows.append(
        Row(
            f"p99 at {last.stored['claims']:,} stored vs empty",
            f"{growth:+.0%}",
            f"within {TARGET_GROWTH:.0%}",
            verdict(growth <= TARGET_GROWTH),
        )
    )
    title = (
        f"claimflow intake at scale: {machine_info()['cpus']} CPUs, fixed rate "
        f"{settings.rate:g}/s and wrk c={settings.concurrency}, {settings.duration:g}s each"
    )
    say("")
    say(table(title, rows))
    path = write_results(
        "scale",
        settings,
        {
            "target_p99_growth": TARGET_GROWTH,
            "p99_growth": round(growth, 3),
            "steps": [s.summary() for s in steps],
            "table": [vars(r) for r in rows],
        },
    )
    chart = _chart(steps, path.with_suffix(".png"))
    say(f"\nresults: bench/results/{path.name}, chart: bench/results/{chart.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
