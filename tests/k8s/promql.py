"""Every PromQL expression in k8s/observability, as Prometheus would receive it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import promql_parser

from .k8s_files import OBSERVABILITY, load_yaml

# Grafana replaces its variables before a query reaches Prometheus; these are values it could
# put there. "$$" in provisioning files is Grafana's escape for a literal "$".
_GRAFANA_RANGES = re.compile(
    r"\$(?:\{__(?:rate_interval|interval|range)\}|__(?:rate_interval|interval|range))"
)
_GRAFANA_TAGS = re.compile(r"\$\$?(?:\{__tags\}|__tags)")
_GRAFANA_VARIABLE = re.compile(r"\$(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Expression:
    where: str
    promql: str


def grafana_to_promql(query: str) -> str:
    query = _GRAFANA_TAGS.sub('service="intake"', query)
    query = _GRAFANA_RANGES.sub("5m", query)
    return _GRAFANA_VARIABLE.sub("claimflow", query)


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def rule_expressions(rules: dict[str, Any]) -> list[Expression]:
    return [
        Expression(f"rule {r.get('alert') or r.get('record')}", r["expr"])
        for group in rules["groups"]
        for r in group["rules"]
    ]


def recorded_names(rules: dict[str, Any]) -> set[str]:
    return {r["record"] for group in rules["groups"] for r in group["rules"] if "record" in r}


def grafana_expressions(dashboards: dict[str, dict[str, Any]]) -> list[Expression]:
    found = []
    for name, dashboard in dashboards.items():
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == "prometheus":
                    where = f"{name}: {panel['title']} {target['refId']}"
                    found.append(Expression(where, grafana_to_promql(target["expr"])))
    datasources = load_yaml(OBSERVABILITY / "grafana" / "datasources.yaml")["datasources"]
    for datasource in datasources:
        for query in datasource.get("jsonData", {}).get("tracesToMetrics", {}).get("queries", []):
            where = f"datasource {datasource['name']}: {query['name']}"
            found.append(Expression(where, grafana_to_promql(query["query"])))
    return found


def variable_metrics(dashboards: dict[str, dict[str, Any]]) -> set[str]:
    """Metrics named by label_values(metric, label) template variables (Grafana, not PromQL)."""
    found = set()
    for dashboard in dashboards.values():
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query or "")
            match = re.match(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,", text)
            if match:
                found.add(match.group(1))
    return found


def selected_metrics(expr: promql_parser.Expr) -> set[str]:
    """The metric names an expression selects, walking the parsed tree."""
    if isinstance(expr, promql_parser.VectorSelector):
        return {expr.name} if expr.name else set()
    if isinstance(expr, promql_parser.MatrixSelector):
        return selected_metrics(expr.vector_selector)
    if isinstance(expr, promql_parser.BinaryExpr):
        return selected_metrics(expr.lhs) | selected_metrics(expr.rhs)
    if isinstance(expr, promql_parser.AggregateExpr):
        found = selected_metrics(expr.expr)
        return found | (selected_metrics(expr.param) if expr.param is not None else set())
    if isinstance(expr, promql_parser.Call):
        return set().union(*(selected_metrics(a) for a in expr.args))
    if isinstance(
        expr, promql_parser.ParenExpr | promql_parser.SubqueryExpr | promql_parser.UnaryExpr
    ):
        return selected_metrics(expr.expr)
    return set()
