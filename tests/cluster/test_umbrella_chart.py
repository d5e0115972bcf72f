"""The umbrella chart installed on the real single-node Kubernetes, over the local data tier.

What a newcomer does (docs/kubernetes.md, "On the local node"), end to end: the seven images
(four services, the fake payments system, Kafka, PostgreSQL) are imported into the node's
containerd; k8s/data/local runs Kafka and PostgreSQL as StatefulSets on hostPath volumes and
the fake payments system beside them; `helm install --wait` with
charts/claimflow/values-local.yaml runs the migrations hook Jobs (the real job controller) and
waits for every Deployment, the operator's among them, which publishes the example
BenefitPlans applied to the namespace before onto the plans topic (the adjudication worker is
ready once it has a plan); `helm test` passes. Then a claim goes
in through the release's Ingress, served by the node's ingress controller (Traefik, built
here: claimflow_devstack.traefik) over HTTPS on 127.0.0.1, with the values file's API key,
and is followed: accepted, adjudicated
by the adjudication worker with its net fee, paid by the payments system's stand-in that
k8s/data/local runs (claimflow-payments-fake), counted in the top providers, on the audit
log's timeline, whose hash chain verifies, and one trace in what the gateway Collector of
k8s/observability (a pod of the namespace) exported, without PHI. Prometheus, with the
stack's configuration and rules, scrapes every pod and fires ClaimflowConsumerGone while the
adjudication worker is scaled to zero under load. Then the release is rolled by `helm upgrade`
and back by `helm rollback` under load without a failed request, and goes through chaos (a pod
of every Deployment and the broker deleted under load) without a claim lost or counted twice.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from claimflow_devstack import otelcol, skaffold, traefik
from claimflow_devstack.docker_engine import DockerEngine
from claimflow_devstack.images import (
    build_local_images,
    local_cluster_images,
    service_images,
    version,
)
from claimflow_devstack.kube import run_helm
from claimflow_devstack.kube_node import KubeNode, run_ingress_controller
from claimflow_devstack.paths import example_plans_dir, repo_root
from claimflow_devstack.processes import free_port
from claimflow_devstack.promtool import prometheus_image
from claimflow_devstack.tls import issue_server_certificate

from .observability import (
    COLLECTOR_USER,
    RULES,
    collector_objects,
    exported_spans,
    prometheus_objects,
)
from .timeline import Timeline

REPO = repo_root()
CHARTS = REPO / "charts"
LOCAL_DATA = REPO / "k8s" / "data" / "local"
VALUES = CHARTS / "claimflow" / "values-local.yaml"
# The local values, every service sending its spans to the Collector of the namespace.
VALUES_ARGS = ("--values", str(VALUES), "--set", "global.otlpEndpoint=http://otel-collector:4318")
# skaffold.yaml's name for it, which its test deploys to.
RELEASE = "claimflow"
# The label every object of the release carries.
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"
# The key values-local.yaml configures for every service (its sha256 is in the file).
API_KEY = "local-only-api-key"
SERVICES = ("intake", "adjudication", "audit-log")
# The umbrella's subcharts.
SUBCHARTS = (*SERVICES, "operator")
OPERATOR = f"{RELEASE}-operator"
# The release's Deployments: each service's API and worker, and the operator.
DEPLOYMENTS = {f"{RELEASE}-{s}-{p}" for s in SERVICES for p in ("api", "worker")} | {OPERATOR}
# The data tier's volumes: the image's user owns each (hostPath ignores fsGroup).
VOLUMES = {"kafka": 10001, "postgres": 10002}
WAIT = "300s"
CLAIM = {
    "lines": [
        {
            "service_date": "2024-03-01",
            # A periodic evaluation: diagnostic, covered in full by GRP-1000's plan.
            "submitted_procedure": "D0120",
            "plan_group": "GRP-1000",
            "subscriber_number": "SUB-4410027",
            "provider_npi": "1234567893",
            "provider_fees": "100.00",
            "allowed_fees": "80.00",
            "member_coinsurance": "20.00",
            "member_copay": "0.00",
        }
    ]
}
# provider fees + member coinsurance + member copay - allowed fees
NET_FEE = "40.00"
# A claim id no claim has.
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
# The span attribute that names the claim on every Kafka span (the message's key).
KEY = "messaging.kafka.message.key"
AUDITED_TYPES = {
    "io.claimflow.claim.submitted.v1",
    "io.claimflow.claim.adjudicated.v1",
    "io.claimflow.payment.requested.v1",
    "io.claimflow.payment.completed.v1",
}


@dataclass(frozen=True)
class Release:
    node: KubeNode
    namespace: str
    env: dict[str, str]
    chart: Path
    timings: dict[str, float]
    # Where the Collector in the namespace writes what it exports (a hostPath).
    exports: Path

    def kubectl(self, *args: str, timeout: float = 120.0) -> str:
        return self.node.kubectl("-n", self.namespace, *args, timeout=timeout).stdout

    def get(self, *what: str) -> dict[str, Any]:
        """`kubectl get KIND [NAME]` in the release's namespace, as JSON."""
        found: dict[str, Any] = json.loads(self.kubectl("get", *what, "-o", "json"))
        return found

    def helm(self, *args: str, timeout: float = 300.0) -> str:
        argv = [*args, "--namespace", self.namespace, "--kubeconfig", str(self.node.kubeconfig)]
        return run_helm(argv, env=self.env, timeout=timeout).stdout


