"""The umbrella chart installed on the real single-node Kubernetes, over the local data tier.

What a newcomer does (docs/kubernetes.md, "On the local node"), end to end: the seven images
(four services, the fake payments system, Kafka, PostgreSQL) are imported into the node's
containerd; k8s/data/local runs Kafka and PostgreSQL as StatefulSets on hostPath volumes and
the fake payments system beside them; a Job of the adjudication
image publishes the example BenefitPlans onto the plans topic from inside the cluster; `helm
install --wait` with charts/claimflow/values-local.yaml runs the migrations hook Jobs (the
real job controller) and waits for every Deployment; `helm test` passes. Then a claim goes
in through intake's API with the values file's API key and is followed: accepted, adjudicated
by the adjudication worker with its net fee, paid by the payments system's stand-in that
k8s/data/local runs (claimflow-payments-fake), counted in the top providers, and on the
audit log's timeline, whose hash chain verifies.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from claimflow_devstack.docker_engine import DockerEngine
from claimflow_devstack.images import build_local_images, local_cluster_images, version
from claimflow_devstack.kube import run_helm
from claimflow_devstack.kube_node import KubeNode
from claimflow_devstack.paths import example_plans_dir, repo_root

REPO = repo_root()
CHARTS = REPO / "charts"
LOCAL_DATA = REPO / "k8s" / "data" / "local"
VALUES = CHARTS / "claimflow" / "values-local.yaml"
RELEASE = "cf"
# The key values-local.yaml configures for every service (its sha256 is in the file).
API_KEY = "local-only-api-key"
SERVICES = ("intake", "adjudication", "audit-log")
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

    def kubectl(self, *args: str, timeout: float = 120.0) -> str:
        return self.node.kubectl("-n", self.namespace, *args, timeout=timeout).stdout

    def get(self, *what: str) -> dict[str, Any]:
        """`kubectl get KIND [NAME]` in the release's namespace, as JSON."""
        found: dict[str, Any] = json.loads(self.kubectl("get", *what, "-o", "json"))
        return found

    def helm(self, *args: str, timeout: float = 300.0) -> str:
        argv = [*args, "--namespace", self.namespace, "--kubeconfig", str(self.node.kubeconfig)]
        return run_helm(argv, env=self.env, timeout=timeout).stdout


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s")
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


def _publish_plans_job(namespace: str) -> list[dict[str, Any]]:
    """The example BenefitPlans onto the plans topic, from a pod, as the operator would."""
    plans = {p.name: p.read_text() for p in sorted(example_plans_dir().glob("*.yaml"))}
    restricted = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "benefit-plans", "namespace": namespace},
            "data": plans,
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "publish-plans", "namespace": namespace},
            "spec": {
                "backoffLimit": 3,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "automountServiceAccountToken": False,
                        "containers": [
                            {
                                "name": "publish",
                                "image": f"claimflow-adjudication:{version()}",
                                "imagePullPolicy": "Never",
                                "command": ["claimflow-adjudication", "publish-plans", "/plans"],
                                "env": [
                                    {
                                        "name": "CLAIMFLOW_KAFKA_BOOTSTRAP_SERVERS",
                                        "value": "claimflow-kafka:9092",
                                    }
                                ],
                                "securityContext": restricted,
                                "resources": {"limits": {"cpu": "1", "memory": "256Mi"}},
                                "volumeMounts": [
                                    {"name": "plans", "mountPath": "/plans", "readOnly": True},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "plans", "configMap": {"name": "benefit-plans"}},
                            {"name": "tmp", "emptyDir": {}},
                        ],
                    }
                },
            },
        },
    ]


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
    for chart in ("intake", "adjudication", "audit-log", "operator", "claimflow"):
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
    try:
        kube_node.kubectl("create", "namespace", namespace)
        chart, env = _chart_workspace(work)
        release = Release(kube_node, namespace, env, chart, timings)
        kube_node.apply(volumes)
        release.kubectl("apply", "-k", str(LOCAL_DATA))
        for name in ("kafka", "postgres"):
            release.kubectl(
                "rollout", "status", f"statefulset/claimflow-{name}", f"--timeout={WAIT}",
                timeout=330.0,
            )  # fmt: skip
        lap("data tier ready")
        kube_node.apply(_publish_plans_job(namespace))
        release.kubectl(
            "wait", "--for=condition=Complete", "job/publish-plans", f"--timeout={WAIT}",
            timeout=330.0,
        )  # fmt: skip
        lap("plans published")
        release.helm(
            "install", RELEASE, str(chart), "--values", str(VALUES),
            "--wait", "--timeout", "10m",
            timeout=660.0,
        )  # fmt: skip
        lap("helm install --wait")
        # Started with the data tier; it waits for Kafka as a service's worker does.
        release.kubectl(
            "rollout", "status", "deployment/claimflow-payments-fake", f"--timeout={WAIT}",
            timeout=330.0,
        )  # fmt: skip
        lap("payments fake ready")
        yield release
    finally:
        started = time.monotonic()
        # The namespace controller deletes the pods; the kubelet stops their containers.
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
    assert jobs["publish-plans"].get("succeeded") == 1
    plans_log = release.kubectl("logs", "job/publish-plans")
    assert plans_log.count("published plan") == len(list(example_plans_dir().glob("*.yaml")))

    deployments = {d["metadata"]["name"]: d for d in release.get("deployments")["items"]}
    ours = {f"{RELEASE}-{s}-{p}" for s in SERVICES for p in ("api", "worker")}
    # Beside the release's own, the local tier's stand-in for the payments system.
    assert set(deployments) == ours | {"claimflow-payments-fake"}
    fake = deployments["claimflow-payments-fake"]
    assert fake["status"]["readyReplicas"] == 1
    for deployment in (deployments[name] for name in ours):
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
    assert set(phases) == {f"{RELEASE}-{service}-test" for service in SERVICES}, output
    assert {p for found in phases.values() for p in found} == {"Succeeded"}, output
    # The test Pods are hook-succeeded: deleted once they passed.
    assert not [p for p in release.get("pods")["items"] if p["metadata"]["name"].endswith("-test")]


