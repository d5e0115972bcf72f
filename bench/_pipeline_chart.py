"""The pipeline benchmark's chart: stage rates and latencies per second over the whole run."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib as mpl

mpl.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt

from bench.prom import Histogram

if TYPE_CHECKING:
    from bench.pipeline import Timeline


def _per_second(times: Iterable[float], origin: float) -> tuple[list[int], list[int]]:
    counts: dict[int, int] = defaultdict(int)
    for t in times:
        counts[int(t - origin)] += 1
    xs = list(range(min(counts, default=0), max(counts, default=-1) + 1))
    return xs, [counts.get(x, 0) for x in xs]


def _nearest(values: Sequence[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, round(q * len(values) + 0.5) - 1))]


def _e2e_quantiles(timeline: Timeline, origin: float, q: float) -> tuple[list[int], list[float]]:
    by_second: dict[int, list[float]] = defaultdict(list)
    for claim, at in timeline.accepted.items():
        done = timeline.adjudicated.get(claim)
        if done is not None:
            by_second[int(at - origin)].append(done - at)
    xs = sorted(by_second)
    return xs, [_nearest(sorted(by_second[x]), q) * 1000 for x in xs]


def _submit_quantiles(
    samples: Sequence[tuple[float, Histogram]], origin: float, q: float
) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for (_, before), (at, after) in itertools.pairwise(samples):
        value = after.minus(before).quantile(q)
        if value is not None:
            xs.append(at - origin)
            ys.append(value * 1000)
    return xs, ys


def _gapped(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """A NaN wherever samples are more than 2 s apart, so idle time shows as a gap, not a line."""
    out_x: list[float] = []
    out_y: list[float] = []
    for x, y in zip(xs, ys, strict=True):
        if out_x and x - out_x[-1] > 2:
            out_x.append(x)
            out_y.append(float("nan"))
        out_x.append(x)
        out_y.append(y)
    return out_x, out_y


def draw(
    path: Path,
    timeline: Timeline,
    samples: Sequence[tuple[float, Histogram]],
    windows: Sequence[tuple[str, float, float]],
    title: str,
) -> Path:
    origin = min(timeline.accepted.values(), default=0.0)
    fig, (rates, latency) = plt.subplots(2, 1, figsize=(12, 8), sharex=True)
    for label, times in (
        ("accepted (POST 202)", timeline.accepted.values()),
        ("relayed to Kafka", timeline.relayed),
        ("adjudicated", timeline.adjudicated.values()),
        ("audited end to end", timeline.audited.values()),
    ):
        xs, ys = _per_second(times, origin)
        rates.plot(xs, ys, label=label, linewidth=1)
    rates.set_ylabel("claims per second")
    for q, style in ((0.5, "-"), (0.99, "--")):
        xs_f, ys_f = _submit_quantiles(samples, origin, q)
        latency.plot(
            *_gapped(xs_f, ys_f), style, color="tab:blue", label=f"submit p{q * 100:g} (server)"
        )
        xs_i, ys_e = _e2e_quantiles(timeline, origin, q)
        latency.plot(
            *_gapped(xs_i, ys_e), style, color="tab:red", label=f"submit->adjudicated p{q * 100:g}"
        )
    latency.set_yscale("log")
    latency.set_ylabel("milliseconds (log)")
    latency.set_xlabel("seconds since the first claim")
    for axis in (rates, latency):
        for name, start, end in windows:
            axis.axvspan(start - origin, end - origin, alpha=0.08, color="green")
            if axis is rates:
                axis.text(start - origin, 0, f" {name}", va="bottom", fontsize=8)
        axis.grid(True, alpha=0.3)
        axis.legend(loc="upper right", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