def _wait_for(check: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> None:
    """`what` may be a function, to say what was still missing when the time ran out."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            pytest.fail(f"{said}: not within {timeout:.0f}s")
        time.sleep(1.0)


def _volumes(node: KubeNode, namespace: str, root: Path) -> list[dict[str, Any]]:
    """A static hostPath volume per StatefulSet, pre-bound to its claim: the labels the
    manifests select by, and claimRef so that no other namespace's claim takes it."""
    objects = []
    for name, uid in VOLUMES.items():
        path = root / name
        path.mkdir(parents=True)
        shutil.chown(path, uid, uid)
        path.chmod(0o700)
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {
                    "name": f"{namespace}-{name}",
                    "labels": {"claimflow.io/volume": name},
                },
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "claimflow-local",
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": str(path), "type": "Directory"},
                    "claimRef": {"namespace": namespace, "name": f"data-claimflow-{name}-0"},
                },
            }
        )
    return objects


def _chart_workspace(root: Path) -> tuple[Path, dict[str, str]]:
    """A copy of charts/ with the umbrella's file:// dependencies packaged, as `make charts`
    does in place; helm's cache and config stay in `root`."""
    shutil.copytree(CHARTS, root / "charts", ignore=shutil.ignore_patterns("charts"))
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(root / "helm" / "cache"),
        "HELM_CONFIG_HOME": str(root / "helm" / "config"),
        "HELM_DATA_HOME": str(root / "helm" / "data"),
    }
    for chart in (*SUBCHARTS, "claimflow"):
        run_helm(["dependency", "update", "--skip-refresh", str(root / "charts" / chart)], env=env)
    return root / "charts" / "claimflow", env


