"""`claimflow-operator run` as the container runs it: its own process, configured by the
environment, serving /healthz and /metrics, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from claimflow_devstack.kube import KubeCluster
from claimflow_devstack.processes import free_port
from claimflow_operator.settings import OperatorSettings

from .conftest import Plans, wait_for


def _get(url: str) -> httpx.Response | None:
    try:
        response = httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None
    return response if response.status_code == 200 else None


def test_the_command_runs_the_operator_with_health_and_metrics(
    plans: Plans, op_settings: OperatorSettings, kube_cluster: KubeCluster, tmp_path: Path
) -> None:
    health, metrics = free_port(), free_port()
    env: dict[str, Any] = {
        **kube_cluster.env(),
        "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS": op_settings.kafka_bootstrap_servers,
        "CLAIMFLOW_KAFKA_TOPIC_PREFIX": op_settings.kafka_topic_prefix,
        "CLAIMFLOW_OPERATOR_NAMESPACES": plans.namespace,
        "CLAIMFLOW_OPERATOR_HEALTH_PORT": str(health),
        "CLAIMFLOW_OPERATOR_METRICS_PORT": str(metrics),
    }
    log = tmp_path / "operator.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "claimflow_operator.cli", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: _get(f"http://127.0.0.1:{health}/healthz"), "the liveness endpoint")
            assert plans.create("cli-plan", {**_SPEC}).status_code == 201
            plans.wait_condition("cli-plan", "Published", "True")
            scraped = wait_for(lambda: _get(f"http://127.0.0.1:{metrics}/metrics"), "metrics")
            assert "claimflow_operator_plans_published_total 1.0" in scraped.text
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
    lines = log.read_text().splitlines()
    assert code == 0, lines[-20:]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert any("operator started" in r.get("message", "") for r in records), lines[-20:]
    assert all(r.get("service") == "operator" for r in records)


_SPEC: dict[str, Any] = {
    "groups": ["GRP-9*"],
    "coveredCategories": ["preventive"],
    "coinsurance": {"preventive": 100},
}
