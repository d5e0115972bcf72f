"""Grafana provisioning: datasources linked both ways, dashboards Grafana will load."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from claimflow_shared.logs import JsonFormatter

from .k8s_files import OBSERVABILITY, load_yaml, objects_of

EXPECTED_UIDS = {
    "prometheus": "claimflow-prometheus",
    "tempo": "claimflow-tempo",
    "loki": "claimflow-loki",
}


def _by_type(datasources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["type"]: d for d in datasources}


def _uids(datasources: list[dict[str, Any]]) -> set[str]:
    return {d["uid"] for d in datasources}


def test_datasources_have_unique_fixed_uids(datasources: list[dict[str, Any]]) -> None:
    uids = [d["uid"] for d in datasources]
    assert len(uids) == len(set(uids))
    assert {t: d["uid"] for t, d in _by_type(datasources).items()} == EXPECTED_UIDS
    assert sum(1 for d in datasources if d.get("isDefault")) == 1
    for datasource in datasources:
        assert datasource["editable"] is False
        assert datasource["url"].startswith("http://")
        assert ".claimflow-observability.svc:" in datasource["url"]


def test_datasource_urls_name_existing_services(datasources: list[dict[str, Any]]) -> None:
    ports = {
        (s["metadata"]["name"], p["port"])
        for s in objects_of("Service", OBSERVABILITY)
        for p in s["spec"]["ports"]
    }
    for datasource in datasources:
        match = re.match(
            r"http://([a-z0-9-]+)\.claimflow-observability\.svc:(\d+)$", datasource["url"]
        )
        assert match, datasource["url"]
        assert (match.group(1), int(match.group(2))) in ports


def test_traces_link_to_logs_and_metrics(datasources: list[dict[str, Any]]) -> None:
    tempo = _by_type(datasources)["tempo"]["jsonData"]
    uids = _uids(datasources)
    assert tempo["tracesToLogsV2"]["datasourceUid"] == EXPECTED_UIDS["loki"]
    assert tempo["tracesToLogsV2"]["filterByTraceID"] is True
    assert tempo["tracesToMetrics"]["datasourceUid"] == EXPECTED_UIDS["prometheus"]
    assert tempo["tracesToMetrics"]["queries"]
    for key in ("serviceMap", "lokiSearch"):
        assert tempo[key]["datasourceUid"] in uids


def test_logs_and_metrics_link_to_traces(datasources: list[dict[str, Any]]) -> None:
    by_type = _by_type(datasources)
    derived = by_type["loki"]["jsonData"]["derivedFields"]
    assert derived
    assert all(f["datasourceUid"] == EXPECTED_UIDS["tempo"] for f in derived)
    exemplars = by_type["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert exemplars
    assert all(e["datasourceUid"] == EXPECTED_UIDS["tempo"] for e in exemplars)


@pytest.fixture
def json_log_line() -> Iterator[tuple[str, str]]:
    """A real log line from the services' formatter, written inside a span."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("intake"))
    logger = logging.getLogger("claimflow.k8s-test")
    logger.addHandler(handler)
    logger.propagate = False
    tracer = TracerProvider().get_tracer(__name__)
    try:
        with tracer.start_as_current_span("submit") as span:
            logger.warning("claim accepted")
            trace_id = format(span.get_span_context().trace_id, "032x")
        yield stream.getvalue().strip(), trace_id
    finally:
        logger.removeHandler(handler)


def test_derived_field_finds_the_trace_id_in_a_real_log_line(
    datasources: list[dict[str, Any]], json_log_line: tuple[str, str]
) -> None:
    line, trace_id = json_log_line
    derived = _by_type(datasources)["loki"]["jsonData"]["derivedFields"]
    regex_field = next(f for f in derived if f["matcherType"] == "regex")
    match = re.search(regex_field["matcherRegex"], line)
    assert match is not None, line
    assert match.group(1) == trace_id
    # "$$" in the file is Grafana's escape for a literal "$".
    assert regex_field["url"] == "$${__value.raw}"


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


@pytest.mark.parametrize("key", ["uid", "title", "schemaVersion", "panels"])
def test_dashboards_have_what_provisioning_requires(
    dashboards: dict[str, dict[str, Any]], key: str
) -> None:
    assert dashboards
    for name, dashboard in dashboards.items():
        assert dashboard.get(key), (name, key)
        assert "id" not in dashboard or dashboard["id"] is None, name


def test_dashboard_uids_are_unique_and_short(dashboards: dict[str, dict[str, Any]]) -> None:
    uids = [d["uid"] for d in dashboards.values()]
    assert len(uids) == len(set(uids))
    # Grafana rejects uids longer than 40 characters.
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", u) for u in uids)


def test_every_panel_and_target_uses_a_provisioned_datasource(
    dashboards: dict[str, dict[str, Any]], datasources: list[dict[str, Any]]
) -> None:
    by_uid = {d["uid"]: d["type"] for d in datasources}
    for name, dashboard in dashboards.items():
        ids = [p["id"] for p in _panels(dashboard)]
        assert len(ids) == len(set(ids)), name
        for panel in _panels(dashboard):
            if panel["type"] == "row":
                continue
            refs = [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
            assert panel["targets"], (name, panel["title"])
            for ref in refs:
                assert by_uid.get(ref["uid"]) == ref["type"], (name, panel["title"], ref)
        for variable in dashboard.get("templating", {}).get("list", []):
            if "datasource" in variable:
                assert variable["datasource"]["uid"] in by_uid, variable["name"]


def test_pipeline_dashboard_shows_what_sres_ask_for(dashboards: dict[str, dict[str, Any]]) -> None:
    dashboard = dashboards["claims-pipeline.json"]
    exprs = " ".join(
        t.get("expr", "") for p in _panels(dashboard) if p["type"] != "row" for t in p["targets"]
    )
    for metric in (
        "claimflow_claims_accepted_total",  # submit rate
        "claimflow_claims_adjudicated_total",  # adjudication outcomes
        "claimflow_http_request_duration_seconds_bucket",  # latency percentiles
        "claimflow_consumer_lag",
        "claimflow_outbox_backlog",
        "claimflow_audit_chain_length",
    ):
        assert metric in exprs, metric
    assert "histogram_quantile(0.99" in exprs


def test_provider_loads_the_folder_grafana_mounts_the_dashboards_in() -> None:
    provider = load_yaml(OBSERVABILITY / "grafana" / "dashboards.yaml")["providers"][0]
    grafana = next(
        d for d in objects_of("Deployment", OBSERVABILITY) if d["metadata"]["name"] == "grafana"
    )
    container = grafana["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert mounts["dashboards"] == provider["options"]["path"]
    assert mounts["datasources"] == f"{env['GF_PATHS_PROVISIONING']}/datasources"
    assert mounts["dashboard-providers"] == f"{env['GF_PATHS_PROVISIONING']}/dashboards"
    assert provider["type"] == "file"
    # The admin password is never in the repository.
    password = next(e for e in container["env"] if e["name"] == "GF_SECURITY_ADMIN_PASSWORD")
    assert "secretKeyRef" in password["valueFrom"]