@pytest.fixture(scope="module")
def release(
    kube_node: KubeNode, docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    timings: dict[str, float] = {}
    started = time.monotonic()

    def lap(what: str) -> None:
        nonlocal started
        timings[what] = round(time.monotonic() - started, 1)
        started = time.monotonic()

    work = tmp_path_factory.mktemp("umbrella")
    build_local_images(docker_engine)  # `make test`'s prepare built them: cache hits
    # What `python -m claimflow_devstack.kube node images` imports.
    kube_node.import_docker_images(docker_engine, local_cluster_images())
    lap("images")
    namespace = f"cf-{secrets.token_hex(4)}"
    volumes_root = kube_node.data_dir / "volumes" / namespace
    volumes = _volumes(kube_node, namespace, volumes_root)
    exports = volumes_root / "otel-export"
    exports.mkdir()
    shutil.chown(exports, COLLECTOR_USER, COLLECTOR_USER)
    kube_node.load_image(otelcol.image())
    try:
        kube_node.kubectl("create", "namespace", namespace)
        chart, env = _chart_workspace(work)
        release = Release(kube_node, namespace, env, chart, timings, exports)
        kube_node.apply(volumes)
        kube_node.apply(collector_objects(namespace, exports))
        release.kubectl("apply", "-k", str(LOCAL_DATA))
        for name in ("kafka", "postgres"):
            release.kubectl(
                "rollout", "status", f"statefulset/claimflow-{name}", f"--timeout={WAIT}",
                timeout=330.0,
            )  # fmt: skip
        release.kubectl(
            "rollout", "status", "deployment/otel-collector", f"--timeout={WAIT}", timeout=330.0
        )
        lap("data tier and Collector ready")
        # The plans are declared before the release: the adjudication worker is ready only
        # once it has a plan to apply, which the release's operator publishes. (helm leaves a
        # CRD that exists as it is.)
        kube_node.kubectl("apply", "-f", str(CHARTS / "operator" / "crds"))
        kube_node.kubectl(
            "wait", "--for=condition=Established", "crd/benefitplans.claimflow.io",
            f"--timeout={WAIT}", timeout=330.0,
        )  # fmt: skip
        release.kubectl("apply", "-f", str(example_plans_dir()))
        release.helm(
            "install", RELEASE, str(chart), *VALUES_ARGS, "--wait", "--timeout", "10m",
            timeout=660.0,
        )  # fmt: skip
        lap("helm install --wait")
        release.kubectl(
            "wait", "--for=condition=Published", "benefitplans", "--all", f"--timeout={WAIT}",
            timeout=330.0,
        )  # fmt: skip
        # Started with the data tier; it waits for Kafka as a service's worker does.
        release.kubectl(
            "rollout", "status", "deployment/claimflow-payments-fake", f"--timeout={WAIT}",
            timeout=330.0,
        )  # fmt: skip
        lap("payments fake ready")
        yield release
    finally:
        started = time.monotonic()
        # The release first, while Kafka and PostgreSQL still run: its processes then close
        # their connections cleanly instead of waiting on a broker that is gone until their
        # grace period runs out (a namespace's deletion stops every pod at once).
        run_helm(
            [
                "uninstall", RELEASE, "--namespace", namespace, "--ignore-not-found",
                "--wait", "--timeout", "5m", "--kubeconfig", str(kube_node.kubeconfig),
            ],
            timeout=330.0,
        )  # fmt: skip
        # `helm uninstall --wait` returns before the pods are gone. Waiting for them keeps
        # the Collector up while they flush their last spans to it on their way out; if it
        # went with the namespace, they would retry until their grace period ran out. (Only
        # the Deployments' pods: the migrations hooks' Jobs outlive an uninstall.)
        kube_node.kubectl(
            "-n", namespace, "wait", "--for=delete", "pod", "--timeout=120s",
            "-l", f"{INSTANCE},app.kubernetes.io/component in (api,worker)",
            timeout=150.0, check=False,
        )  # fmt: skip
        lap("release uninstalled")
        # The namespace controller deletes the rest; the kubelet stops their containers.
        kube_node.kubectl(
            "delete", "namespace", namespace, "--ignore-not-found", "--timeout=300s",
            timeout=330.0,
        )  # fmt: skip
        kube_node.kubectl(
            "delete", "persistentvolume", *[v["metadata"]["name"] for v in volumes],
            "--ignore-not-found", "--timeout=120s",
        )  # fmt: skip
        shutil.rmtree(volumes_root, ignore_errors=True)
        lap("namespace deleted")
        print(f"umbrella chart on the node, seconds: {timings}")


def test_the_release_migrated_and_every_deployment_is_available(release: Release) -> None:
    jobs = {j["metadata"]["name"]: j["status"] for j in release.get("jobs")["items"]}
    # The hook Jobs ran to completion before helm created the Deployments.
    for service in SERVICES:
        assert jobs[f"{RELEASE}-{service}-migrate"].get("succeeded") == 1, jobs

    deployments = {d["metadata"]["name"]: d for d in release.get("deployments")["items"]}
    # Beside the release's own, the local tier's stand-in for the payments system and the
    # gateway Collector.
    assert set(deployments) == DEPLOYMENTS | {"claimflow-payments-fake", "otel-collector"}
    for beside in ("claimflow-payments-fake", "otel-collector"):
        assert deployments[beside]["status"]["readyReplicas"] == 1, beside
    for deployment in (deployments[name] for name in DEPLOYMENTS):
        conditions = {c["type"]: c["status"] for c in deployment["status"]["conditions"]}
        assert conditions["Available"] == "True", deployment["metadata"]["name"]
        assert deployment["status"]["readyReplicas"] == 1
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["imagePullPolicy"] == "Never"
        assert container["image"].endswith(f":{version()}")
    # The local data tier's pods: one each, on the volumes made for this namespace.
    claims = {c["metadata"]["name"]: c for c in release.get("pvc")["items"]}
    assert {c["spec"]["volumeName"] for c in claims.values()} == {
        f"{release.namespace}-{name}" for name in VOLUMES
    }
    assert {c["status"]["phase"] for c in claims.values()} == {"Bound"}


def test_helm_test_passes(release: Release) -> None:
    # helm exits non-zero when a test hook fails; each test Pod comes with its NetworkPolicy,
    # a hook of the same name.
    output = release.helm("test", RELEASE, timeout=300.0)
    phases: dict[str, list[str]] = {}
    for block in output.split("TEST SUITE:")[1:]:
        name, *lines = block.splitlines()
        phase = next(line for line in lines if line.startswith("Phase:"))
        phases.setdefault(name.strip(), []).append(phase.split()[1])
    assert set(phases) == {f"{RELEASE}-{chart}-test" for chart in SUBCHARTS}, output
    assert {p for found in phases.values() for p in found} == {"Succeeded"}, output
    # The test Pods are hook-succeeded: deleted once they passed.
    assert not [p for p in release.get("pods")["items"] if p["metadata"]["name"].endswith("-test")]


@dataclass(frozen=True)
class Entry:
    """The release's Ingress, as its clients reach it: every API's paths at one HTTPS address,
    with the API key of values-local.yaml."""

    url: str
    ca_file: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        trusted = ssl.create_default_context(cafile=str(self.ca_file))
        auth = {"Authorization": f"Bearer {API_KEY}"}
        return httpx.Client(base_url=self.url, headers=auth, verify=trusted, **kwargs)


# A path of each API the Ingress routes; each answers a problem (404) for an unknown id.
ROUTED = (
    f"/v1/claims/{UNKNOWN_ID}",
    "/v1/providers/1234567893",
    f"/v1/audit/claims/{UNKNOWN_ID}",
)


def _routed(client: httpx.Client) -> bool:
    """Each API answers through the Ingress (not the controller's own 404 or 503)."""
    try:
        answers = [client.get(path) for path in ROUTED]
    except httpx.TransportError:
        return False
    return all(a.headers.get("content-type", "").startswith("application/") for a in answers)


@pytest.fixture(scope="module")
def ingress(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Entry]:
    """The node's ingress controller (claimflow_devstack.traefik) in the release's namespace,
    serving its Ingress (values-local.yaml: class traefik, host localhost) on 127.0.0.1 with
    a certificate for localhost that a CA of the test's signed."""
    certificate = issue_server_certificate(tmp_path_factory.mktemp("ingress"), "localhost")
    release.kubectl(
        "create", "secret", "tls", "claimflow-local-tls",
        f"--cert={certificate.cert_file}", f"--key={certificate.key_file}",
    )  # fmt: skip
    try:
        # What `python -m claimflow_devstack.kube node ingress NAMESPACE` runs.
        url = run_ingress_controller(
            release.namespace,
            release.node.data_dir,
            https_port=free_port(),
            ping_port=free_port(),
        )
        entry = Entry(url, certificate.ca_file)
        with entry.client(timeout=10.0) as client:
            _wait_for(lambda: _routed(client), 60, "every API through the Ingress")
        yield entry
    finally:
        binding = traefik.cluster_role_binding_name(release.namespace)
        release.node.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")


def _plans_applied(client: httpx.Client) -> dict[str, tuple[str, int]]:
    """The adjudication API's plans in force: source and version by name."""
    plans = client.get("/v1/plans").json()["plans"]
    return {p["plan_id"]: (p["source"], p["version"]) for p in plans}


def test_the_operator_publishes_each_plan_and_adjudication_applies_it(
    release: Release, ingress: Entry
) -> None:
    """The operator in the cluster (the API server through the `kubernetes` Service, with
    its ServiceAccount) judged each example BenefitPlan valid and put it on the plans topic,
    from which the adjudication API applies it at its generation; an edit of a plan goes the
    same way, at the next generation."""
    plans = release.get("benefitplans")["items"]
    assert {p["metadata"]["name"] for p in plans} == {
        yaml.safe_load(f.read_text())["metadata"]["name"]
        for f in example_plans_dir().glob("*.yaml")
    }
    for plan in plans:
        conditions = {c["type"]: c for c in plan["status"]["conditions"]}
        for kind in ("Valid", "Published"):
            assert conditions[kind]["status"] == "True", plan["status"]
            assert conditions[kind]["observedGeneration"] == plan["metadata"]["generation"]
    expected = {p["metadata"]["name"]: ("topic", p["metadata"]["generation"]) for p in plans}
    with ingress.client(timeout=10.0) as client:
        _wait_for(lambda: _plans_applied(client) == expected, 60, "every plan applied")
        edit = {"spec": {"displayName": "GRP-1000 employer plan, edited"}}
        release.kubectl("patch", "benefitplan", "grp-1000", "--type=merge", "-p", json.dumps(edit))
        expected["grp-1000"] = ("topic", expected["grp-1000"][1] + 1)
        _wait_for(
            lambda: _plans_applied(client) == expected,
            60,
            lambda: f"the edit applied: {_plans_applied(client)} != {expected}",
        )
        applied = client.get("/v1/plans/grp-1000").json()
    assert applied["display_name"] == edit["spec"]["displayName"]


def test_a_claim_is_accepted_adjudicated_paid_and_audited(release: Release, ingress: Entry) -> None:
    with ingress.client(timeout=10.0) as client:
        submitted = client.post("/v1/claims", json=CLAIM)
        assert submitted.status_code == 202, submitted.text
        claim_id = submitted.json()["id"]
        location = submitted.headers["Location"]

        claim: dict[str, Any] = {}

        def settled() -> bool:
            claim.update(client.get(location).json())
            return claim["status"] not in {"queued", "adjudicated"}

        # The workers' consumer groups form on the first claim; on two busy cores that can
        # take a while.
        _wait_for(settled, 180, "intake seeing the claim paid")
        assert claim["status"] == "paid", claim
        assert claim["totals"]["net_fee"] == NET_FEE
        outcome = claim["adjudication"]
        assert outcome["outcome"] == "complete"
        assert outcome["plan_id"].endswith("grp-1000"), outcome
        assert outcome["totals"]["net_fee"] == NET_FEE
        (line,) = claim["lines"]
        assert line["adjudication"]["outcome"] == "approved"

        # The provider's only claim, to the cent (the load tests' claims have their own).
        top = client.get("/v1/providers/top", params={"limit": 5})
        assert top.status_code == 200, top.text
        npi = CLAIM["lines"][0]["provider_npi"]
        ours = [p for p in top.json()["providers"] if p["provider_npi"] == npi]
        assert ours == [{"provider_npi": npi, "net_fee_total": NET_FEE, "claim_count": 1}]

        events: list[dict[str, Any]] = []

        def audited() -> bool:
            response = client.get(f"/v1/audit/claims/{claim_id}")
            events[:] = response.json().get("events", []) if response.status_code == 200 else []
            return {e["type"] for e in events} >= AUDITED_TYPES

        _wait_for(audited, 120, "the claim's audit timeline")

        verified = client.get("/v1/audit/verify")
        assert verified.status_code == 200, verified.text
        report = verified.json()
        assert report["valid"] is True, report
        assert report["checked"] >= len(events)

    # The Collector received the claim as one trace, from its submission through
    # adjudication, payment and the audit log (the Kafka spans carry the claim's id as the
    # message key; each read of the claim is audited in a trace of its own), and what it
    # exported holds neither the subscriber number nor the date of service.
    traced: dict[str, set[str]] = {}

    def exported() -> bool:
        spans = exported_spans(release.exports)
        submitted = {
            s["traceId"]
            for s in spans
            if s["attributes"].get(KEY) == claim_id and s["name"] == "claims.submitted publish"
        }
        traced.clear()
        for span in spans:
            if span["traceId"] in submitted:
                traced.setdefault(span["traceId"], set()).add(span["service"])
        return len(traced) == 1 and set(SERVICES) <= next(iter(traced.values()))

    _wait_for(exported, 60, lambda: f"the claim's trace exported: {traced}")
    text = (release.exports / "traces.jsonl").read_text()
    line = CLAIM["lines"][0]
    for phi in (line["subscriber_number"], line["service_date"]):
        assert phi not in text


@pytest.fixture(scope="module")
def prometheus(release: Release) -> str:
    """Prometheus in the release's namespace; its API's URL on 127.0.0.1."""
    assert release.node.cluster is not None
    port = free_port()
    release.node.load_image(prometheus_image())
    release.node.apply(prometheus_objects(release.namespace, release.node.cluster.server, port))
    release.kubectl(
        "rollout", "status", "deployment/prometheus", f"--timeout={WAIT}", timeout=330.0
    )
    return f"http://127.0.0.1:{port}"


def test_prometheus_scrapes_every_pod_and_evaluates_every_rule(
    release: Release, prometheus: str
) -> None:
    """Every pod of the release (and the Collector) is a target that is up, every rule of
    rules.yaml evaluates without error on what they report, and with claims flowing no
    pipeline alert fires."""
    expected = _release_pod_names(release)
    expected |= {
        p["metadata"]["name"]
        for p in release.get("pods", "-l", "app.kubernetes.io/name=otel-collector")["items"]
    }
    up: set[str] = set()
    rules: list[dict[str, Any]] = []

    def scraped() -> bool:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]
        up.clear()
        up.update(
            t["labels"]["pod"]
            for t in targets["activeTargets"]
            if t["labels"].get("job") == "kubernetes-pods" and t["health"] == "up"
        )
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules[:] = [r for g in groups for r in g["rules"]]
        # "unknown" until a rule's first evaluation, "err" when it failed.
        return expected <= up and bool(rules) and all(r["health"] == "ok" for r in rules)

    def missing() -> str:
        failing = [(r["name"], r["health"], r.get("lastError")) for r in rules]
        failing = [f for f in failing if f[1] != "ok"]
        return f"targets up: {sorted(up)} of {sorted(expected)}; rules not ok: {failing}"

    _wait_for(scraped, 120, missing)
    written = yaml.safe_load(RULES.read_text())
    assert {r["name"] for r in rules} == {
        r.get("alert") or r.get("record") for g in written["groups"] for r in g["rules"]
    }
    firing = [r["name"] for r in rules if r.get("type") == "alerting" and r["state"] == "firing"]
    assert firing == []
    # The services' own series arrive: the claim of the test before was accepted and adjudicated.
    for metric in ("claimflow_claims_accepted_total", "claimflow_claims_adjudicated_total"):
        result = httpx.get(
            f"{prometheus}/api/v1/query", params={"query": f"sum({metric})"}, timeout=10
        ).json()["data"]["result"]
        assert result, metric
        assert float(result[0]["value"][1]) >= 1, metric


