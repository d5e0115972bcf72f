"""Undoing what a single-node Kubernetes (claimflow_devstack.kube_node) left on the host:
its processes by their recorded PIDs, containers that outlived them, packet-filter rules and
chains, interfaces, mounts, cgroups and host paths. Each step touches only what the host
record (claimflow_devstack.host_state) says was not there before the node started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from claimflow_devstack import host_state, processes
from claimflow_devstack.errors import DevstackError
from claimflow_devstack.go_tools import KUBE_PROXY

# Chains the kubelet, kube-proxy and the CNI plugins add, by name prefix.
OWN_CHAIN_PREFIXES = ("KUBE-", "CNI-")
# The tables iptables (over nf_tables) creates on first use and never deletes: on a host that
# had none before the node, they are deleted again once nothing is left in them.
IPTABLES_NFT_TABLES = frozenset(
    f"table {family} {name}" for family in ("ip", "ip6") for name in host_state.IPTABLES_TABLES
)


def run_tool(argv: Sequence[str], *, check: bool = True, timeout: float = 60.0) -> str:
    """Run a system tool (ip, iptables, ctr, ...) to completion; its standard output.
    A failure raises with its stderr unless `check` is false."""
    result = subprocess.run(  # noqa: S603 - fixed system tools and our binaries
        list(argv), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise DevstackError(
            f"`{' '.join(argv)}` exited {result.returncode}: {result.stderr.strip()}"
        )
    return result.stdout


def succeeds(argv: Sequence[str]) -> bool:
    return subprocess.run(list(argv), capture_output=True, check=False).returncode == 0  # noqa: S603


def recorded_alive(entry: dict[str, Any]) -> bool:
    """Whether the recorded PID still runs the recorded binary (not a recycled PID)."""
    try:
        argv0 = Path(f"/proc/{entry['pid']}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
    return argv0 == str(entry["argv0"])


def stop_recorded(entry: dict[str, Any], timeout: float = 20.0) -> None:
    if not recorded_alive(entry):
        return
    pid = entry["pid"]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while recorded_alive(entry) and time.monotonic() < deadline:
        time.sleep(0.2)
    if recorded_alive(entry):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def undo_host_changes(
    data_dir: Path,
    before: dict[str, Any] | None,
    *,
    bridge: str,
    cni_network: str,
    rules: Sequence[Sequence[str]],
) -> None:
    """Undo, in order, what the node's processes left: packet-filter rules and chains,
    interfaces, mounts, cgroups, host paths. `rules` are the rules we inserted ourselves (as
    `iptables` takes them); of the rest only what the record says was not there before."""
    kube_proxy = KUBE_PROXY.binary
    if kube_proxy.exists():
        run_tool([str(kube_proxy), "--cleanup"], check=False)
    for rule in rules:
        while succeeds(iptables("-C", rule)):
            run_tool(iptables("-D", rule))
    if before is not None:
        _remove_added_packet_filters(before)
    _delete_interfaces(before, bridge)
    _unmount(data_dir, before)
    if before is not None:
        for cgroup in host_state.kubepods_cgroups():
            if cgroup not in before["cgroups"]:
                _remove_cgroup_tree(Path(cgroup))
        _remove_cni_results(cni_network)
        for path, existed in before["paths"].items():
            if not existed:
                _remove_created_path(Path(path), data_dir)


def iptables(operation: str, rule: Sequence[str]) -> list[str]:
    """The `iptables` command that does `operation` (-I, -C, -D) with a rule written as
    [TABLE, CHAIN, MATCHES AND TARGET...]."""
    table, chain, *spec = rule
    return ["iptables", "-t", table, operation, chain, *spec]


def _unmount(data_dir: Path, before: dict[str, Any] | None) -> None:
    recorded = before["mounts"] if before is not None else []
    for point in host_state.mounts_under([data_dir]):
        if point not in recorded and not succeeds(["umount", point]):
            run_tool(["umount", "-l", point], check=False)


def kill_leftover_containers(data_dir: Path, logs: Path) -> None:
    """SIGKILL and delete every container still running: shims (which hold them) outlive
    containerd, so after a killed `up` a containerd of ours is started again to reach them."""
    base = data_dir / "containerd"
    config = base / "config.toml"
    if not config.exists():
        return
    socket_path = base / "containerd.sock"
    ctr = ["ctr", f"--address={socket_path}", "--namespace=k8s.io"]
    helper = None
    if not succeeds([*ctr, "version"]):
        socket_path.unlink(missing_ok=True)
        helper = processes.start(
            "containerd",
            [shutil.which("containerd") or "containerd", "--config", str(config)],
            log_path=logs / "containerd.log",
        )
        deadline = time.monotonic() + 60.0
        while not succeeds([*ctr, "version"]) and time.monotonic() < deadline:
            time.sleep(0.2)
    try:
        for task in run_tool([*ctr, "tasks", "ls", "-q"], check=False, timeout=30.0).split():
            run_tool([*ctr, "tasks", "kill", "-s", "SIGKILL", task], check=False)
            run_tool([*ctr, "tasks", "delete", "-f", task], check=False)
    finally:
        if helper is not None:
            processes.stop(helper, 20.0)


def _remove_added_packet_filters(before: dict[str, Any]) -> None:
    now = host_state.record(before["watched_dirs"])
    for family, command in (("iptables", "iptables"), ("ip6tables", "ip6tables")):
        for table, state in now[family].items():
            old = before[family][table]
            for rule in state["rules"]:
                if rule in old["rules"] or not any(p in rule for p in OWN_CHAIN_PREFIXES):
                    continue
                argv = [command, "-t", table, "-D", *rule.split()[1:]]
                run_tool(argv, check=False)
            added = [c for c in state["chains"] if c not in old["chains"]]
            for chain in added:
                if chain.startswith(OWN_CHAIN_PREFIXES):
                    run_tool([command, "-t", table, "-F", chain], check=False)
            for chain in added:
                if chain.startswith(OWN_CHAIN_PREFIXES):
                    run_tool([command, "-t", table, "-X", chain], check=False)
    for table in now["nft_tables"]:
        if table in before["nft_tables"]:
            continue
        if "kube-proxy" in table or (table in IPTABLES_NFT_TABLES and _holds_nothing(table)):
            run_tool(["nft", "delete", *table.split()], check=False)


def _holds_nothing(table: str) -> bool:
    """Whether an nf_tables table (`table ip filter`) holds only base chains that accept and
    have no rules: what iptables leaves of a table once its rules and chains are gone."""
    listing = json.loads(run_tool(["nft", "--json", "list", *table.split()], check=False) or "{}")
    for item in listing.get("nftables", []):
        if "metainfo" in item or "table" in item:
            continue
        chain = item.get("chain")
        if chain is None or "hook" not in chain or chain.get("policy") != "accept":
            return False
    return True


def _delete_interfaces(before: dict[str, Any] | None, bridge: str) -> None:
    existed = set(before["interfaces"]) if before is not None else set()
    for link in sorted(Path("/sys/class/net").iterdir()):
        master = link / "master"
        if link.name not in existed and master.exists() and master.resolve().name == bridge:
            run_tool(["ip", "link", "delete", link.name], check=False)
    if bridge not in existed and Path(f"/sys/class/net/{bridge}").exists():
        run_tool(["ip", "link", "delete", bridge], check=False)


def _remove_cgroup_tree(root: Path) -> None:
    for current, _dirs, _files in sorted(os.walk(root), key=lambda w: -w[0].count("/")):
        with contextlib.suppress(OSError):
            Path(current).rmdir()


def _remove_cni_results(cni_network: str) -> None:
    """Drop the CNI library's cached results of our sandboxes: the containerd of a killed
    `up` never ran their CNI DEL, which would have removed them."""
    results = Path("/var/lib/cni/results")
    if not results.is_dir():
        return
    prefix = f"{cni_network}-"
    ours = {
        entry.name.removeprefix(prefix).rsplit("-", 1)[0]
        for entry in results.iterdir()
        if entry.name.startswith(prefix)
    }
    for entry in results.iterdir():
        sandbox = entry.name.removeprefix(prefix).removeprefix("cni-loopback-").rsplit("-", 1)[0]
        if sandbox in ours:
            entry.unlink()


def _remove_created_path(path: Path, data_dir: Path) -> None:
    """Remove a host directory the node's components created (it was not there before), if
    it holds nothing but empty directories, sockets (their servers are stopped) and links
    into our data dir (the kubelet's log links)."""
    if not path.is_dir():
        return
    for current, _dirs, files in sorted(os.walk(path), key=lambda w: -w[0].count("/")):
        for name in files:
            entry = Path(current) / name
            ours = entry.is_symlink() and os.readlink(entry).startswith(str(data_dir))
            if ours or stat.S_ISSOCK(entry.lstat().st_mode):
                entry.unlink()
        with contextlib.suppress(OSError):
            Path(current).rmdir()
