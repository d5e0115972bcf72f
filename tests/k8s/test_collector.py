"""The Collector configurations: pipelines well-formed, memory limiter first, PHI removed.

The configurations are held to the project's own definition of PHI
(claimflow_shared.logs.PHI_FIELDS) twice: read as data (the attribute patterns are RE2; the
ones used here are in the subset Python's re reads alike), and run by the real Collector,
built from its Go modules (claimflow_devstack.otelcol), which must accept both
configurations and must export spans carrying every spelling of PHI without any of it.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from claimflow_devstack.go_tools import OTELCOL
from claimflow_devstack.otelcol import Collector
from claimflow_devstack.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver
from claimflow_shared.logs import PHI_FIELDS

from .k8s_files import OBSERVABILITY, objects_of

SECTIONS = ("receivers", "processors", "exporters", "connectors", "extensions")

# Spellings of the same PHI other instrumentation (or a future claimflow attribute) uses,
# beyond the names the log guard knows.
PHI_SPELLINGS = [
    "claim.subscriber_number",
    "claimflow.subscriber.id",
    "subscriberId",
    "member.id",
    "memberNumber",
    "line.service_date",
    "serviceDate",
    "dos",
    "patient.birth_date",
    "dateOfBirth",
    "dob",
    "patient.name",
    "patient_name",
    "subscriber.name",
    "first_name",
    "lastName",
]
# Attributes the traces are useless without; none of them is PHI.
NOT_PHI = [
    "service.name",
    "claim.id",
    "claimflow.claim_id",
    "http.route",
    "http.response.status_code",
    "messaging.destination.name",
    "messaging.kafka.message.key",
    "db.system",
    "db.name",
    "provider_npi",
    "plan_group",
    "outcome",
    "k8s.pod.name",
    "host.name",
]


def _component_type(name: str) -> str:
    return name.partition("/")[0]


def _pipeline_processors(config: dict[str, Any]) -> dict[str, list[str]]:
    pipelines: dict[str, Any] = config["service"]["pipelines"]
    return {name: list(p.get("processors", [])) for name, p in pipelines.items()}


def _check_structure(config: dict[str, Any]) -> None:
    defined = {s: set(config.get(s) or {}) for s in SECTIONS}
    used: dict[str, set[str]] = {s: set() for s in SECTIONS}
    for name, pipeline in config["service"]["pipelines"].items():
        assert _component_type(name) in {"traces", "metrics", "logs"}, name
        assert pipeline["receivers"], name
        assert pipeline["exporters"], name
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                assert component in defined[section], f"{name}: {component} is not defined"
                used[section].add(component)
        processors = pipeline.get("processors", [])
        # The limiter must see data before anything else allocates for it.
        assert processors[0] == "memory_limiter", name
        # Batching is last, so it batches what is actually exported.
        assert processors[-1] == "batch", name
    for section in ("receivers", "processors", "exporters"):
        assert defined[section] == used[section], f"unused {section}"
    assert set(config["service"].get("extensions", [])) == defined["extensions"]


def test_gateway_pipelines_are_well_formed(collector_config: dict[str, Any]) -> None:
    _check_structure(collector_config)
    assert set(collector_config["service"]["pipelines"]) == {"traces", "metrics", "logs"}


def test_agent_pipelines_are_well_formed(agent_config: dict[str, Any]) -> None:
    _check_structure(agent_config)


def test_every_signal_goes_to_its_backend(collector_config: dict[str, Any]) -> None:
    pipelines = collector_config["service"]["pipelines"]
    exporters = collector_config["exporters"]
    assert pipelines["traces"]["exporters"] == ["otlp_grpc/tempo"]
    assert exporters["otlp_grpc/tempo"]["endpoint"] == "tempo.claimflow-observability.svc:4317"
    assert pipelines["metrics"]["exporters"] == ["otlp_http/prometheus"]
    assert exporters["otlp_http/prometheus"]["metrics_endpoint"].startswith(
        "http://prometheus.claimflow-observability.svc:9090/api/v1/otlp"
    )
    assert pipelines["logs"]["exporters"] == ["otlp_http/loki"]
    assert exporters["otlp_http/loki"]["logs_endpoint"].startswith(
        "http://loki.claimflow-observability.svc:3100/otlp"
    )


def test_endpoints_name_services_and_ports_that_exist(
    collector_config: dict[str, Any], agent_config: dict[str, Any]
) -> None:
    ports = {
        (s["metadata"]["name"], p["port"])
        for s in objects_of("Service", OBSERVABILITY)
        for p in s["spec"]["ports"]
    }
    endpoint_re = re.compile(r"^(?:https?://)?([a-z0-9-]+)\.claimflow-observability\.svc:(\d+)")
    for config in (collector_config, agent_config):
        for exporter in config["exporters"].values():
            for key in ("endpoint", "metrics_endpoint", "logs_endpoint", "traces_endpoint"):
                if key in exporter:
                    match = endpoint_re.match(exporter[key])
                    assert match, exporter[key]
                    assert (match.group(1), int(match.group(2))) in ports, exporter[key]


def _deleted_patterns(config: dict[str, Any]) -> list[re.Pattern[str]]:
    actions = config["processors"]["attributes/phi"]["actions"]
    return [re.compile(a["pattern"]) for a in actions if a["action"] == "delete" and "pattern" in a]


def _deleted_keys(config: dict[str, Any]) -> set[str]:
    actions = config["processors"]["attributes/phi"]["actions"]
    return {a["key"] for a in actions if a["action"] == "delete" and "key" in a}


def _masked_patterns(config: dict[str, Any]) -> list[re.Pattern[str]]:
    redaction = config["processors"]["redaction/phi"]
    return [re.compile(p) for p in redaction["blocked_key_patterns"]]


def _removed(config: dict[str, Any], key: str) -> bool:
    return key in _deleted_keys(config) or any(p.search(key) for p in _deleted_patterns(config))


def _masked(config: dict[str, Any], key: str) -> bool:
    return any(p.fullmatch(key) for p in _masked_patterns(config))


def test_phi_processors_run_in_every_pipeline_before_export(
    collector_config: dict[str, Any],
) -> None:
    for name, processors in _pipeline_processors(collector_config).items():
        assert "attributes/phi" in processors, name
        assert "redaction/phi" in processors, name
        assert processors.index("attributes/phi") < processors.index("redaction/phi"), name


@pytest.mark.parametrize("key", sorted(PHI_FIELDS))
def test_the_log_guards_phi_fields_are_deleted_and_masked(
    collector_config: dict[str, Any], key: str
) -> None:
    for spelling in (key, f"claimflow.{key}", f"claim.line.{key}", key.upper()):
        assert _removed(collector_config, spelling), spelling
        # Defence in depth: the redaction processor would mask it even if the delete missed.
        assert _masked(collector_config, spelling), spelling


@pytest.mark.parametrize("key", PHI_SPELLINGS)
def test_other_spellings_of_phi_are_deleted(collector_config: dict[str, Any], key: str) -> None:
    assert _removed(collector_config, key)


@pytest.mark.parametrize("key", ["db.statement", "db.query.text"])
def test_database_statements_are_deleted(collector_config: dict[str, Any], key: str) -> None:
    assert _removed(collector_config, key)


@pytest.mark.parametrize("key", NOT_PHI)
def test_useful_attributes_survive(collector_config: dict[str, Any], key: str) -> None:
    assert not _removed(collector_config, key)
    assert not _masked(collector_config, key)


def test_redaction_keeps_other_keys_and_reports_only_counts(
    collector_config: dict[str, Any],
) -> None:
    redaction = collector_config["processors"]["redaction/phi"]
    # An allow-list would drop every attribute a new instrumentation adds; the PHI block-list
    # is what this processor is for. "info" reports counts, never the names of what it masked.
    assert redaction["allow_all_keys"] is True
    assert redaction["summary"] == "info"
    assert "hash_function" not in redaction  # a hashed subscriber number can be enumerated


def test_gateway_deployment_sets_the_memory_limit_the_limiter_uses(
    collector_config: dict[str, Any],
) -> None:
    limiter = collector_config["processors"]["memory_limiter"]
    assert 0 < limiter["spike_limit_percentage"] < limiter["limit_percentage"] <= 90
    for workload in (
        *objects_of("Deployment", OBSERVABILITY),
        *objects_of("DaemonSet", OBSERVABILITY),
    ):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            if "opentelemetry-collector" not in container["image"]:
                continue
            assert "memory" in container["resources"]["limits"]
            env = {e["name"]: e for e in container["env"]}
            assert env["GOMEMLIMIT"]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.memory"


def test_agent_reads_claimflow_pod_logs_and_keeps_trace_context(
    agent_config: dict[str, Any],
) -> None:
    filelog = agent_config["receivers"]["filelog"]
    assert all(p.startswith("/var/log/pods/claimflow") for p in filelog["include"])
    assert filelog["exclude"] == ["/var/log/pods/claimflow-observability_*/*/*.log"]
    json_parser = next(o for o in filelog["operators"] if o["type"] == "json_parser")
    assert json_parser["trace"]["trace_id"]["parse_from"] == "attributes.trace_id"
    assert json_parser["trace"]["span_id"]["parse_from"] == "attributes.span_id"
    # The agent sends to the gateway, never straight to Loki: PHI processing happens there.
    assert list(agent_config["exporters"]) == ["otlp_grpc/gateway"]


# -- the real Collector ------------------------------------------------------------------


def _validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(OTELCOL.ensure_built()), "validate", f"--config=file:{config}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_collector_accepts_the_gateway_configuration() -> None:
    result = _validate(OBSERVABILITY / "otel-collector" / "config.yaml")
    assert result.returncode == 0, result.stderr


def test_the_collector_accepts_the_agent_configuration(
    agent_config: dict[str, Any], tmp_path: Path
) -> None:
    # The agent's offsets directory is the DaemonSet's hostPath mount; here, a directory of
    # the test's (the extension refuses one that does not exist).
    agent_config["extensions"]["file_storage"]["directory"] = str(tmp_path)
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump(agent_config))
    result = _validate(config)
    assert result.returncode == 0, result.stderr
    # Validation is not a rubber stamp: an unknown component is refused.
    agent_config["processors"]["no_such_processor"] = {}
    config.write_text(yaml.safe_dump(agent_config))
    refused = _validate(config)
    assert refused.returncode != 0
    assert "no_such_processor" in refused.stderr


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Collector, OtlpReceiver]]:
    """The gateway configuration run by the real Collector, exporting to a receiver."""
    with otlp_receiver() as receiver:
        collector = Collector.start(tmp_path_factory.mktemp("otelcol"), receiver.endpoint)
        try:
            yield collector, receiver
        finally:
            collector.stop()


def _export_span(endpoint: str, attributes: dict[str, str]) -> str:
    """One span with `attributes`, sent as the services send theirs; returns its trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": "phi-probe"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{endpoint}/v1/traces")))
    with provider.get_tracer(__name__).start_as_current_span(
        "probe", attributes=attributes
    ) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def _exported(receiver: OtlpReceiver, trace_id: str) -> ReceivedSpan:
    # The configuration batches for up to 5 s before it exports.
    deadline = time.monotonic() + 30
    while not (spans := receiver.spans(trace_id)):
        if time.monotonic() > deadline:
            pytest.fail("the Collector exported nothing within 30s")
        time.sleep(0.2)
    (span,) = spans
    return span