# The load tests' claims: a provider of their own each, a net fee of 1.00 a claim.
UPGRADE_NPI = "1497775530"
CHAOS_NPI = "1244567891"
SCALED_NPI = "1356789010"
SKAFFOLD_NPI = "1679576722"


def _load_claim(npi: str, number: int) -> dict[str, Any]:
    """The `number`th claim of a load: a member of its own, or adjudication would deny it as
    a duplicate of the one before (or over the evaluation's yearly limit)."""
    line = CLAIM["lines"][0] | {
        "subscriber_number": f"SUB-{npi}-{number}",
        "provider_npi": npi,
        "provider_fees": "10.00",
        "allowed_fees": "9.00",
        "member_coinsurance": "0.00",
    }
    return {"lines": [line]}


class _Load:
    """Claims posted through the Ingress, each read back from intake, adjudication and the
    audit log, until stopped or `claims` are accepted: every answer is counted, every failure
    kept. A claim is posted with an Idempotency-Key and, as a careful client does, posted
    again with it until it is accepted, so that each claim is accepted exactly once whatever
    fails. One connection per request, as many clients of an Ingress each have their own."""

    def __init__(self, entry: Entry, npi: str, claims: int | None = None) -> None:
        self.entry = entry
        self.npi = npi
        self.claims = claims
        self.accepted: list[str] = []
        self.answered = 0
        self.failures: list[str] = []
        # When each failure happened (monotonic), to be matched with a Timeline.
        self.failed_at: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def __enter__(self) -> _Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=180)

    def finish(self, timeout: float) -> None:
        """Waits until the load has had its `claims` accepted."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            pytest.fail(f"{len(self.accepted)} of {self.claims} claims accepted in {timeout}s")

    def _request(
        self, client: httpx.Client, method: str, url: str, ok: set[int], **kw: Any
    ) -> httpx.Response | None:
        try:
            response = client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self._failed(f"{method} {url}: {exc!r}")
            return None
        self.answered += 1
        if response.status_code not in ok:
            self._failed(f"{method} {url}: {response.status_code} {response.text[:200]}")
            return None
        return response

    def _failed(self, what: str) -> None:
        self.failures.append(what)
        self.failed_at.append(time.monotonic())

    def _submit(self, client: httpx.Client) -> str:
        """One claim, accepted: posted again with its key after any failure (never given up
        on, since it may have been stored)."""
        url = "/v1/claims"
        body = _load_claim(self.npi, len(self.accepted))
        headers = {"Idempotency-Key": secrets.token_hex(16)}
        while True:
            posted = self._request(client, "POST", url, {202}, json=body, headers=headers)
            if posted is not None:
                return str(posted.json()["id"])
            time.sleep(0.5)

    def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with self.entry.client(timeout=30.0, limits=limits) as client:
            while not self._stop.is_set() and len(self.accepted) != self.claims:
                claim_id = self._submit(client)
                self.accepted.append(claim_id)
                self._request(client, "GET", f"/v1/claims/{claim_id}", {200})
                # Not audited, or no claim of the provider's adjudicated, yet: answers too.
                self._request(client, "GET", f"/v1/audit/claims/{claim_id}", {200, 404})
                self._request(client, "GET", f"/v1/providers/{self.npi}", {200, 404})
                self._stop.wait(0.05)

    def wait_for_answers(self, count: int, timeout: float) -> None:
        start = self.answered
        _wait_for(lambda: self.answered - start >= count, timeout, f"{count} answers under load")


def _timeline(release: Release) -> Timeline:
    return Timeline(release.node, release.namespace, f"{INSTANCE},app.kubernetes.io/component=api")


def _answered_every_request(release: Release, load: _Load, timeline: Timeline) -> None:
    """Fails, if any request failed, with what the API pods, their endpoints and kube-proxy
    went through around each failure and the namespace's Warning events (probe failures,
    restarts)."""
    if not load.failures:
        return
    warnings = release.kubectl(
        "get", "events", "--field-selector=type=Warning", "--sort-by=.lastTimestamp"
    )
    pytest.fail(
        f"{len(load.failures)} of {load.answered} requests failed: {load.failures[:10]}\n"
        f"The API pods, the endpoints and kube-proxy's syncs around the failures:\n"
        f"{timeline.around(load.failed_at)}\nWarning events:\n{warnings}"
    )


def _settled_once(entry: Entry, load: _Load) -> None:
    """Every claim the load had accepted is paid, counted once in its provider's totals, and
    on the audit timeline with each of its four pipeline events once; the chain verifies."""
    assert len(set(load.accepted)) == len(load.accepted)
    with entry.client(timeout=30.0) as client:
        unpaid = dict.fromkeys(load.accepted, "")

        def all_paid() -> bool:
            for claim_id in list(unpaid):
                status = client.get(f"/v1/claims/{claim_id}").json()["status"]
                if status == "paid":
                    del unpaid[claim_id]
                else:
                    unpaid[claim_id] = status
            return not unpaid

        _wait_for(all_paid, 300, lambda: f"claims paid (still {Counter(unpaid.values())})")
        total = client.get(f"/v1/providers/{load.npi}").json()
        assert total["claim_count"] == len(load.accepted), total
        assert Decimal(total["net_fee_total"]) == len(load.accepted) * Decimal("1.00"), total

        unaudited = set(load.accepted)
        timelines: dict[str, Counter[str]] = {}

        def all_audited() -> bool:
            for claim_id in list(unaudited):
                response = client.get(f"/v1/audit/claims/{claim_id}")
                if response.status_code == 200:
                    timelines[claim_id] = Counter(e["type"] for e in response.json()["events"])
                    if set(timelines[claim_id]) >= AUDITED_TYPES:
                        unaudited.discard(claim_id)
            return not unaudited

        _wait_for(all_audited, 300, lambda: f"audit timelines ({len(unaudited)} incomplete)")
        # The pipeline's events once each; the reads of the timeline are audited too, each.
        twice = {c: t for c, t in timelines.items() if {t[k] for k in AUDITED_TYPES} != {1}}
        assert not twice, f"{len(twice)} timelines with an event twice: {list(twice.items())[:5]}"
        verified = client.get("/v1/audit/verify").json()
        assert verified["valid"] is True, verified


def _consumer_gone(prometheus: str) -> list[dict[str, Any]]:
    """The ClaimflowConsumerGone alerts about adjudication, from Prometheus's alerts API."""
    alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [
        a
        for a in alerts
        if a["labels"]["alertname"] == "ClaimflowConsumerGone"
        and a["labels"].get("service") == "adjudication"
    ]


