"""The Helm charts: lint, Kubernetes 1.36 schemas, install and upgrade on a real API server,
and what the rendered manifests promise (labels, probes, hardening, wiring, routes).

Scenarios are the charts' `ci/*-values.yaml` files; each is rendered once per session.
"""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic_settings import BaseSettings

from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_audit.settings import AuditSettings
from claimflow_devstack.kube import HelmError, KubeCluster
from claimflow_intake.settings import IntakeSettings
from claimflow_operator.settings import OperatorSettings
from claimflow_shared.dburl import async_url

from .support import (
    CHARTS,
    NAMESPACE,
    RELEASE,
    REPO,
    SCENARIOS,
    THIRD_PARTY,
    ChartWorkspace,
    HookRunner,
    Scenario,
    offline_schema,
    prepare_namespace,
)

Docs = list[dict[str, Any]]
IDS = [s.id for s in SCENARIOS]
SERVICE_CHARTS = ("intake", "adjudication", "audit-log")
SETTINGS: dict[str, type[BaseSettings]] = {
    "intake": IntakeSettings,
    "adjudication": AdjudicationSettings,
    "audit-log": AuditSettings,
}
SECRETS_DIR = "/var/run/secrets/claimflow"
# The `uri` of a CloudNativePG `<cluster>-app` Secret, and the Secrets ci scenarios name.
CNPG_URI = "postgresql://app:ci-only@claimflow-intake-db-rw:5432/app"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
# The Secrets the data tier's operators create (k8s/data): CloudNativePG's app credentials and
# CA, Strimzi's KafkaUser password and cluster CA.
EXISTING_SECRETS = {
    "claimflow-intake-db-app": {"uri": CNPG_URI},
    "claimflow-intake-db-ca": {"ca.crt": CA_PEM},
    "claimflow-intake": {"password": "scram-password"},
    "claimflow-kafka-cluster-ca-cert": {"ca.crt": CA_PEM},
}
POD_KINDS = ("Deployment", "Job", "Pod")
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "helm.sh/chart",
)
KUBERNETES_VERSION = "1.36"


def by_kind(docs: Docs, kind: str) -> Docs:
    return [d for d in docs if d["kind"] == kind]


def component(doc: dict[str, Any]) -> str:
    return str(doc["metadata"]["labels"].get("app.kubernetes.io/component", ""))


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
    return spec


def config_maps(docs: Docs) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d["data"] for d in by_kind(docs, "ConfigMap")}


def entry_points() -> dict[str, str]:
    """Every console script of the services, to check the charts run real commands."""
    scripts: dict[str, str] = {}
    for pyproject in REPO.glob("services/*/pyproject.toml"):
        scripts.update(tomllib.loads(pyproject.read_text())["project"].get("scripts", {}))
    return scripts


# --- helm lint and the values schemas ---------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_helm_lint_strict(chart_workspace: ChartWorkspace, scenario: Scenario) -> None:
    result = chart_workspace.helm(
        "lint",
        "--strict",
        str(chart_workspace.chart(scenario.chart)),
        "-f",
        str(scenario.values_file),
    )
    assert "0 chart(s) failed" in result.stdout