def test_the_collector_exports_spans_without_phi_and_with_everything_else(
    gateway: tuple[Collector, OtlpReceiver],
) -> None:
    collector, receiver = gateway
    phi_keys = {
        *PHI_SPELLINGS,
        *(f(key) for key in PHI_FIELDS for f in (str, "claimflow.{}".format, str.upper)),
        "db.statement",
        "db.query.text",
    }
    # Each PHI value is findable anywhere in what comes out.
    phi = {key: f"PHI-{n}-SUB-7730189502-2019-07-14" for n, key in enumerate(sorted(phi_keys))}
    # Missed by every delete pattern, caught by the redaction processor's block-list.
    phi["claimflow.subscriber_hint"] = "PHI-masked-SUB-7730189502"
    kept = {key: f"kept-{key}" for key in NOT_PHI}
    trace_id = _export_span(collector.otlp_http_endpoint, phi | kept)

    span = _exported(receiver, trace_id)
    assert span.service == "phi-probe"
    assert "PHI-" not in json.dumps(span.attributes)
    assert not phi_keys & set(span.attributes), "a PHI attribute was exported"
    # The second line masked what the first let through, and says how many, not which.
    assert span.attributes["claimflow.subscriber_hint"] == "****"
    assert span.attributes["redaction.masked.count"] == 1
    assert {k: span.attributes.get(k) for k in kept} == kept


def test_the_collector_reports_what_it_received_and_sent(
    gateway: tuple[Collector, OtlpReceiver],
) -> None:
    """Its own metrics, which Prometheus scrapes (service::telemetry), count spans in and out."""
    collector, receiver = gateway
    _exported(receiver, _export_span(collector.otlp_http_endpoint, {"claim.id": "c-1"}))
    metrics = httpx.get(collector.metrics_url, timeout=10).text
    for family in ("otelcol_receiver_accepted_spans", "otelcol_exporter_sent_spans"):
        assert re.search(rf"^{family}(_total)?{{[^}}]*}} [1-9]", metrics, re.MULTILINE), family