@pytest.mark.timeout(900)
def test_the_adjudication_worker_scaled_to_zero_fires_an_alert_until_it_is_back(
    release: Release, ingress: Entry, prometheus: str
) -> None:
    """With claims arriving, the adjudication worker is scaled to zero: its consumer group
    stops reporting, and Prometheus fires ClaimflowConsumerGone (the lag alert cannot: lag is
    what the workers report). Scaled back to one, the alert resolves, and every claim accepted
    meanwhile is adjudicated, paid and counted once."""
    worker = f"deployment/{RELEASE}-adjudication-worker"
    assert _consumer_gone(prometheus) == []
    started = time.monotonic()
    with _timeline(release) as timeline, _Load(ingress, SCALED_NPI, claims=300) as load:
        release.kubectl("scale", worker, "--replicas=0")

        def firing() -> bool:
            return any(a["state"] == "firing" for a in _consumer_gone(prometheus))

        # Pending from the first evaluation without the worker's series, firing 2 min later.
        _wait_for(firing, 300, "ClaimflowConsumerGone firing for adjudication")
        fired = time.monotonic() - started
        release.kubectl("scale", worker, "--replicas=1")
        release.kubectl("rollout", "status", worker, f"--timeout={WAIT}", timeout=330.0)
        _wait_for(lambda: _consumer_gone(prometheus) == [], 180, "the alert resolved")
        resolved = time.monotonic() - started
        load.finish(300)
    _answered_every_request(release, load, timeline)
    print(f"worker at zero: alert firing after {fired:.0f}s, resolved at {resolved:.0f}s")
    _settled_once(ingress, load)


