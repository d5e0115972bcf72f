"""What every service's command line shares: the `api | worker | migrate` subcommands and
serving a process as in every container (one uvicorn process)."""

from __future__ import annotations

import argparse
from typing import Protocol

import uvicorn

# The subcommands that serve a long-running process; `migrate` and the rest return.
PROCESSES = ("api", "worker")


class ServingSettings(Protocol):
    http_host: str
    http_port: int
    worker_http_port: int
    forwarded_allow_ips: str


def service_parser(
    prog: str,
    description: str,
    *,
    api: str,
    worker: str,
    migrate: str = "migrate the database schema",
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    """A service's parser with its `api`, `worker` and `migrate` subcommands (given their help
    texts), and the subparsers for the service's own tools."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("api", help=api)
    commands.add_parser("worker", help=worker)
    commands.add_parser("migrate", help=migrate)
    return parser, commands


def serve_process(package: str, process: str, settings: ServingSettings) -> None:
    """Serve `package`'s API (`main:create_app`) or worker (`worker:create_worker_app`) on the
    port the settings give it, with the service's own JSON logging and no access log (RED
    metrics and traces already record every request)."""
    if process == "api":
        factory, port = f"{package}.main:create_app", settings.http_port
    else:
        factory, port = f"{package}.worker:create_worker_app", settings.worker_http_port
    uvicorn.run(
        factory,
        factory=True,
        host=settings.http_host,
        port=port,
        log_config=None,
        access_log=False,
        # What uvicorn's "auto" picks when both are installed (they are dependencies), said
        # outright: the pure-Python fallbacks cost several times the CPU per request.
        loop="uvloop",
        http="httptools",
        ws="none",
        # Behind an Ingress the client address and scheme come from X-Forwarded-* headers,
        # believed only from the proxies named.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
