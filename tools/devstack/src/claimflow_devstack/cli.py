"""`python -m claimflow_devstack.cli {prepare,run}`: the entry points behind make test and run."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from types import FrameType

import httpx

from claimflow_devstack import (
    browser,
    go_tools,
    images,
    kafka_install,
    kube_node,
    postgres,
    processes,
    promtool,
    redis,
    wrk,
)
from claimflow_devstack.docker_engine import DockerEngine
from claimflow_devstack.errors import DevstackError
from claimflow_devstack.paths import logs_dir, repo_root
from claimflow_devstack.scratch_images import pause_binary
from claimflow_devstack.services import SERVICES
from claimflow_devstack.stack import LocalStack


def _say(message: str) -> None:
    print(message, flush=True)  # noqa: T201


def prepare() -> int:
    """Fetch and check everything tests need, so that happens once and visibly."""
    _say(f"java:       {kafka_install.check_java()} ({kafka_install.java_bin()})")
    home = kafka_install.ensure_installed()
    jars = sorted((home / "libs").glob("*.jar"))
    size_mb = sum(jar.stat().st_size for jar in jars) / 1e6
    _say(f"kafka:      {kafka_install.KAFKA_VERSION}, {len(jars)} jars, {size_mb:.0f} MB in {home}")
    bin_dir = postgres.bin_dir()
    _say(f"postgresql: {postgres.check_binaries(bin_dir)} in {bin_dir}")
    if os.geteuid() == 0:
        _say(f"postgresql: runs as system user {postgres.system_user()!r} (we are root)")
    # The TLS tests' server: the embedded PostgreSQL has no OpenSSL.
    tls_bin = postgres.tls_bin_dir()
    _say(f"postgresql: {postgres.check_binaries(tls_bin)} in {tls_bin} (for the TLS tests)")
    redis_bin = redis.server_binary()
    _say(f"redis:      {redis.version(redis_bin)} ({redis_bin})")
    # Built here, visibly, rather than inside a test's time limit on first use; in this order.
    go_builds = (
        go_tools.HELM,
        *kube_node.TOOLS,
        go_tools.HYDRA,
        go_tools.OTELCOL,
        promtool.PROMTOOL,
        promtool.PROMETHEUS,
        go_tools.TRAEFIK,
        go_tools.SKAFFOLD,
        go_tools.HELM3,
    )
    with go_tools.modules_fetched_ahead(go_builds):
        for tool in go_builds:
            _say(f"{tool.name + ':':<12}{tool.ensure_built()}")
    # The node's pod sandbox, compiled from the Kubernetes source the builds fetched.
    _say(f"{'pause:':<12}{pause_binary()}")
    # The benchmarks' load generator; the wrk driver's test runs it.
    load_generator = wrk.find_wrk()
    packages = wrk.debian_versions(load_generator)
    _say(
        f"wrk:        {load_generator.version()} ({load_generator.path}"
        + (f", unpacked from {packages})" if packages else ")")
    )
    # The service and data-tier images, on local bases; tests/images runs them.
    with processes.supervised(), DockerEngine.start(logs_dir()) as engine:
        for tag, size in images.build_local_images(engine):
            _say(f"{'image:':<12}{tag} {size / 1e6:.0f} MB{images.over_budget(tag, size)}")
    # The API docs test renders every service's /docs in it.
    chromium = browser.chromium_binary(install=True)
    _say(f"chromium:   {browser.version(chromium)} ({chromium})")
    return 0


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (from a supervisor) takes the same path as Ctrl-C: a clean stop.
    raise KeyboardInterrupt


def _still_stopping(signum: int, frame: FrameType | None) -> None:
    _say("still stopping the stack; please wait")


def run() -> int:
    # However this process ends, even by SIGKILL, nothing it started outlives it.
    with processes.supervised():
        return _run(LocalStack(SERVICES, repo_root()))


def _run(stack: LocalStack) -> int:
    signal.signal(signal.SIGTERM, _raise_interrupt)
    code = 0
    try:
        stack.start()
        _say(stack.describe())
        while True:
            time.sleep(1.0)
            stack.report_deaths()
    except KeyboardInterrupt:
        _say("\nstopping ...")
    except (
        DevstackError,
        OSError,
        TimeoutError,
        subprocess.CalledProcessError,
        httpx.HTTPError,
    ) as exc:
        _say(f"claimflow-dev run: {exc}")
        code = 1
    finally:
        # A second Ctrl-C must not abandon processes half-way through stopping.
        signal.signal(signal.SIGINT, _still_stopping)
        signal.signal(signal.SIGTERM, _still_stopping)
        stack.stop()
    _say("stopped")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="claimflow-dev", description="claimflow's local PostgreSQL, Kafka and services"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "prepare",
        help="fetch the Kafka jars and wrk, build the Go tools and the images, install chromium",
    )
    commands.add_parser("run", help="run PostgreSQL, Kafka and every service with sample data")
    args = parser.parse_args(argv)
    try:
        return prepare() if args.command == "prepare" else run()
    except DevstackError as exc:
        _say(f"claimflow-dev {args.command}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