def _release_pods(release: Release) -> dict[str, list[dict[str, Any]]]:
    """The release's Deployments' pods (not its Jobs'), by Deployment."""
    pods: dict[str, list[dict[str, Any]]] = {}
    for pod in release.get("pods", "-l", INSTANCE)["items"]:
        owners = pod["metadata"].get("ownerReferences", [])
        if any(o["kind"] == "ReplicaSet" for o in owners):
            name = pod["metadata"]["name"].rsplit("-", 2)[0]
            pods.setdefault(name, []).append(pod)
    return pods


def _release_pod_names(release: Release) -> set[str]:
    return {p["metadata"]["name"] for found in _release_pods(release).values() for p in found}


def _rolled_from(release: Release, before: set[str], what: str) -> set[str]:
    """Waits until every Deployment runs one ready pod, none of `before`, and no pod of theirs
    is still terminating; returns the new pods' names."""
    current: set[str] = set()

    def settled() -> bool:
        pods = _release_pods(release)
        flat = [p for found in pods.values() for p in found]
        current.clear()
        current.update(p["metadata"]["name"] for p in flat)
        return (
            set(pods) == DEPLOYMENTS
            and all(len(found) == 1 for found in pods.values())
            and not current & before
            and all(
                c.get("ready") for p in flat for c in p["status"].get("containerStatuses", [{}])
            )
            and not any(p["metadata"].get("deletionTimestamp") for p in flat)
        )

    _wait_for(settled, 180, what)
    return set(current)