def test_values_schema_files_are_current() -> None:
    spec = importlib.util.spec_from_file_location("values_schema", CHARTS / "values_schema.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path, text in module.schemas().items():
        assert path.read_text() == text, f"{path} is stale: run python charts/values_schema.py"


@pytest.mark.parametrize(
    ("chart", "typo"),
    [
        ("intake", "api.replicas=3"),
        ("audit-log", "networkPolicy.ingresFrom=null"),
        ("operator", "watchNamespace=default"),
        ("claimflow", "ingres.enabled=true"),
    ],
)
def test_values_schema_rejects_misspelt_values(
    chart_workspace: ChartWorkspace, chart: str, typo: str
) -> None:
    scenario = Scenario(chart, "defaults")
    with pytest.raises(HelmError, match=r"additional properties|additionalProperties"):
        chart_workspace.template(scenario, "--set", typo)


@pytest.mark.parametrize("chart", ["intake", "claimflow"])
def test_an_ingress_without_tls_is_refused_unless_insecure_is_allowed(
    chart_workspace: ChartWorkspace, chart: str
) -> None:
    scenario = Scenario(chart, "defaults")
    with pytest.raises(HelmError, match=r"ingress\.tls is empty: claims carry PHI"):
        chart_workspace.template(scenario, "--set", "ingress.enabled=true")
    plain = chart_workspace.template(
        scenario, "--set", "ingress.enabled=true", "--set", "ingress.allowInsecure=true"
    )
    (ingress,) = by_kind(plain, "Ingress")
    assert "tls" not in ingress["spec"]


@pytest.mark.parametrize("chart", ["audit-log", "claimflow"])
def test_an_httproute_attaches_only_to_https_listeners_unless_insecure_is_allowed(
    chart_workspace: ChartWorkspace, chart: str
) -> None:
    scenario = Scenario(chart, "defaults")
    (default,) = by_kind(
        chart_workspace.template(scenario, "--set", "httpRoute.enabled=true"), "HTTPRoute"
    )
    assert [ref["sectionName"] for ref in default["spec"]["parentRefs"]] == ["https"]
    any_listener = [
        "--set",
        "httpRoute.enabled=true",
        "--set-json",
        'httpRoute.parentRefs=[{"name": "public"}]',
    ]
    with pytest.raises(HelmError, match=r"public has no sectionName; claims carry PHI"):
        chart_workspace.template(scenario, *any_listener)
    allowed = chart_workspace.template(
        scenario, *any_listener, "--set", "httpRoute.allowInsecure=true"
    )
    (route,) = by_kind(allowed, "HTTPRoute")
    assert route["spec"]["parentRefs"] == [{"name": "public"}]


def test_generated_secret_requires_a_database_url(chart_workspace: ChartWorkspace) -> None:
    with pytest.raises(HelmError, match=r"set secrets\.databaseUrl, or name an existing Secret"):
        chart_workspace.template(Scenario("intake", "defaults"), "--set", "secrets.databaseUrl=")


# --- Kubernetes 1.36 schemas ------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_manifests_are_valid_kubernetes(rendered: dict[str, Docs], scenario: Scenario) -> None:
    for doc in rendered[scenario.id]:
        third_party = THIRD_PARTY.get((doc["apiVersion"], doc["kind"]))
        if third_party is None:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        else:
            # Not in kubernetes-validate's schemas: checked against the tests' minimal CRD.
            jsonschema.validate(doc["spec"], offline_schema(third_party[1]))


# --- install and upgrade on the real API server -----------------------------------------


def _objects(cluster: KubeCluster, path: str, selector: str) -> Docs:
    with cluster.client() as client:
        response = client.get(path, params={"labelSelector": selector})
    response.raise_for_status()
    items: Docs = response.json()["items"]
    return items


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_install_upgrade_and_helm_test(
    chart_cluster: tuple[KubeCluster, HookRunner],
    chart_workspace: ChartWorkspace,
    kube_namespace: str,
    scenario: Scenario,
) -> None:
    cluster, hooks = chart_cluster
    # Unique per install: ClusterRoles are named after the release.
    release = f"{scenario.chart[:5]}-{secrets.token_hex(3)}"
    chart = str(chart_workspace.chart(scenario.chart))
    common = ["-n", kube_namespace, "-f", str(scenario.values_file), "--timeout", "120s"]
    # The operator's Roles go into the namespaces it watches, which must exist.
    values = yaml.safe_load(scenario.values_file.read_text()) or {}
    with cluster.client() as client:
        for namespace in [kube_namespace, *values.get("watchNamespaces", [])]:
            prepare_namespace(client, namespace)
    cluster.helm("install", release, chart, *common)

    # The subchart whose settings the upgrade changes (the umbrella's: intake).
    target = "intake" if scenario.chart == "claimflow" else scenario.chart
    prefix = "intake." if scenario.chart == "claimflow" else ""
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/name={target}"
    ns_path = f"/apis/apps/v1/namespaces/{kube_namespace}/deployments"
    before = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        for d in _objects(cluster, ns_path, selector)
    }
    assert before, f"no Deployment of {target} installed"
    migrations = [k for k in hooks.completed if k[0] == "Job" and k[1] == kube_namespace]

    cluster.helm("upgrade", release, chart, *common, "--set", f"{prefix}logLevel=DEBUG")
    after = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        for d in _objects(cluster, ns_path, selector)
    }
    assert after.keys() == before.keys()
    assert all(after[name] != before[name] for name in before), "pods would not roll"
    maps = _objects(cluster, f"/api/v1/namespaces/{kube_namespace}/configmaps", selector)
    assert [m["data"]["CLAIMFLOW_LOG_LEVEL"] for m in maps] == ["DEBUG"]

    rendered_jobs = "migrate" if target in SERVICE_CHARTS else None
    if rendered_jobs and "minimal" not in scenario.name:
        assert migrations, "the migrations hook Job did not run on install"
    result = cluster.helm("test", release, "-n", kube_namespace, "--timeout", "60s")
    assert "Phase:" in result.stdout
    assert "Succeeded" in result.stdout


