"""What the devstack's system-level children could change on the host, recorded to compare.

A Docker engine or a Kubernetes node touches the kernel's network settings, iptables, network
interfaces and mounts. The devstack records them before it starts such a child and compares
after it stops, so that a run leaves the machine as it found it, and says what it did not.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The sysctls that dockerd, the kubelet and kube-proxy are known to set.
SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "kernel.panic",
    "kernel.panic_on_oops",
    "vm.overcommit_memory",
    "net.netfilter.nf_conntrack_max",
)
_IPTABLES_TABLES = ("filter", "nat", "mangle")
# iptables-save's comments carry a timestamp and its counters change with traffic.
_NOISE = re.compile(r"^#.*$|\[\d+:\d+\]", re.MULTILINE)


def read_sysctl(name: str) -> str | None:
    path = Path("/proc/sys") / name.replace(".", "/")
    try:
        return path.read_text().strip()
    except OSError:
        return None  # not present on this kernel, or its module is not loaded


def write_sysctl(name: str, value: str) -> None:
    (Path("/proc/sys") / name.replace(".", "/")).write_text(value + "\n")


def iptables_rules() -> dict[str, str]:
    save = shutil.which("iptables-save")
    if save is None:
        return {}
    rules = {}
    for table in _IPTABLES_TABLES:
        result = subprocess.run(  # noqa: S603 - fixed argv
            [save, "-t", table], capture_output=True, text=True, check=False
        )
        rules[table] = _NOISE.sub("", result.stdout).strip() if result.returncode == 0 else ""
    return rules


def interfaces() -> frozenset[str]:
    return frozenset(path.name for path in Path("/sys/class/net").iterdir())


def mount_points() -> frozenset[str]:
    points = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        points.add(line.split()[4])
    return frozenset(points)


@dataclass(frozen=True)
class HostState:
    sysctls: dict[str, str | None]
    iptables: dict[str, str]
    interfaces: frozenset[str]
    mounts: frozenset[str]

    @classmethod
    def record(cls) -> HostState:
        return cls(
            sysctls={name: read_sysctl(name) for name in SYSCTLS},
            iptables=iptables_rules(),
            interfaces=interfaces(),
            mounts=mount_points(),
        )

    def differences(self, before: HostState) -> list[str]:
        """What differs now from `before`, one readable line per finding (empty: nothing)."""
        found = [
            f"sysctl {name} {before.sysctls.get(name)} -> {value}"
            for name, value in self.sysctls.items()
            if value != before.sysctls.get(name)
        ]
        found += [
            f"iptables table {table} changed"
            for table, rules in self.iptables.items()
            if rules != before.iptables.get(table, "")
        ]
        if added := sorted(self.interfaces - before.interfaces):
            found.append(f"interfaces added: {', '.join(added)}")
        if removed := sorted(before.interfaces - self.interfaces):
            found.append(f"interfaces removed: {', '.join(removed)}")
        if mounted := sorted(self.mounts - before.mounts):
            found.append(f"still mounted: {', '.join(mounted[:5])}")
        return found
