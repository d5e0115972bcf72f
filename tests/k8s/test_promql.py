"""Alert rules and dashboard queries parse, and the alerts fire when they should.

Prometheus's own promtool (built from its Go module by the devstack) checks the rule file,
runs the alerts' unit tests (rules.test.yaml), and parses every dashboard query wrapped in a
throwaway rule file. promql-parser, a second parser, is used to find the metrics each query
selects (see test_metrics_exported.py).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from claimflow_devstack.promtool import promtool_binary

from .k8s_files import OBSERVABILITY
from .promql import Expression, grafana_expressions, rule_expressions

PROMETHEUS = OBSERVABILITY / "prometheus"
REQUIRED_ALERTS = {
    "ClaimflowConsumerLagHigh",
    "ClaimflowOutboxBacklogGrowing",
    "ClaimflowHttpErrorRateHigh",
    "ClaimflowAuditChainInvalid",
    "ClaimflowNoAdjudications",
}


@pytest.fixture(scope="session")
def promtool() -> Path:
    return promtool_binary()


def _promtool(promtool: Path, *args: str, cwd: Path = PROMETHEUS) -> str:
    result = subprocess.run(
        [str(promtool), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def _all_expressions(rules: dict[str, Any], dashboards: dict[str, Any]) -> Iterator[Expression]:
    yield from rule_expressions(rules)
    yield from grafana_expressions(dashboards)


def test_every_expression_parses_with_promql_parser(
    rules: dict[str, Any], dashboards: dict[str, dict[str, Any]]
) -> None:
    expressions = list(_all_expressions(rules, dashboards))
    assert len(expressions) > 20
    for expression in expressions:
        try:
            promql_parser.parse(expression.promql)
        except ValueError as exc:
            pytest.fail(f"{expression.where}: {exc}\n{expression.promql}")


def test_the_required_alerts_exist_with_severity_and_text(rules: dict[str, Any]) -> None:
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts.keys() >= REQUIRED_ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["description"], name


def test_promtool_checks_the_rule_file(promtool: Path) -> None:
    out = _promtool(promtool, "check", "rules", "--lint=all", "--lint-fatal", "rules.yaml")
    assert "SUCCESS" in out


def test_promtool_unit_tests_every_alert(promtool: Path, rules: dict[str, Any]) -> None:
    tests = yaml.safe_load((PROMETHEUS / "rules.test.yaml").read_text())
    tested = {
        case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])
    }
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert tested == alerts
    _promtool(promtool, "test", "rules", "rules.test.yaml")


def test_promtool_checks_the_prometheus_config(promtool: Path) -> None:
    _promtool(promtool, "check", "config", "--syntax-only", "prometheus.yml")


def test_promtool_parses_every_dashboard_query(
    promtool: Path, dashboards: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    expressions = grafana_expressions(dashboards)
    # promtool parses expressions through rule files; each query becomes a recording rule.
    wrapped = {
        "groups": [
            {
                "name": "grafana",
                "rules": [
                    {"record": f"grafana:query_{i}", "expr": e.promql}
                    for i, e in enumerate(expressions)
                ],
            }
        ]
    }
    (tmp_path / "grafana.rules.yaml").write_text(yaml.safe_dump(wrapped))
    out = _promtool(promtool, "check", "rules", "grafana.rules.yaml", cwd=tmp_path)
    assert f"{len(expressions)} rules found" in out


def _kept(relabel: dict[str, Any], labels: dict[str, str]) -> bool:
    # Prometheus joins the source labels with ";" and anchors the regex at both ends; this
    # pattern uses only syntax RE2 and Python read alike.
    value = ";".join(labels.get(name, "") for name in relabel["source_labels"])
    return re.fullmatch(relabel["regex"], value) is not None


@pytest.mark.parametrize(
    ("annotation_port", "port_name", "kept"),
    [
        ("", "http", True),  # the charts' API and worker containers
        ("", "metrics", True),
        ("", "grpc", False),  # another port of the same pod: not a second target
        ("", "", False),  # a pod without declared ports and no annotation
        ("8888", "otlp-grpc", True),  # the annotation picks the port
    ],
)
def test_pod_scrape_targets_are_the_metrics_port(
    annotation_port: str, port_name: str, kept: bool
) -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    pods = next(j for j in config["scrape_configs"] if j["job_name"] == "kubernetes-pods")
    (port_rule,) = [
        r
        for r in pods["relabel_configs"]
        if r.get("action") == "keep"
        and "__meta_kubernetes_pod_container_port_name" in r["source_labels"]
    ]
    labels = {
        "__meta_kubernetes_pod_annotation_prometheus_io_port": annotation_port,
        "__meta_kubernetes_pod_container_port_name": port_name,
    }
    assert _kept(port_rule, labels) is kept
