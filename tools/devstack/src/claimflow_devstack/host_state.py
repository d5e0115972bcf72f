"""What a single-node Kubernetes changes on the host, recorded before it starts and compared
after it stops: kernel settings, packet-filter rules, network interfaces, mounts, cgroups and
the few host paths the kubelet and containerd create outside their own directories.

The record is plain JSON, so a node left by a killed process can still be torn down and
checked against it later.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Values the kubelet (kernel tunables), kube-proxy (route_localnet, conntrack), the CNI bridge
# plugin (forwarding) and dockerd (forwarding) set. Forwarding first: writing ip_forward
# rewrites every interface's forwarding, which the later entries then restore one by one.
SYSCTLS = (
    "/proc/sys/net/ipv4/ip_forward",
    "/proc/sys/net/ipv4/conf/all/forwarding",
    "/proc/sys/net/ipv4/conf/default/forwarding",
    "/proc/sys/net/ipv6/conf/all/forwarding",
    "/proc/sys/net/ipv4/conf/all/route_localnet",
    "/proc/sys/net/ipv4/conf/lo/route_localnet",
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
    "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
    "/proc/sys/net/netfilter/nf_conntrack_max",
    "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established",
    "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait",
    "/sys/module/nf_conntrack/parameters/hashsize",
    "/proc/sys/kernel/panic",
    "/proc/sys/kernel/panic_on_oops",
    "/proc/sys/kernel/keys/root_maxkeys",
    "/proc/sys/kernel/keys/root_maxbytes",
    "/proc/sys/vm/overcommit_memory",
    "/proc/sys/vm/panic_on_oom",
)
# Host paths the components would create were they not pointed at their own directories
# (the kubelet's container log links are always under /var/log/containers, its device-plugin
# socket under /var/lib/kubelet/device-plugins). Not here:
# /run/containerd, where every containerd on the host (dockerd's too) keeps its shims'
# sockets, so its presence says nothing about this node.
HOST_PATHS = (
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/run/netns",
    "/etc/cni",
    "/opt/cni",
    "/etc/kubernetes",
    "/run/kubernetes",
)
_CGROUP_ROOT = Path("/sys/fs/cgroup")
# The kubelet's top-level cgroup (cgroupsPerQOS) under every controller.
KUBEPODS = "kubepods"
# The packet-filter tables recorded (and, where the node created them, deleted again).
IPTABLES_TABLES = ("filter", "nat", "mangle")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _iptables(command: str) -> dict[str, dict[str, Any]]:
    """Per table: builtin chain policies, the other chains, every rule (no counters)."""
    binary = shutil.which(command)
    tables: dict[str, dict[str, Any]] = {}
    for table in IPTABLES_TABLES:
        policies: dict[str, str] = {}
        chains: list[str] = []
        rules: list[str] = []
        if binary is not None:
            result = subprocess.run(  # noqa: S603 - a fixed system tool
                [binary, "-t", table], capture_output=True, text=True, check=False
            )
            for line in result.stdout.splitlines():
                if line.startswith(":"):
                    name, policy = line[1:].split()[:2]
                    if policy == "-":
                        chains.append(name)
                    else:
                        policies[name] = policy
                elif line.startswith("-"):
                    rules.append(line)
        # A table nobody loaded prints nothing; loaded later, it shows ACCEPT policies.
        tables[table] = {
            "policies": {k: v for k, v in policies.items() if v != "ACCEPT"},
            "chains": sorted(chains),
            "rules": rules,
        }
    return tables


def iptables_chains() -> list[str]:
    """Every non-builtin chain of the filter, nat and mangle tables, as TABLE:CHAIN."""
    return [
        f"{table}:{chain}"
        for table, content in _iptables("iptables-save").items()
        for chain in content["chains"]
    ]


def interfaces() -> list[str]:
    return sorted(path.name for path in Path("/sys/class/net").iterdir())


def _nft_tables() -> list[str]:
    nft = shutil.which("nft")
    if nft is None:
        return []
    result = subprocess.run(  # noqa: S603 - a fixed system tool
        [nft, "list", "tables"], capture_output=True, text=True, check=False
    )
    return sorted(line.strip() for line in result.stdout.splitlines() if line.strip())


def _unescape_mount(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \ooo octal.
    return field.encode().decode("unicode_escape")


def mounts_under(prefixes: Iterable[Path]) -> list[str]:
    """Mount points at or below any of `prefixes`, deepest first."""
    roots = [str(p) for p in prefixes]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape_mount(line.split()[4])
        if any(point == root or point.startswith(root.rstrip("/") + "/") for root in roots):
            found.append(point)
    return sorted(found, key=lambda p: (-p.count("/"), p))


def kubepods_cgroups() -> list[str]:
    return sorted(str(p) for p in _CGROUP_ROOT.glob(f"*/{KUBEPODS}") if p.is_dir())


def record(watched_dirs: Iterable[Path]) -> dict[str, Any]:
    """The host's state as JSON-ready data; `watched_dirs` are checked for leftover mounts."""
    watched = sorted({str(Path(d)) for d in watched_dirs} | {"/run/netns"})
    return {
        "sysctls": {path: _read(path) for path in SYSCTLS},
        "iptables": _iptables("iptables-save"),
        "ip6tables": _iptables("ip6tables-save"),
        "nft_tables": _nft_tables(),
        "interfaces": interfaces(),
        "watched_dirs": watched,
        "mounts": mounts_under(Path(d) for d in watched),
        "cgroups": kubepods_cgroups(),
        "paths": {path: Path(path).exists() for path in HOST_PATHS},
    }


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """One line per thing that differs, empty when the host is as recorded."""
    lines = []
    for path, value in before["sysctls"].items():
        if after["sysctls"].get(path) != value:
            lines.append(f"{path}: {value!r} before, {after['sysctls'].get(path)!r} now")
    for family in ("iptables", "ip6tables"):
        for table, state in before[family].items():
            now = after[family][table]
            for key in ("policies", "chains"):
                if now[key] != state[key]:
                    lines.append(f"{family} {table} {key}: {state[key]} before, {now[key]} now")
            added = [rule for rule in now["rules"] if rule not in state["rules"]]
            removed = [rule for rule in state["rules"] if rule not in now["rules"]]
            lines += [f"{family} {table} rule added: {rule}" for rule in added]
            lines += [f"{family} {table} rule removed: {rule}" for rule in removed]
    for key in ("nft_tables", "interfaces", "mounts", "cgroups"):
        extra = sorted(set(after[key]) - set(before[key]))
        gone = sorted(set(before[key]) - set(after[key]))
        if extra:
            lines.append(f"{key} added: {', '.join(extra)}")
        if gone:
            lines.append(f"{key} gone: {', '.join(gone)}")
    for path, existed in before["paths"].items():
        if after["paths"].get(path) != existed:
            lines.append(f"{path}: exists={existed} before, exists={not existed} now")
    return lines


def restore_sysctls(before: dict[str, Any]) -> None:
    """Write back every recorded value that changed."""
    for path, value in before["sysctls"].items():
        if value is not None and _read(path) != value:
            with contextlib.suppress(OSError):
                Path(path).write_text(value + "\n")
