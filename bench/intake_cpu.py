"""The intake API's own CPU per `POST /v1/claims`, and where it goes.

Throughput on a shared two-core machine moves with whatever else runs there; the CPU the API
process spends per request does not, much. So this measures that: one real API process
(uvicorn, as in production) over its own PostgreSQL (fsync on), the benchmark's four-line
claim sent N times by a client in this process, and the API process's user + system CPU from
/proc before and after, per request. Kafka is not started: the API only writes the outbox.

`--profile cprofile` records the API process during the measured runs (the standard
library's profiler, on the CPU clock) and prints where its CPU went, by package and by
function; the profiler's own overhead inflates the CPU figures of such a run (and weighs on
code of many small calls most), so compare CPU only between runs without it.

    python -m bench.intake_cpu [--requests N] [--runs R] [--concurrency C]
                               [--idempotency-keys] [--profile cprofile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.intake import claim_body
from bench.meters import CpuMeter
from bench.report import Row, say, table, with_service_env, write_results
from bench.stack import ApiKey, Stack
from claimflow_devstack import processes
from claimflow_devstack.services import service

SERVICE = "intake"
PROFILERS = ("cprofile",)


@dataclass
class Settings:
    requests: int
    warmup: int
    runs: int
    concurrency: int
    idempotency_keys: bool
    profile: str | None
    top: int
    keep: bool
    service_env: dict[str, str] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake_cpu",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--requests", type=int, help="requests per measured run (2000)")
    parser.add_argument("--warmup", type=int, help="requests before the first run (300)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs; the median counts")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    parser.add_argument(
        "--idempotency-keys",
        action="store_true",
        help="send a fresh Idempotency-Key with every claim (the receipt is stored too)",
    )
    parser.add_argument("--profile", choices=PROFILERS, help="run the API under a profiler")
    parser.add_argument("--top", type=int, default=30, help="profile lines to print (30)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the API process, to compare settings (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: few requests")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir and its logs")
    # `python -m bench` passes every benchmark the options of all; ignore the others'.
    args, _ = parser.parse_known_args(argv)
    if min(args.runs, args.concurrency) < 1 or (args.requests or 1) < 1:
        parser.error("--requests, --runs and --concurrency must be >= 1")
    if any("=" not in pair for pair in args.env):
        parser.error("--env takes NAME=VALUE")
    return Settings(
        requests=args.requests or (200 if args.quick else 2000),
        warmup=args.warmup if args.warmup is not None else (50 if args.quick else 300),
        runs=args.runs,
        concurrency=args.concurrency,
        idempotency_keys=args.idempotency_keys,
        profile=args.profile,
        top=args.top,
        keep=args.keep,
        service_env=dict(pair.split("=", 1) for pair in args.env),
    )


# The profiler wraps the API process but records only between SIGUSR1 and SIGUSR2 (the
# measured runs): start-up, imports and warm-up stay out of the profile.
_PROFILED = {
    "cprofile": """
import cProfile, time
# CPU time, not wall time: the event loop's waits for the network cost nothing.
profiler = cProfile.Profile(time.process_time)
start = profiler.enable
def stop():
    profiler.disable()
    profiler.dump_stats(OUT)
