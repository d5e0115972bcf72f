"""CPU accounting from /proc: cores used per named group of processes, by the benchmark's
whole process tree, and by everything else on the machine."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessInfo:
    ppid: int
    name: str
    cpu: float  # seconds, user + system


def process_table() -> dict[int, ProcessInfo]:
    """Every process on the machine, from /proc."""
    table: dict[int, ProcessInfo] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name may hold spaces and parentheses; the fields after the last ')'
        # are fixed: state, ppid, ..., utime (12th), stime (13th).
        head, _, tail = text.rpartition(")")
        fields = tail.split()
        cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        table[int(entry.name)] = ProcessInfo(int(fields[1]), head.partition("(")[2], cpu)
    return table


def descendants(table: Mapping[int, ProcessInfo], roots: Iterable[int]) -> set[int]:
    """The roots and every process below them: PostgreSQL does its work in child processes."""
    children: dict[int, list[int]] = {}
    for pid, info in table.items():
        children.setdefault(info.ppid, []).append(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def _machine_ticks() -> tuple[int, int, int]:
    """(busy, iowait, total) jiffies of the whole machine since boot."""
    with Path("/proc/stat").open() as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already inside user).
    total = sum(values[:8])
    idle, iowait = values[3], values[4]
    return total - idle - iowait, iowait, total


@dataclass(frozen=True)
class CpuSample:
    at: float
    table: dict[int, ProcessInfo]
    groups: dict[str, set[int]]
    machine: tuple[int, int, int]


@dataclass(frozen=True)
class CpuUsage:
    """Cores used (1.0 = one core busy) between two samples."""

    groups: dict[str, float]
    ours: float  # this benchmark's whole process tree, groups included
    # Processes outside that tree: a colleague's test run on a shared machine shows up here
    # instead of silently slowing the service down.
    foreign: float
    foreign_top: dict[str, float]  # by process name
    busy: float  # the machine's busy cores, kernel time included
    machine_busy_pct: float
    machine_iowait_pct: float

    @property
    def unaccounted(self) -> float:
        """Busy time no living process holds: kernel work (loopback TCP) and processes that
        exited in between, such as short-lived database connections."""
        return max(0.0, self.busy - self.ours - self.foreign)

    def as_dict(self) -> dict[str, Any]:
        return {
            **{name: round(v, 3) for name, v in self.groups.items()},
            "ours_total": round(self.ours, 3),
            "foreign": round(self.foreign, 3),
            "foreign_top": {name: round(v, 3) for name, v in self.foreign_top.items()},
            "unaccounted": round(self.unaccounted, 3),
            "machine_busy_pct": self.machine_busy_pct,
            "machine_iowait_pct": self.machine_iowait_pct,
        }


class CpuMeter:
    """CPU per named group of processes (each root with its descendants), from /proc."""

    def __init__(self, groups: Mapping[str, Callable[[], Iterable[int]]]) -> None:
        self.groups = dict(groups)

    def sample(self) -> CpuSample:
        table = process_table()
        members = {name: descendants(table, roots()) for name, roots in self.groups.items()}
        members[_OURS] = descendants(table, [os.getpid()])
        return CpuSample(time.monotonic(), table, members, _machine_ticks())

    @staticmethod
    def usage(first: CpuSample, second: CpuSample) -> CpuUsage:
        wall = max(second.at - first.at, 1e-9)

        def used(pid: int) -> float:
            # A process born in between counts from zero; one that died is lost to us.
            before = first.table.get(pid)
            return (second.table[pid].cpu - (before.cpu if before else 0.0)) / wall

        def total(pids: Iterable[int]) -> float:
            return sum(used(pid) for pid in pids if pid in second.table)

        groups = {name: total(pids) for name, pids in second.groups.items() if name != _OURS}
        ours = second.groups[_OURS] | first.groups[_OURS]
        foreign: dict[str, float] = {}
        for pid, info in second.table.items():
            if pid not in ours:
                foreign[info.name] = foreign.get(info.name, 0.0) + used(pid)
        top = sorted(foreign.items(), key=lambda item: -item[1])[:5]
        busy, iowait, ticks = (b - a for a, b in zip(first.machine, second.machine, strict=True))
        return CpuUsage(
            groups=groups,
            ours=total(ours),
            foreign=sum(foreign.values()),
            foreign_top={name: v for name, v in top if v >= 0.005},
            busy=busy / max(ticks, 1) * (os.cpu_count() or 1),
            machine_busy_pct=round(100.0 * busy / max(ticks, 1), 1),
            machine_iowait_pct=round(100.0 * iowait / max(ticks, 1), 1),
        )


_OURS = "\0ours"


def measure_quiet(meter: CpuMeter, seconds: float = 2.0) -> CpuUsage:
    """CPU use while our services idle: well above zero means someone else's load will be
    measured with ours."""
    first = meter.sample()
    time.sleep(seconds)
    return CpuMeter.usage(first, meter.sample())