@pytest.fixture(scope="module")
def api_ports(release: Release) -> dict[str, int]:
    """A NodePort (on 127.0.0.1) beside each API's own ClusterIP Service, same pods."""
    ports = {}
    for service in SERVICES:
        own = release.get("service", f"{RELEASE}-{service}")
        release.node.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": f"{service}-nodeport", "namespace": release.namespace},
                    "spec": {
                        "type": "NodePort",
                        "selector": own["spec"]["selector"],
                        "ports": [{"port": own["spec"]["ports"][0]["port"], "targetPort": "http"}],
                    },
                }
            ]
        )
        ports[service] = release.get("service", f"{service}-nodeport")["spec"]["ports"][0][
            "nodePort"
        ]
    return ports


def test_a_claim_is_accepted_adjudicated_paid_and_audited(
    release: Release, api_ports: dict[str, int]
) -> None:
    intake, adjudication, audit = (f"http://127.0.0.1:{api_ports[s]}" for s in SERVICES)
    auth = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(headers=auth, timeout=10.0) as client:
        # kube-proxy has just programmed the NodePort; the API answers once it has.
        _wait_for(
            lambda: all(_answers(client, f"{url}/readyz") for url in (intake, adjudication, audit)),
            60,
            "the APIs through their NodePorts",
        )
        submitted = client.post(f"{intake}/v1/claims", json=CLAIM)
        assert submitted.status_code == 202, submitted.text
        claim_id = submitted.json()["id"]
        location = f"{intake}{submitted.headers['Location']}"

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

        # The namespace's only claim: its provider alone, to the cent.
        top = client.get(f"{adjudication}/v1/providers/top", params={"limit": 5})
        assert top.status_code == 200, top.text
        assert top.json()["providers"] == [
            {
                "provider_npi": CLAIM["lines"][0]["provider_npi"],
                "net_fee_total": NET_FEE,
                "claim_count": 1,
            }
        ]

        events: list[dict[str, Any]] = []

        def audited() -> bool:
            response = client.get(f"{audit}/v1/audit/claims/{claim_id}")
            events[:] = response.json().get("events", []) if response.status_code == 200 else []
            return {e["type"] for e in events} >= AUDITED_TYPES

        _wait_for(audited, 120, "the claim's audit timeline")

        verified = client.get(f"{audit}/v1/audit/verify")
        assert verified.status_code == 200, verified.text
        report = verified.json()
        assert report["valid"] is True, report
        assert report["checked"] >= len(events)


def _answers(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.TransportError:
        return False