""",
}
_RUN_MODULE = """
import runpy, signal, sys
signal.signal(signal.SIGUSR1, lambda *_: start())
signal.signal(signal.SIGUSR2, lambda *_: stop())
sys.argv = ARGV
runpy.run_module(ARGV[0], run_name="__main__", alter_sys=True)
"""


def api_command(settings: Settings, profile_path: Path) -> list[str]:
    command = service(SERVICE).command("api")
    if settings.profile is None:
        return command
    # [python, "-m", "claimflow_intake.cli", "api"]: the same module, under the profiler.
    python, argv = command[0], command[2:]
    script = f"OUT = {str(profile_path)!r}\nARGV = {argv!r}\n"
    return [python, "-c", script + _PROFILED[settings.profile] + _RUN_MODULE]


@dataclass(frozen=True)
class RunResult:
    requests: int
    seconds: float
    cpu_seconds: float
    statuses: dict[int, int]

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / self.requests

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


async def send(
    url: str, headers: dict[str, str], settings: Settings, first: int, count: int
) -> dict[int, int]:
    """`count` claims over `settings.concurrency` keep-alive connections; status counts."""
    statuses: Counter[int] = Counter()
    sequence = iter(range(first, first + count))
    limits = httpx.Limits(max_connections=settings.concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:

        async def worker() -> None:
            for seq in sequence:
                extra = {"Idempotency-Key": str(uuid.uuid4())} if settings.idempotency_keys else {}
                response = await client.post(
                    url, content=claim_body(seq), headers={**headers, **extra}
                )
                statuses[response.status_code] += 1

        await asyncio.gather(*(worker() for _ in range(settings.concurrency)))
    return dict(statuses)


def measure(
    url: str, headers: dict[str, str], settings: Settings, meter: CpuMeter, first: int
) -> RunResult:
    before = meter.sample()
    statuses = asyncio.run(send(url, headers, settings, first, settings.requests))
    after = meter.sample()
    usage = CpuMeter.usage(before, after)
    seconds = after.at - before.at
    return RunResult(settings.requests, seconds, usage.groups["api"] * seconds, statuses)


def package(filename: str) -> str:
    """Who a function belongs to: a package of the venv, the standard library or a C call."""
    if filename == "~":
        return "(built-in)"
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    for index, part in enumerate(parts):
        if part == "src" and index + 1 < len(parts):
            return parts[index + 1]  # the services' own packages
    return "(standard library)"


def wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # written, but perhaps not yet complete


def print_profile(settings: Settings, path: Path) -> None:
    if not path.exists():
        say(f"no profile written to {path}")
        return
    stats = pstats.Stats(str(path))
    raw = stats.stats  # type: ignore[attr-defined]  # (file, line, name) -> (cc, nc, tt, ct, callers)
    total = sum(entry[2] for entry in raw.values()) or 1e-9
    by_package: Counter[str] = Counter()
    for (filename, _, _), entry in raw.items():
        by_package[package(filename)] += entry[2]
    say(f"\n--- CPU by package (own time of its functions), of {total:.2f} s profiled")
    for name, seconds in by_package.most_common(settings.top):
        say(f"{100 * seconds / total:6.1f} %  {name}")
    for order in ("tottime", "cumulative"):
        say(f"\n--- cProfile (CPU clock), top {settings.top} by {order}")
        stats.sort_stats(order).print_stats(settings.top)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    api_key = ApiKey("bench", ("submitter", "reader"))
    with Stack(f"{SERVICE}-cpu", keep=settings.keep) as stack:
        say("starting PostgreSQL (fsync on) ...")
        pg = stack.start_postgres()
        env = {
            **os.environ,
            "CLAIMFLOW_DATABASE_URL": pg.create_database(SERVICE),
            "CLAIMFLOW_API_KEYS": api_key.config(),
            "CLAIMFLOW_HTTP_HOST": processes.LOCALHOST,
            "CLAIMFLOW_LOG_LEVEL": "WARNING",
            # As in bench.intake: one principal's load measures intake, not the rate limit.
            "CLAIMFLOW_SUBMISSION_RATE_LIMIT": "1000000/second",
            **settings.service_env,
        }
        stack.run("intake-migrate", service(SERVICE).migrate, env)
        port = processes.free_port()
        base = f"http://{processes.LOCALHOST}:{port}"
        profile_path = stack.dir / f"api.{settings.profile or 'none'}"
        api = stack.spawn(
            "intake-api",
            api_command(settings, profile_path),
            {**env, "CLAIMFLOW_HTTP_PORT": str(port)},
        )
        stack.wait_ready([f"{base}/readyz"])
        url = f"{base}/v1/claims"
        headers = dict([api_key.header, ("Content-Type", "application/json")])
        meter = CpuMeter({"api": lambda: [api.pid]})
        say(f"warming up: {settings.warmup} claims ...")
        warm = asyncio.run(send(url, headers, settings, 0, settings.warmup))
        if set(warm) != {202}:
            say(f"--- the API answered {warm}; its log:\n{api.log_tail(30)}")
            return 1
        if settings.profile is not None:
            os.kill(api.pid, signal.SIGUSR1)
        results = []
        for run in range(settings.runs):
            result = measure(url, headers, settings, meter, (run + 1) * 1_000_000)
            say(
                f"run {run + 1}: {result.cpu_ms_per_request:.2f} ms CPU per claim, "
                f"{result.per_second:.0f} claims/s, statuses {result.statuses}"
            )
            results.append(result)
        if settings.profile is not None:
            os.kill(api.pid, signal.SIGUSR2)
            wait_for(profile_path)
            print_profile(settings, profile_path)
    median = statistics.median(r.cpu_ms_per_request for r in results)
    failed = any(set(r.statuses) != {202} for r in results)
    rows = [
        Row("API CPU per claim (median)", f"{median:.2f} ms"),
        Row(
            "API CPU per claim (runs)",
            ", ".join(f"{r.cpu_ms_per_request:.2f}" for r in results) + " ms",
        ),
        Row("single API process ceiling", f"{1000 / median:.0f} claims/s per core"),
        Row(
            "claims/s with the client alongside",
            f"{statistics.median(r.per_second for r in results):.0f}",
        ),
    ]
    title = (
        f"intake API CPU: {settings.requests} claims x {settings.runs} runs, "
        f"concurrency {settings.concurrency}"
        + (", Idempotency-Key" if settings.idempotency_keys else "")
        + (f", under {settings.profile}" if settings.profile else "")
    )
    say("")
    say(table(with_service_env(title, settings.service_env), rows))
    path = write_results(
        "intake_cpu",
        settings,
        {
            "cpu_ms_per_claim_median": round(median, 3),
            "runs": [
                {**vars(r), "cpu_ms_per_request": round(r.cpu_ms_per_request, 3)} for r in results
            ],
            "python": sys.version,
        },
    )
    say(f"\nresults: bench/results/{path.name}")
    if failed:
        say("some claims were not accepted (see the statuses)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
