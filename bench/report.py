"""What a benchmark prints and keeps: progress lines, result tables and the JSON results."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def say(message: str) -> None:
    print(message, flush=True)


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


def write_results(benchmark: str, settings: object, results: Mapping[str, Any]) -> Path:
    """Write one run's results to bench/results/, with the benchmark's name, the machine and
    the settings it ran with."""
    document = {
        "benchmark": benchmark,
        "machine": machine_info(),
        "settings": vars(settings),
        **results,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{benchmark}-{stamp}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def with_service_env(title: str, service_env: Mapping[str, str]) -> str:
    """A table's title naming the service settings the run overrode, if any."""
    if not service_env:
        return title
    return title + ", " + " ".join(f"{k}={v}" for k, v in service_env.items())


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"
