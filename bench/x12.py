"""Benchmark of reading X12 837 Dental: one interchange of many claims, read the way
POST /v1/claims/x12 reads it (pyx12's parse and guide validation, the 999, each CLM into a
submission), from a stream.

Each run is a fresh process, so its peak resident size is the read's own and the maps are
loaded as on a service's first interchange. In that process a one-claim interchange is read
twice before the large one: the first pays for loading the maps, the second shows what every
later interchange of the process pays.

    python -m bench.x12 [--quick] [--x12-claims N] [--x12-runs N]

No database or broker: storing the claims is the JSON batch path's cost, measured by
bench.intake; this is the part only X12 pays, and it runs in the API process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

from bench.report import Row, machine_info, say, table, write_results
from claimflow_intake.domain.x12_claims import read_dental_claims
from claimflow_shared.x12 import ACCEPTED
from claimflow_shared.x12.testing import InterchangeStream

BENCHMARK = "x12"
# Lines of /proc/self/status, in KiB: the resident size now and its high-water mark.
_RSS = "VmRSS:"
_PEAK_RSS = "VmHWM:"


@dataclass
class Settings:
    claims: int
    runs: int


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m bench.x12", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--x12-claims", type=int, help="claims in the interchange (10000; quick 1000)"
    )
    parser.add_argument("--x12-runs", type=int, help="runs, each in a fresh process (3; quick 1)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a smaller interchange")
    # The other benchmarks' options come along from `python -m bench`.
    args, _unknown = parser.parse_known_args(argv)
    claims = args.x12_claims or (1000 if args.quick else 10_000)
    runs = args.x12_runs or (1 if args.quick else 3)
    if min(claims, runs) < 1:
        parser.error("--x12-claims and --x12-runs must be positive")
    return Settings(claims, runs)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _timed_read(claims: int) -> dict[str, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    read = read_dental_claims(cast(TextIO, InterchangeStream(claims)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    # A benchmark of a read that went wrong would measure the wrong work.
    if read.status != ACCEPTED or len(read.submissions()) != claims:
        raise RuntimeError(f"expected {claims} accepted claims, got status {read.status}")
    return {"cpu_s": cpu, "wall_s": wall}


def child(claims: int) -> dict[str, Any]:
    """One run, in this process: two one-claim interchanges, then the large one."""
    first = _timed_read(1)
    second = _timed_read(1)
    rss_before = _status_kib(_RSS)
    large = _timed_read(claims)
    return {
        "first_one_claim_cpu_s": first["cpu_s"],
        "next_one_claim_cpu_s": second["cpu_s"],
        "cpu_s": large["cpu_s"],
        "wall_s": large["wall_s"],
        "claims_per_s": claims / large["wall_s"],
        "cpu_ms_per_claim": 1000 * large["cpu_s"] / claims,
        "rss_before_mib": rss_before / 1024,
        "peak_rss_mib": _status_kib(_PEAK_RSS) / 1024,
    }


def run_once(claims: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.x12", "--child", str(claims)],
        check=True,
        capture_output=True,
        cwd=Path(__file__).resolve().parent.parent,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def report(settings: Settings, runs: list[dict[str, Any]]) -> list[Row]:
    def median(key: str) -> float:
        return float(statistics.median(float(run[key]) for run in runs))

    return [
        Row("claims read per second (wall clock)", f"{median('claims_per_s'):,.1f} claims/s"),
        Row("CPU reading the interchange", f"{median('cpu_s'):.2f} s"),
        Row("CPU per claim", f"{median('cpu_ms_per_claim'):.2f} ms"),
        Row("peak resident size of the process", f"{median('peak_rss_mib'):.0f} MiB"),
        Row("resident size before the large read", f"{median('rss_before_mib'):.0f} MiB"),
        Row("first one-claim interchange (loads maps)", f"{median('first_one_claim_cpu_s'):.3f} s"),
        Row("next one-claim interchange", f"{median('next_one_claim_cpu_s'):.3f} s"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    runs = []
    for index in range(settings.runs):
        say(f"reading {settings.claims:,} claims, run {index + 1} of {settings.runs} ...")
        runs.append(run_once(settings.claims))
        say(f"  {runs[-1]['cpu_s']:.2f} s CPU, {runs[-1]['peak_rss_mib']:.0f} MiB peak")
    rows = report(settings, runs)
    title = (
        f"claimflow X12 837D reading: {machine_info()['cpus']} CPUs, {settings.claims:,} claims "
        f"of 4 lines in one interchange, median of {settings.runs} run(s)"
    )
    say("")
    say(table(title, rows))
    path = write_results(BENCHMARK, settings, {"runs": runs, "table": [vars(r) for r in rows]})
    say(f"\nresults: bench/results/{path.name}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(int(sys.argv[2]))))
        raise SystemExit(0)
    raise SystemExit(main(sys.argv[1:]))
