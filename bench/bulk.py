"""Benchmark of bulk submission: POST /v1/claims/batch, a thousand claims a request.

The same stack as bench.intake (real PostgreSQL with durable commits, real Kafka, the intake
API and worker as real processes): a closed loop of a few clients each sending batches of
`--batch` four-line claims (unique ids, so every claim is stored), then the outbox drain
(every accepted claim's event reaches Kafka). Reported: claims accepted per second, batch
latency, and CPU per claim of each process group.

    python -m bench.bulk [--quick] [--duration S] [--concurrency N] [--batch N]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import httpx

from bench.intake import Settings as IntakeBenchSettings
from bench.intake import claim_body, cpu_meter, start_services
from bench.load import ClosedLoop, Target, run_phase
from bench.meters import CpuMeter, CpuSample, CpuUsage
from bench.pgprobe import drain_outbox
from bench.report import Row, machine_info, ms, say, table, verdict, write_results
from bench.stack import ApiKey, Stack

TARGET_CLAIMS_PER_S = 5000.0
SERVICE = "intake"


@dataclass
class CpuWindow:
    """CPU samples when the measured window opens and closes (not over the warm-up)."""

    meter: CpuMeter
    samples: list[CpuSample] = field(default_factory=list)

    def window_start(self) -> None:
        self.samples.append(self.meter.sample())

    def window_end(self) -> None:
        self.samples.append(self.meter.sample())

    def usage(self) -> CpuUsage:
        return CpuMeter.usage(self.samples[0], self.samples[-1])


@dataclass
class Settings:
    duration: float
    warmup: float
    concurrency: int
    batch: int
    keep: bool


def batch_body(size: int, seq: int) -> bytes:
    """`size` distinct claims; sequence numbers of different requests never overlap."""
    first = seq * size
    claims = (b'{"claim":' + claim_body(first + n) + b"}" for n in range(size))
    return b"[" + b",".join(claims) + b"]"


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bulk", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--duration", type=float, help="seconds measured (20)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up (3)")
    parser.add_argument("--concurrency", type=int, default=2, help="clients (2)")
    parser.add_argument("--batch", type=int, default=1000, help="claims per request (1000)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: short phases")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir and its logs")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or not 1 <= args.batch <= 1000:
        parser.error("--concurrency must be >= 1 and --batch within 1..1000")
    return Settings(
        duration=args.duration or (4.0 if args.quick else 20.0),
        warmup=args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0),
        concurrency=args.concurrency,
        batch=args.batch,
        keep=args.keep,
    )


def smoke_check(target: Target, size: int) -> None:
    """One batch before the load: every claim of it must be accepted."""
    response = httpx.post(
        target.urls[0], content=target.body(10**8), headers=dict(target.headers), timeout=60.0
    )
    body = response.json() if response.status_code == 207 else {}
    if body.get("accepted") != size:
        raise RuntimeError(
            f"intake answered HTTP {response.status_code} to the benchmark batch: "
            f"{response.text[:1000]}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    api_key = ApiKey("bench", ("submitter", "reader"))
    with Stack("bulk", keep=settings.keep) as stack:
        say("starting PostgreSQL (fsync on) and Kafka ...")
        pg = stack.start_postgres()
        stack.start_kafka()
        services = start_services(
            stack,
            IntakeBenchSettings(
                duration=settings.duration,
                warmup=settings.warmup,
                concurrency=settings.concurrency,
                rate=1.0,
                api_processes=1,
                generators=1,
                pool_size=max(4, settings.concurrency),
                pgbench_seconds=0,
                keep=settings.keep,
            ),
            api_key,
        )
        target = Target(
            urls=tuple(f"{u}/v1/claims/batch" for u in services.api_urls),
            headers=(api_key.header, ("Content-Type", "application/json")),
            body=partial(batch_body, settings.batch),
            ok_status=207,
            timeout=120.0,
        )
        smoke_check(target, settings.batch)
        meter = cpu_meter(stack, services)
        say(
            f"bulk: {settings.concurrency} client(s), {settings.batch} claims a request, "
            f"{settings.warmup:g}s warm-up + {settings.duration:g}s measured ..."
        )
        window = CpuWindow(meter)
        result = run_phase(
            target,
            ClosedLoop(settings.concurrency),
            warmup=settings.warmup,
            duration=settings.duration,
            generators=1,
            observer=window,
        )
        cpu = window.usage()
        stack.check_alive()
        say("bulk: draining the outbox ...")
        drain = drain_outbox(pg.dsn(SERVICE))
    claims_per_s = result.throughput * settings.batch
    rows = [
        Row(
            f"accepted claims/s (closed loop, c={settings.concurrency}, "
            f"{settings.batch} a request)",
            f"{claims_per_s:,.0f}",
            f">= {TARGET_CLAIMS_PER_S:,.0f}",
            verdict(claims_per_s >= TARGET_CLAIMS_PER_S),
        ),
        Row(
            "batch latency p50 / p99",
            " / ".join(ms(result.percentile(p)) for p in (50, 99)),
        ),
        Row("errors (non-207)", str(sum(result.errors.values())), "0", verdict(not result.errors)),
        *_cpu_rows(cpu, result.generator_cores, claims_per_s),
        Row(
            "outbox drained after load",
            f"{drain['backlog_rows']} rows in {drain['drain_s']:.2f} s",
        ),
    ]
    title = (
        f"claimflow bulk submission benchmark: {machine_info()['cpus']} CPUs, "
        f"PostgreSQL fsync on, {settings.duration:g}s measured"
    )
    say("")
    say(table(title, rows))
    path = write_results(
        "bulk",
        settings,
        {
            "target_claims_per_s": TARGET_CLAIMS_PER_S,
            "claims_per_s": round(claims_per_s, 1),
            "client": result.summary(),
            "cpu_cores": cpu.as_dict() | {"generator": round(result.generator_cores, 3)},
            "outbox_drain_after_load": drain,
            "table": [vars(r) for r in rows],
        },
    )
    say(f"\nresults: bench/results/{path.name}")
    say(json.dumps({"claims_per_s": round(claims_per_s, 1)}))
    return 0


def _cpu_rows(cpu: CpuUsage, generator_cores: float, claims_per_s: float) -> list[Row]:
    groups = {g: cpu.groups.get(g, 0.0) for g in ("api", "worker", "postgres", "kafka")} | {
        "generator": generator_cores
    }
    per_claim = {
        g: 1000 * cores / claims_per_s if claims_per_s else 0.0 for g, cores in groups.items()
    }
    return [
        Row(f"CPU cores {' / '.join(groups)}", " / ".join(f"{c:.2f}" for c in groups.values())),
        Row(
            "CPU ms per claim, same order",
            " / ".join(f"{v:.2f}" for v in per_claim.values()),
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