def _log_levels(release: Release) -> set[str]:
    maps = release.get("configmaps", "-l", INSTANCE)["items"]
    return {m["data"]["CLAIMFLOW_LOG_LEVEL"] for m in maps if "CLAIMFLOW_LOG_LEVEL" in m["data"]}


@pytest.mark.timeout(900)
def test_helm_upgrade_and_rollback_roll_every_deployment_without_a_failed_request(
    release: Release, ingress: Entry
) -> None:
    """A changed setting rolls every Deployment (the ConfigMap's checksum is in the pod
    template); while it does, and while `helm rollback` rolls them back, the APIs answer every
    request through the Ingress: a new pod has been ready for minReadySeconds before the old
    one is taken out (maxSurge), which keeps serving through its preStop sleep while the
    ingress controller stops routing to it, then finishes its requests in flight."""
    original = _release_pod_names(release)
    assert _log_levels(release) == {"INFO"}
    upgraded = [f"--set={chart}.logLevel=WARNING" for chart in SUBCHARTS]
    started = time.monotonic()
    with _timeline(release) as timeline, _Load(ingress, UPGRADE_NPI) as load:
        load.wait_for_answers(20, 60)
        release.helm(
            "upgrade", RELEASE, str(release.chart), *VALUES_ARGS, *upgraded,
            "--wait", "--timeout", "10m",
            timeout=660.0,
        )  # fmt: skip
        assert _log_levels(release) == {"WARNING"}
        rolled = _rolled_from(release, original, "every Deployment rolled by the upgrade")
        load.wait_for_answers(20, 60)
        release.helm("rollback", RELEASE, "1", "--wait", "--timeout", "10m", timeout=660.0)
        assert _log_levels(release) == {"INFO"}
        _rolled_from(release, rolled, "every Deployment rolled back")
        load.wait_for_answers(20, 60)
    _answered_every_request(release, load, timeline)
    history = json.loads(release.helm("history", RELEASE, "--output", "json"))
    assert [(h["revision"], h["status"]) for h in history][-3:] == [
        (1, "superseded"),
        (2, "superseded"),
        (3, "deployed"),
    ]
    print(
        f"under upgrade and rollback: {load.answered} answers, {len(load.accepted)} claims "
        f"in {time.monotonic() - started:.0f}s"
    )
    # Nothing accepted meanwhile was lost or counted twice.
    started = time.monotonic()
    _settled_once(ingress, load)
    print(f"settled and checked in {time.monotonic() - started:.0f}s")


