"""Every metric a dashboard or alert reads is one the services really export.

The services' API and worker apps are built in a child process (no lifespan: no database or
Kafka is needed to list metrics) and their /metrics pages are read and parsed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import promql_parser
import pytest

from .promql import (
    grafana_expressions,
    recorded_names,
    rule_expressions,
    selected_metrics,
    variable_metrics,
)

APPS = [
    "claimflow_intake.main:create_app",
    "claimflow_intake.worker:create_worker_app",
    "claimflow_adjudication.main:create_app",
    "claimflow_adjudication.worker:create_worker_app",
    "claimflow_audit.main:create_app",
    "claimflow_audit.worker:create_worker_app",
]
# Series Prometheus itself makes, not a service.
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}

_SCRAPE = textwrap.dedent(
    """
    import importlib, json, sys
    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    SUFFIXES = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    exported = {}
    for spec in sys.argv[1:]:
        module, factory = spec.split(":")
        app = getattr(importlib.import_module(module), factory)()
        response = TestClient(app).get("/metrics")  # no `with`: the lifespan is not run
        assert response.status_code == 200, (spec, response.status_code)
        names = set()
        for family in text_string_to_metric_families(response.text):
            # A labelled metric with no series yet has only its HELP/TYPE lines.
            names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
            names.update(sample.name for sample in family.samples)
        exported[spec] = sorted(names)
    print(json.dumps(exported))
    """
)


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _SCRAPE, *APPS],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "CLAIMFLOW_LOG_LEVEL": "WARNING"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    last_line = result.stdout.strip().splitlines()[-1]
    return {spec: set(names) for spec, names in json.loads(last_line).items()}


def _used(rules: dict[str, Any], dashboards: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for expression in [*rule_expressions(rules), *grafana_expressions(dashboards)]:
        for name in selected_metrics(promql_parser.parse(expression.promql)):
            used.setdefault(name, set()).add(expression.where)
    for name in variable_metrics(dashboards):
        used.setdefault(name, set()).add("dashboard variable")
    return used


def test_every_app_serves_claimflow_metrics(exported: dict[str, set[str]]) -> None:
    assert set(exported) == set(APPS)
    for spec, names in exported.items():
        assert "claimflow_http_requests_total" in names, spec


def test_every_metric_used_is_exported(
    exported: dict[str, set[str]], rules: dict[str, Any], dashboards: dict[str, dict[str, Any]]
) -> None:
    available = set().union(*exported.values()) | recorded_names(rules) | PROMETHEUS_SERIES
    used = _used(rules, dashboards)
    assert len(used) >= 15
    missing = {name: sorted(where) for name, where in used.items() if name not in available}
    assert not missing, f"metrics no service exports: {json.dumps(missing, indent=2)}"