# --- what the rendered manifests promise -------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_every_object_carries_the_standard_labels(
    rendered: dict[str, Docs], scenario: Scenario
) -> None:
    for doc in rendered[scenario.id]:
        labels = doc["metadata"].get("labels", {})
        missing = [label for label in STANDARD_LABELS if label not in labels]
        assert not missing, f"{doc['kind']}/{doc['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        if doc["kind"] in POD_KINDS and doc["kind"] != "Pod":
            template_labels = doc["spec"]["template"]["metadata"]["labels"]
            assert set(STANDARD_LABELS) <= template_labels.keys()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_pods_are_hardened(rendered: dict[str, Docs], scenario: Scenario) -> None:
    pods = [d for d in rendered[scenario.id] if d["kind"] in POD_KINDS]
    assert pods
    for doc in pods:
        spec = pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        # Only the operator talks to the API server.
        assert spec["automountServiceAccountToken"] is (component(doc) == "operator")
        tmp = [v for v in spec["volumes"] if v["name"] == "tmp"]
        assert tmp
        assert "emptyDir" in tmp[0]
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["runAsNonRoot"] is True
            assert ctx["capabilities"]["drop"] == ["ALL"]
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]
            names = [e["name"] for e in container.get("env", [])]
            assert len(names) == len(set(names)), f"duplicate env in {doc['metadata']['name']}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_service_accounts_mount_no_token_but_the_operators(
    rendered: dict[str, Docs], scenario: Scenario
) -> None:
    for account in by_kind(rendered[scenario.id], "ServiceAccount"):
        expected = account["metadata"]["labels"]["app.kubernetes.io/name"] == "operator"
        assert account["automountServiceAccountToken"] is expected


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_deployments_probe_the_real_endpoints_and_run_real_commands(
    rendered: dict[str, Docs], scenario: Scenario
) -> None:
    scripts = entry_points()
    docs = rendered[scenario.id]
    configs = config_maps(docs)
    for deployment in by_kind(docs, "Deployment"):
        (container,) = pod_spec(deployment)["containers"]
        assert container["command"][0] in scripts, container["command"]
        if component(deployment) == "operator":
            assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
            continue
        # One console script per service, the process its subcommand: `claimflow-intake api`.
        assert container["command"][1:] == [component(deployment)], container["command"]
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        (port,) = container["ports"]
        config = configs[container["envFrom"][0]["configMapRef"]["name"]]
        setting = (
            "CLAIMFLOW_HTTP_PORT"
            if component(deployment) == "api"
            else "CLAIMFLOW_WORKER_HTTP_PORT"
        )
        assert config[setting] == str(port["containerPort"])
        assert config["CLAIMFLOW_HTTP_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_api_pods_keep_serving_while_they_are_taken_out_of_rotation(
    chart_workspace: ChartWorkspace, chart: str
) -> None:
    """The API's preStop sleep: the Service stops sending new connections before SIGTERM
    closes the listener; and a rollout takes an API pod out only once the new one has been
    ready for five seconds. Workers take no traffic and stop at once."""
    docs = chart_workspace.template(Scenario(chart, "defaults"))
    sleeps, ready_for = {}, {}
    for deployment in by_kind(docs, "Deployment"):
        (container,) = pod_spec(deployment)["containers"]
        sleeps[component(deployment)] = container.get("lifecycle", {}).get("preStop")
        ready_for[component(deployment)] = deployment["spec"]["minReadySeconds"]
    assert sleeps == {"api": {"exec": {"command": ["sleep", "10"]}}, "worker": None}
    assert ready_for == {"api": 5, "worker": 0}
    off = chart_workspace.template(Scenario(chart, "defaults"), "--set", "preStopSleepSeconds=0")
    assert all("lifecycle" not in pod_spec(d)["containers"][0] for d in by_kind(off, "Deployment"))
    with pytest.raises(HelmError, match=r"preStopSleepSeconds must be shorter than"):
        chart_workspace.template(
            Scenario(chart, "defaults"), "--set", "terminationGracePeriodSeconds=5"
        )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_pods_invite_prometheus_to_their_metrics_port(
    rendered: dict[str, Docs], scenario: Scenario
) -> None:
    for deployment in by_kind(rendered[scenario.id], "Deployment"):
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        (container,) = pod_spec(deployment)["containers"]
        metrics_port = next(
            p["containerPort"] for p in container["ports"] if p["name"] in {"http", "metrics"}
        )
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(metrics_port)
        assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize(
    "scenario", [s for s in SCENARIOS if s.chart in SERVICE_CHARTS], ids=lambda s: s.id
)
def test_settings_and_secret_files_reach_the_service(
    rendered: dict[str, Docs],
    scenario: Scenario,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ConfigMap as environment and the Secret as files, read by the service's settings."""
    docs = rendered[scenario.id]
    (config,) = config_maps(docs).values()
    api = next(d for d in by_kind(docs, "Deployment") if component(d) == "api")
    spec = pod_spec(api)
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "secrets")
    assert mount["mountPath"] == config["CLAIMFLOW_SECRETS_DIR"] == SECRETS_DIR
    (volume,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
    sources = volume["projected"]["sources"]
    generated = {s["metadata"]["name"]: s for s in by_kind(docs, "Secret")}
    if "existing-secret" in scenario.name:
        (source,) = sources
        assert not generated
        assert source["secret"]["name"].endswith("-credentials")
        return
    # What the kubelet would project: generated Secrets whole, existing ones by their items.
    for source in sources:
        secret = source["secret"]
        if secret["name"] in generated:
            files = generated[secret["name"]]["stringData"]
        else:
            data = EXISTING_SECRETS[secret["name"]]
            files = {item["path"]: data[item["key"]] for item in secret["items"]}
        for name, text in files.items():
            (tmp_path / name).write_text(text)
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings: Any = SETTINGS[scenario.chart](_secrets_dir=tmp_path)
    values = yaml.safe_load(scenario.values_file.read_text())
    expected_url = async_url(values["secrets"].get("databaseUrl") or CNPG_URI)
    assert settings.database_url.get_secret_value() == expected_url
    # Kafka: SASL_SSL as the service's own KafkaUser.
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_username == f"claimflow-{scenario.chart}"
    assert settings.kafka_sasl_password is not None
    if scenario.name == "cnpg":
        assert settings.kafka_sasl_password.get_secret_value() == "scram-password"
        assert config["CLAIMFLOW_KAFKA_SSL_CAFILE"] == f"{SECRETS_DIR}/claimflow_kafka_ca_cert"
        assert config["PGSSLROOTCERT"] == f"{SECRETS_DIR}/claimflow_database_ca_cert"
    # Keys are re-read from the mounted Secret when it changes.
    assert config["CLAIMFLOW_API_KEYS_FILE"] == f"{SECRETS_DIR}/claimflow_api_keys"
    # The chart's default holds production to a verified database, whatever the URL says.
    assert config["PGSSLMODE"] == "verify-full"
    assert [k.principal for k in settings.api_keys] == ["ci"]
    assert settings.http_host == "0.0.0.0"
    assert settings.http_port == spec["containers"][0]["ports"][0]["containerPort"]


def test_a_database_ca_reaches_the_service_as_libpqs_root_certificate(
    chart_workspace: ChartWorkspace,
) -> None:
    docs = chart_workspace.template(
        Scenario("intake", "defaults"), "--set-string", f"secrets.databaseCaCert={CA_PEM}"
    )
    (config,) = config_maps(docs).values()
    assert config["PGSSLROOTCERT"] == f"{SECRETS_DIR}/claimflow_database_ca_cert"
    (secret,) = by_kind(docs, "Secret")
    assert secret["stringData"]["claimflow_database_ca_cert"] == CA_PEM
    # Without one nothing points at a missing file.
    (plain,) = config_maps(chart_workspace.template(Scenario("intake", "defaults"))).values()
    assert "PGSSLROOTCERT" not in plain


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_migrations_run_as_a_hook_before_everything(
    rendered: dict[str, Docs], scenario: Scenario
) -> None:
    docs = rendered[scenario.id]
    jobs = by_kind(docs, "Job")
    charts = {
        d["metadata"]["labels"]["app.kubernetes.io/name"] for d in by_kind(docs, "Deployment")
    }
    expected = 0 if "minimal" in scenario.name else len(charts & set(SERVICE_CHARTS))
    assert len(jobs) == expected
    scripts = entry_points()
    for job in jobs:
        hook = job["metadata"]["annotations"]
        assert hook["helm.sh/hook"] == "pre-install,pre-upgrade"
        (container,) = pod_spec(job)["containers"]
        assert container["command"][0] in scripts
        assert container["command"][1:] == ["migrate"], container["command"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["CLAIMFLOW_SECRETS_DIR"] == SECRETS_DIR
    # Secrets the hook reads are hooks too, created first.
    for secret in by_kind(docs, "Secret"):
        annotations = secret["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(annotations["helm.sh/hook-weight"]) < 0


def test_cnpg_secret_key_uri_becomes_the_database_url_file(rendered: dict[str, Docs]) -> None:
    """existingSecretKeys {databaseUrl: uri}: CloudNativePG's key, under the settings' file
    name, in every pod that reads it; secretFiles bring the database's CA, the KafkaUser's
    password and the Kafka CA from their own Secrets; the API keys come from the generated
    Secret."""
    docs = rendered["intake-cnpg"]
    (generated,) = by_kind(docs, "Secret")
    assert set(generated["stringData"]) == {"claimflow_api_keys"}
    pods = [*by_kind(docs, "Deployment"), *by_kind(docs, "Job")]
    assert {component(d) for d in pods} == {"api", "worker", "migrate"}
    for doc in pods:
        volume = next(v for v in pod_spec(doc)["volumes"] if v["name"] == "secrets")
        assert volume["projected"]["sources"] == [
            {
                "secret": {
                    "name": "claimflow-intake-db-app",
                    "items": [{"key": "uri", "path": "claimflow_database_url"}],
                }
            },
            *(
                {"secret": {"name": name, "items": [{"key": key, "path": path}]}}
                for name, key, path in (
                    ("claimflow-intake-db-ca", "ca.crt", "claimflow_database_ca_cert"),
                    ("claimflow-kafka-cluster-ca-cert", "ca.crt", "claimflow_kafka_ca_cert"),
                    ("claimflow-intake", "password", "claimflow_kafka_sasl_password"),
                )
            ),
            {"secret": {"name": generated["metadata"]["name"]}},
        ]


def test_audit_owner_url_can_come_from_cnpg_too(chart_workspace: ChartWorkspace) -> None:
    docs = chart_workspace.template(
        Scenario("audit-log", "existing-secret"),
        *("--set", "existingSecretKeys.databaseUrl=uri"),
        *("--set", "secretFiles.kafkaSaslPassword.secret=claimflow-audit-log"),
        *("--set", "secretFiles.kafkaSaslPassword.key=password"),
        *("--set", "migrations.existingSecret=claimflow-audit-log-db-app"),
        *("--set", "migrations.existingSecretKeys.migrationDatabaseUrl=uri"),
    )
    (job,) = by_kind(docs, "Job")
    sources = next(v for v in pod_spec(job)["volumes"] if v["name"] == "secrets")["projected"]
    owner = {
        "secret": {
            "name": "claimflow-audit-log-db-app",
            "items": [{"key": "uri", "path": "claimflow_migration_database_url"}],
        }
    }
    assert owner in sources["sources"]
    for deployment in by_kind(docs, "Deployment"):
        assert "claimflow-audit-log-db-app" not in json.dumps(pod_spec(deployment))


def test_audit_owner_credentials_reach_the_migrations_only(rendered: dict[str, Docs]) -> None:
    docs = rendered["audit-log-defaults"]
    owner = "cf-audit-log-migrate-credentials"
    assert (
        "claimflow_migration_database_url"
        in next(s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == owner)["stringData"]
    )
    (job,) = by_kind(docs, "Job")
    sources = next(v for v in pod_spec(job)["volumes"] if v["name"] == "secrets")["projected"]
    assert {"secret": {"name": owner}} in sources["sources"]
    for deployment in by_kind(docs, "Deployment"):
        assert owner not in json.dumps(pod_spec(deployment))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_network_policies_admit_only_what_needs_in_and_out(
    rendered: dict[str, Docs], scenario: Scenario
) -> None:
    docs = rendered[scenario.id]
    policies = by_kind(docs, "NetworkPolicy")
    values = yaml.safe_load(scenario.values_file.read_text()) or {}
    for policy in policies:
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        for rule in spec["ingress"]:
            assert rule["from"], "an empty `from` admits every pod"
        ports = {p["port"] for rule in spec["egress"] for p in rule["ports"]}
        if component(policy) == "test":
            # The helm test Pod: DNS and the one port it calls, nothing in.
            assert not spec["ingress"]
            assert len(ports - {53}) == 1
            continue
        assert 53 in ports
        assert 9092 in ports
        assert (443 if component(policy) == "operator" else 5432) in ports
    # Every pod is covered when the policies are on (the test Pod always).
    covered = {(p["metadata"]["labels"]["app.kubernetes.io/name"], component(p)) for p in policies}
    for doc in docs:
        if doc["kind"] in POD_KINDS:
            name = doc["metadata"]["labels"]["app.kubernetes.io/name"]
            enabled = values.get("networkPolicy", values.get(name, {}).get("networkPolicy", {}))
            if enabled.get("enabled", True) or component(doc) == "test":
                assert (name, component(doc)) in covered, doc["metadata"]["name"]
    for policy in policies:
        if component(policy) == "api":
            peers = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
            test_peer = {"app.kubernetes.io/component": "test"}
            assert any(
                test_peer.items() <= p.get("podSelector", {}).get("matchLabels", {}).items()
                for p in peers
            )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_helm_test_hook_gets_a_rendered_service(
    rendered: dict[str, Docs], scenario: Scenario
) -> None:
    docs = rendered[scenario.id]
    services = {
        (s["metadata"]["name"], p["port"])
        for s in by_kind(docs, "Service")
        for p in s["spec"]["ports"]
    }
    tests = [
        p for p in by_kind(docs, "Pod") if p["metadata"]["annotations"]["helm.sh/hook"] == "test"
    ]
    assert tests
    for pod in tests:
        (container,) = pod["spec"]["containers"]
        assert container["command"][:2] == ["python", "-c"]
        match = re.fullmatch(
            r"http://([a-z0-9-]+):(\d+)/(readyz|metrics)", container["command"][-1]
        )
        assert match, container["command"][-1]
        assert (match[1], int(match[2])) in services


@pytest.mark.parametrize(
    "scenario",
    [s for s in SCENARIOS if s.name == "ha" or s.id == "claimflow-ha"],
    ids=lambda s: s.id,
)
def test_ha_autoscales_and_budgets_disruptions(
    rendered: dict[str, Docs], scenario: Scenario
) -> None:
    docs = rendered[scenario.id]
    deployments = {d["metadata"]["name"]: d for d in by_kind(docs, "Deployment")}
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in hpas}
    assert scaled == {n for n, d in deployments.items() if component(d) != "operator"}
    for name in scaled:
        assert "replicas" not in deployments[name]["spec"], "the HPA owns replicas"
    budgets = by_kind(docs, "PodDisruptionBudget")
    assert len(budgets) == len(scaled)
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        assert any(
            selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
            for d in deployments.values()
        )


@pytest.mark.parametrize("kind", ["Ingress", "HTTPRoute"])
def test_umbrella_routes_one_host_to_each_service(rendered: dict[str, Docs], kind: str) -> None:
    scenario = "claimflow-ingress" if kind == "Ingress" else "claimflow-httproute"
    docs = rendered[scenario]
    services = {
        s["metadata"]["name"]: s["spec"]["ports"][0]["port"]
        for s in by_kind(docs, "Service")
        if component(s) == "api"
    }
    (route,) = by_kind(docs, kind)
    if kind == "Ingress":
        (rule,) = route["spec"]["rules"]
        assert rule["host"] == "claimflow.example.com"
        routes = {
            p["path"]: (p["backend"]["service"]["name"], p["backend"]["service"]["port"]["number"])
            for p in rule["http"]["paths"]
        }
    else:
        assert route["spec"]["hostnames"] == ["claimflow.example.com"]
        routes = {
            r["matches"][0]["path"]["value"]: (
                r["backendRefs"][0]["name"],
                r["backendRefs"][0]["port"],
            )
            for r in route["spec"]["rules"]
        }
    assert routes == {
        "/v1/claims": ("cf-intake", 8080),
        "/v1/providers": ("cf-adjudication", 8081),
        "/v1/plans": ("cf-adjudication", 8081),
        "/v1/remittances": ("cf-adjudication", 8081),
        "/v1/audit": ("cf-audit-log", 8082),
    }
    for service, port in routes.values():
        assert services[service] == port


def test_umbrella_leaves_out_routes_of_disabled_charts(chart_workspace: ChartWorkspace) -> None:
    docs = chart_workspace.template(
        Scenario("claimflow", "minimal"),
        "--set",
        "ingress.enabled=true",
        "--set",
        "ingress.tls[0].secretName=claimflow-tls",
    )
    (ingress,) = by_kind(docs, "Ingress")
    paths = [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]]
    assert paths == ["/v1/claims"]


def test_umbrella_global_values_reach_every_service(rendered: dict[str, Docs]) -> None:
    docs = rendered["claimflow-existing-secret"]
    for config in config_maps(docs).values():
        assert (
            config["CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS"] == "kafka-0.kafka:9092,kafka-1.kafka:9092"
        )
        assert config["CLAIMFLOW_KAFKA_TOPIC_PREFIX"] == "prod."
        assert config["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://otel-collector.")
        assert config["OTEL_RESOURCE_ATTRIBUTES"] == "deployment.environment.name=production"
    images = {
        c["image"]
        for d in by_kind(rendered["claimflow-ingress"], "Deployment")
        for c in pod_spec(d)["containers"]
    }
    assert images == {
        f"registry.example.com/claimflow/claimflow-{name}:0.1.0"
        for name in ("intake", "adjudication", "audit-log", "operator")
    }


def test_dev_values_render(chart_workspace: ChartWorkspace) -> None:
    """skaffold's values file stays valid for the umbrella chart."""
    result = chart_workspace.helm(
        "template",
        RELEASE,
        str(chart_workspace.chart("claimflow")),
        "-f",
        str(CHARTS / "claimflow" / "values-dev.yaml"),
    )
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert len(by_kind(docs, "Deployment")) == 7


def test_local_values_render(chart_workspace: ChartWorkspace) -> None:
    """The local node's values file (tests/cluster installs it): the local images, never
    pulled; one replica of each process, the operator's among them; one Ingress, of the node's
    ingress controller's class, routing every API's paths on localhost over HTTPS."""
    result = chart_workspace.helm(
        "lint",
        "--strict",
        str(chart_workspace.chart("claimflow")),
        "-f",
        str(CHARTS / "claimflow" / "values-local.yaml"),
    )
    assert "0 chart(s) failed" in result.stdout
    result = chart_workspace.helm(
        "template",
        RELEASE,
        str(chart_workspace.chart("claimflow")),
        "-f",
        str(CHARTS / "claimflow" / "values-local.yaml"),
    )
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    deployments = by_kind(docs, "Deployment")
    assert len(deployments) == 7
    for deployment in deployments:
        assert deployment["spec"]["replicas"] == 1
    images = set()
    for doc in [*deployments, *by_kind(docs, "Job"), *by_kind(docs, "Pod")]:
        for container in pod_spec(doc)["containers"]:
            assert container["imagePullPolicy"] == "Never"
            images.add(container["image"])
    assert "claimflow-operator:0.1.0" in images
    (ingress,) = by_kind(docs, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert ingress["spec"]["tls"] == [{"secretName": "claimflow-local-tls", "hosts": ["localhost"]}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "localhost"
    routes = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    assert routes == {
        "/v1/claims": f"{RELEASE}-intake",
        "/v1/providers": f"{RELEASE}-adjudication",
        "/v1/plans": f"{RELEASE}-adjudication",
        "/v1/remittances": f"{RELEASE}-adjudication",
        "/v1/audit": f"{RELEASE}-audit-log",
    }


# --- the operator's contract ------------------------------------------------------------


OPERATOR_RULES = [
    {
        "apiGroups": ["claimflow.io"],
        "resources": ["benefitplans"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {
        "apiGroups": ["claimflow.io"],
        "resources": ["benefitplans/status"],
        "verbs": ["get", "patch"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]
CLUSTER_RULES = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
]


@pytest.mark.parametrize("name", ["defaults", "namespaced"])
def test_operator_runs_as_agreed(rendered: dict[str, Docs], name: str) -> None:
    docs = rendered[f"operator-{name}"]
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not by_kind(docs, "HorizontalPodAutoscaler")
    assert not by_kind(docs, "PodDisruptionBudget")
    (container,) = pod_spec(deployment)["containers"]
    assert container["command"] == ["claimflow-operator", "run"]
    assert container["image"].startswith("claimflow-operator:")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    (config,) = config_maps(docs).values()
    namespaces = "claims-team-a,claims-team-b" if name == "namespaced" else ""
    assert config["CLAIMFLOW_OPERATOR_NAMESPACES"] == namespaces
    assert config["CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert "CLAIMFLOW_KAFKA_TOPIC_PREFIX" in config
    # The operator's own settings read these: the probes and the scrape find what it serves.
    settings = OperatorSettings(
        **{
            k.removeprefix("CLAIMFLOW_").lower(): v
            for k, v in config.items()
            if k.startswith("CLAIMFLOW_OPERATOR_")
        },
        http_host=config["CLAIMFLOW_HTTP_HOST"],
    )
    assert settings.http_host == "0.0.0.0"
    assert (settings.operator_health_port, settings.operator_metrics_port) == (8080, 9090)
    assert settings.operator_namespaces == [n for n in namespaces.split(",") if n]
    (service,) = by_kind(docs, "Service")
    assert service["spec"]["ports"][0]["port"] == 9090

    cluster_roles = {r["metadata"]["name"]: r["rules"] for r in by_kind(docs, "ClusterRole")}
    assert cluster_roles.pop("cf-operator-cluster") == CLUSTER_RULES
    roles = by_kind(docs, "Role")
    if name == "namespaced":
        assert not cluster_roles
        assert sorted(r["metadata"]["namespace"] for r in roles) == [
            "claims-team-a",
            "claims-team-b",
        ]
        assert all(r["rules"] == OPERATOR_RULES for r in roles)
        assert len(by_kind(docs, "RoleBinding")) == 2
    else:
        assert cluster_roles == {"cf-operator-benefitplans": OPERATOR_RULES}
        assert not roles
    subjects = [
        s
        for b in by_kind(docs, "ClusterRoleBinding") + by_kind(docs, "RoleBinding")
        for s in b["subjects"]
    ]
    assert {(s["name"], s["namespace"]) for s in subjects} == {("cf-operator", NAMESPACE)}


# --- checkov, once over every rendered scenario ------------------------------------------

CHECKOV = REPO / ".cache" / "checkov" / "bin" / "checkov"
# Checks that do not fit these charts, each with the reason; nothing else may fail.
CHECKOV_SKIPS: dict[str, str] = {
    "CKV_K8S_15": "imagePullPolicy Always: the images are addressed by immutable tags, or by "
    "digest (image.digest); IfNotPresent spares a registry round trip per pod start and "
    "image.pullPolicy changes it",
    "CKV_K8S_43": "image by digest: a release-time choice (image.digest, or skaffold's "
    "tag@digest); the charts cannot know a digest before the image is built",
}
# Also skipped, per object and with the reason, by `checkov.io/skip*` annotations in the
# charts: CKV_K8S_38 on the operator's Deployment (it needs its token), CKV_K8S_8 and
# CKV_K8S_9 on the one-shot `helm test` Pods (no probes).


def test_checkov_finds_nothing_but_the_documented_exceptions(rendered_dir: Path) -> None:
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV.relative_to(REPO)}: run make venv")
    result = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(rendered_dir),
            "--framework",
            "kubernetes",
            "--compact",
            "-o",
            "json",
            "--skip-check",
            ",".join(CHECKOV_SKIPS) or "NONE",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = sorted(
        {
            (check["check_id"], check["resource"], Path(check["file_path"]).parent.name)
            for r in reports
            for check in r.get("results", {}).get("failed_checks", [])
        }
    )
    assert not failed, "\n".join(f"{c} {r} ({s})" for c, r, s in failed)
    passed = sum(len(r.get("results", {}).get("passed_checks", [])) for r in reports)
    assert passed > 0, result.stderr[-2000:]