@pytest.mark.timeout(900)
def test_a_pod_of_each_deployment_and_the_broker_deleted_under_load_lose_and_double_nothing(
    release: Release, ingress: Entry
) -> None:
    """Chaos, bounded: 500 claims through the Ingress; once 100 are in, one pod of every
    Deployment (the payments stand-in's too) and the Kafka broker's pod are deleted. Requests
    may fail while they come back; every claim accepted is paid, counted and audited once."""
    started = time.monotonic()
    with _Load(ingress, CHAOS_NPI, claims=500) as load:
        _wait_for(lambda: len(load.accepted) >= 100, 120, "100 claims accepted before the faults")
        deployments = release.get("deployments")["items"]
        victims = ["claimflow-kafka-0"]
        # Not the tests' observer and their entry (each pod holds a port of the node's
        # loopback): Prometheus, and the ingress controller, which a cluster runs replicated.
        observers = {"prometheus", traefik.NAME}
        deployments = [d for d in deployments if d["metadata"]["name"] not in observers]
        for deployment in deployments:
            labels = deployment["spec"]["selector"]["matchLabels"]
            selector = ",".join(f"{k}={v}" for k, v in labels.items())
            pods = release.get("pods", "-l", selector)["items"]
            victims.append(pods[0]["metadata"]["name"])
        # Among them the release's seven, the payments stand-in and the Collector.
        names = {d["metadata"]["name"] for d in deployments}
        assert DEPLOYMENTS | {"claimflow-payments-fake", "otel-collector"} <= names
        release.kubectl("delete", "pod", *victims, "--wait=false")
        load.finish(600)
    print(
        f"under chaos: {len(load.accepted)} claims, {load.answered} answers, "
        f"{len(load.failures)} failed requests in {time.monotonic() - started:.0f}s"
    )
    for deployment in deployments:
        release.kubectl(
            "rollout", "status", f"deployment/{deployment['metadata']['name']}", "--timeout=300s",
            timeout=330.0,
        )  # fmt: skip
    started = time.monotonic()
    _settled_once(ingress, load)
    print(f"settled and checked in {time.monotonic() - started:.0f}s")


def _deployed_images(release: Release) -> dict[str, set[str]]:
    """The images each of the release's Deployments runs: its template's and its pods'."""
    found: dict[str, set[str]] = {}
    for deployment in release.get("deployments", "-l", INSTANCE)["items"]:
        containers = deployment["spec"]["template"]["spec"]["containers"]
        found[deployment["metadata"]["name"]] = {c["image"] for c in containers}
    for name, pods in _release_pods(release).items():
        for pod in pods:
            found[name] |= {c["image"] for c in pod["spec"]["containers"]}
    return found


@pytest.mark.timeout(900)
def test_skaffold_builds_the_images_onto_the_node_and_runs_them_in_the_release(
    release: Release, ingress: Entry, docker_engine: DockerEngine, tmp_path: Path
) -> None:
    """skaffold.yaml's profile local-node, as `kube skaffold` runs it: `skaffold build` builds
    the four images in the devstack's engine on the local bases, and its hook imports each
    into the node; `skaffold run` builds them again (every layer cached: the same images)
    and upgrades the release, which skaffold.yaml names as this module does, to them. Claims
    through the Ingress are then paid by pods of those images, and the engine still has the
    images `make images` built under the same names."""
    env = skaffold.environment(docker_engine, release.node, tmp_path / "skaffold")
    output = tmp_path / "build.json"
    started = time.monotonic()
    skaffold.run(
        ["build", "-p", skaffold.PROFILE, f"--file-output={output}"],
        env=env, cwd=REPO, log_path=tmp_path / "skaffold-build.log",
    )  # fmt: skip
    built_in = time.monotonic() - started
    built = {b["imageName"]: b["tag"] for b in json.loads(output.read_text())["builds"]}
    assert set(built) == {image.name for image in service_images()}
    for tag in built.values():
        labels = json.loads(
            docker_engine.docker(
                "image", "inspect", "--format", "{{json .Config.Labels}}", tag
            ).stdout
        )
        assert labels["org.opencontainers.image.version"] == version(), labels
    started = time.monotonic()
    skaffold.run(
        ["run", "-p", skaffold.PROFILE, f"--namespace={release.namespace}"],
        env=env, cwd=REPO, log_path=tmp_path / "skaffold-run.log",
    )  # fmt: skip
    print(f"skaffold build {built_in:.0f}s, run {time.monotonic() - started:.0f}s")
    history = json.loads(release.helm("history", RELEASE, "--output", "json"))
    assert history[-1]["status"] == "deployed"
    assert history[-1]["revision"] > history[-2]["revision"]
    # Every process of the release on skaffold's images, the pods of the release before it gone.
    expected = {
        f"{RELEASE}-{s}-{p}": {built[f"claimflow-{s}"]} for s in SERVICES for p in ("api", "worker")
    } | {OPERATOR: {built["claimflow-operator"]}}
    _wait_for(
        lambda: _deployed_images(release) == expected,
        180,
        lambda: f"the release on skaffold's images: {_deployed_images(release)} != {expected}",
    )
    with _Load(ingress, SKAFFOLD_NPI, claims=20) as load:
        load.finish(120)
    _settled_once(ingress, load)
    # skaffold prunes other images of an artifact's name unless its cache is on.
    for tag in local_cluster_images():
        docker_engine.docker("image", "inspect", tag)
