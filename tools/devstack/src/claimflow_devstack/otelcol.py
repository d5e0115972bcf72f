"""The OpenTelemetry Collector, built from its Go modules (tools/devstack/go/otelcol), running
the project's own gateway configuration (k8s/observability/otel-collector/config.yaml), on
127.0.0.1 or as a pod of the local node.

Two things of that configuration cannot stay as they are here, and only they change:
`k8sattributes` is left out (it asks the API server which pod sent each span: on 127.0.0.1
there are no pods, and the local node's API server is out of its pods' reach), and the
pipelines export to what the caller gives (a receiver or files of its own) instead of
Tempo, Prometheus and Loki. The receivers, the PHI processors, the memory limiter and the
batching are the configuration's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from claimflow_devstack import processes
from claimflow_devstack.go_tools import OTELCOL
from claimflow_devstack.paths import repo_root
from claimflow_devstack.scratch_images import ScratchImage

HOST = processes.LOCALHOST
GATEWAY_CONFIG = repo_root() / "k8s" / "observability" / "otel-collector" / "config.yaml"
# What the configurations here leave out, and why: see the module's docstring.
CLUSTER_ONLY_PROCESSORS = frozenset({"k8sattributes"})
# The image of the Collector on the local node: the static binary alone.
IMAGE = f"claimflow-otelcol:{OTELCOL.version}"


def gateway_config(exporters: Mapping[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The gateway configuration without what needs the API server, each pipeline exporting
    to `exporters[its signal]`: (the exporter's name, its settings)."""
    config: dict[str, Any] = yaml.safe_load(GATEWAY_CONFIG.read_text())
    for name in CLUSTER_ONLY_PROCESSORS:
        del config["processors"][name]
    config["exporters"] = {}
    for signal, pipeline in config["service"]["pipelines"].items():
        name, settings = exporters[signal]
        config["exporters"][name] = settings
        pipeline["processors"] = [
            p for p in pipeline["processors"] if p not in CLUSTER_ONLY_PROCESSORS
        ]
        pipeline["exporters"] = [name]
    return config


def local_gateway_config(
    export_to: str, *, grpc_port: int, http_port: int, health_port: int, metrics_port: int
) -> dict[str, Any]:
    """The gateway configuration with its listeners on 127.0.0.1 and everything exported to
    `export_to` (an OTLP/HTTP base URL: the exporter appends /v1/traces and the like)."""
    exporter = ("otlp_http/local", {"endpoint": export_to})
    config = gateway_config(dict.fromkeys(("traces", "metrics", "logs"), exporter))
    protocols = config["receivers"]["otlp"]["protocols"]
    protocols["grpc"]["endpoint"] = f"{HOST}:{grpc_port}"
    protocols["http"]["endpoint"] = f"{HOST}:{http_port}"
    config["extensions"]["health_check"]["endpoint"] = f"{HOST}:{health_port}"
    for reader in config["service"]["telemetry"]["metrics"]["readers"]:
        reader["pull"]["exporter"]["prometheus"].update(host=HOST, port=metrics_port)
    return config


class Collector:
    """A running Collector; `otlp_http_endpoint` is what the services' OTEL_EXPORTER_OTLP_ENDPOINT
    names."""

    def __init__(self, proc: processes.ManagedProcess, http_port: int, metrics_port: int) -> None:
        self._proc = proc
        self.otlp_http_endpoint = f"http://{HOST}:{http_port}"
        self.metrics_url = f"http://{HOST}:{metrics_port}/metrics"

    @classmethod
    def start(cls, data_dir: Path, export_to: str, timeout: float = 60.0) -> Collector:
        binary = OTELCOL.ensure_built()
        data_dir.mkdir(parents=True, exist_ok=True)
        ports = {name: processes.free_port() for name in ("grpc", "http", "health", "metrics")}
        config = local_gateway_config(
            export_to,
            grpc_port=ports["grpc"],
            http_port=ports["http"],
            health_port=ports["health"],
            metrics_port=ports["metrics"],
        )
        config_path = data_dir / "otelcol.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        proc = processes.start(
            "otelcol",
            [str(binary), f"--config=file:{config_path}"],
            log_path=data_dir / "otelcol.log",
            env={"PATH": "/usr/bin:/bin"},
        )
        collector = cls(proc, ports["http"], ports["metrics"])
        try:
            processes.wait_ready(f"http://{HOST}:{ports['health']}/", [proc], timeout)
        except BaseException:
            collector.stop()
            raise
        return collector

    def stop(self) -> None:
        # The Collector flushes its batches when told to stop.
        processes.stop(self._proc, 15.0)


def image() -> ScratchImage:
    """The Collector's image for the local node: its static binary, FROM scratch."""
    return ScratchImage(IMAGE, {"otelcol": OTELCOL.ensure_built()}, ["/otelcol"])
