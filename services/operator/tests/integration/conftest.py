"""The operator against the session's real kube-apiserver and Kafka: the CRD installed once,
kopf's KopfRunner running the operator on a fresh namespace per test."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from kopf.testing import KopfRunner

from claimflow_devstack.kube import KubeCluster
from claimflow_devstack.processes import free_port
from claimflow_operator.handlers import build_registry, kopf_settings
from claimflow_operator.settings import OperatorSettings
from claimflow_shared.plans import GROUP, PLURAL, VERSION, ensure_plans_topic, plans_topic

ROOT = Path(__file__).parents[4]
CRD = ROOT / "charts" / "operator" / "crds" / "benefitplans.claimflow.io.yaml"
EXAMPLES = ROOT / "k8s" / "examples" / "benefitplans"
WAIT = 60.0
SPEC_BASIC: dict[str, Any] = {
    "coveredCategories": ["diagnostic", "preventive", "basic"],
    "coinsurance": {"diagnostic": 100, "preventive": 100, "basic": 80},
}


def wait_for(probe: Any, what: str, within: float = WAIT) -> Any:
    """Poll a blocking probe until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def crd(kube_cluster: KubeCluster) -> dict[str, Any]:
    """The chart's CRD, POSTed as `helm install` would, and established."""
    body: dict[str, Any] = yaml.safe_load(CRD.read_text())
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    with kube_cluster.client() as client:
        response = client.post(path, json=body)
        assert response.status_code in (201, 409), response.text

        def established() -> dict[str, Any] | None:
            got: dict[str, Any] = client.get(f"{path}/{body['metadata']['name']}").json()
            conditions = {
                c["type"]: c["status"] for c in got.get("status", {}).get("conditions") or []
            }
            return got if conditions.get("Established") == "True" else None

        installed: dict[str, Any] = wait_for(established, "the CRD to be established")
    return installed


class Plans:
    """BenefitPlans of one namespace through the API server's REST API."""

    def __init__(self, client: httpx.Client, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"

    def create(self, name: str, spec: dict[str, Any]) -> httpx.Response:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BenefitPlan",
            "metadata": {"name": name},
            "spec": spec,
        }
        return self.client.post(self.path, json=body)

    def apply_example(self, file: str) -> dict[str, Any]:
        raw = yaml.safe_load((EXAMPLES / file).read_text())
        response = self.client.post(self.path, json=raw)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def get(self, name: str) -> dict[str, Any]:
        response = self.client.get(f"{self.path}/{name}")
        response.raise_for_status()
        got: dict[str, Any] = response.json()
        return got

    def patch_spec(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        response = self.client.patch(
            f"{self.path}/{name}",
            content=json.dumps({"spec": spec}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200, response.text
        patched: dict[str, Any] = response.json()
        return patched

    def delete(self, name: str) -> None:
        response = self.client.delete(f"{self.path}/{name}")
        assert response.status_code == 200, response.text

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        for c in self.get(name).get("status", {}).get("conditions", []):
            if c["type"] == kind:
                found: dict[str, Any] = c
                return found
        return None

    def wait_condition(
        self, name: str, kind: str, status: str, generation: int = 1
    ) -> dict[str, Any]:
        def matches() -> dict[str, Any] | None:
            c = self.condition(name, kind)
            ok = c is not None and c["status"] == status and c["observedGeneration"] == generation
            return c if ok else None

        found: dict[str, Any] = wait_for(matches, f"{name}: {kind}={status} at {generation}")
        return found

    def events(self, name: str) -> list[dict[str, Any]]:
        response = self.client.get(
            f"/api/v1/namespaces/{self.namespace}/events",
            params={"fieldSelector": f"involvedObject.name={name}"},
        )
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items


class PlansTopic:
    """The compacted plans topic, read from the start: every (key, value) in order."""

    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.topic = plans_topic(settings)
        ensure_plans_topic(settings)

    def messages(self) -> list[tuple[str, dict[str, Any] | None]]:
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            enable_auto_commit=False,
            consumer_timeout_ms=1000,
        )
        try:
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            consumer.seek_to_beginning(partition)
            end = consumer.end_offsets([partition])[partition]
            found: list[tuple[str, dict[str, Any] | None]] = []
            while consumer.position(partition) < end:
                for record in consumer.poll(timeout_ms=1000).get(partition, []):
                    value = json.loads(record.value) if record.value is not None else None
                    found.append((record.key.decode(), value))
            return found
        finally:
            consumer.close()

    def of(self, key: str) -> list[dict[str, Any] | None]:
        return [value for k, value in self.messages() if k == key]

    def wait_for(self, key: str, count: int) -> list[dict[str, Any] | None]:
        def enough() -> list[dict[str, Any] | None] | None:
            found = self.of(key)
            return found if len(found) >= count else None

        got: list[dict[str, Any] | None] = wait_for(enough, f"{count} message(s) under {key}")
        return got


@pytest.fixture
def op_settings(kafka_broker: Any, topic_prefix: str, kube_namespace: str) -> OperatorSettings:
    return OperatorSettings(
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
        kafka_topic_prefix=topic_prefix,
        operator_namespaces=[kube_namespace],
        operator_health_port=free_port(),
        operator_metrics_port=0,
        operator_catch_up_seconds=30,
    )


@pytest.fixture
def plans(kube_cluster: KubeCluster, kube_namespace: str, crd: Any) -> Iterator[Plans]:
    with kube_cluster.client() as client:
        yield Plans(client, kube_namespace)


@pytest.fixture
def topic(op_settings: OperatorSettings) -> PlansTopic:
    return PlansTopic(op_settings)


@contextmanager
def operator_runner(
    settings: OperatorSettings,
    kube_cluster: KubeCluster,
    monkeypatch: pytest.MonkeyPatch,
    kubeconfig: Path | None = None,
) -> Iterator[KopfRunner]:
    """The operator as `claimflow-operator run` starts it, logged in with a kubeconfig (the
    session's admin one unless given), running for the `with` block."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig or kube_cluster.env()["KUBECONFIG"]))
    args = [
        "run",
        "--standalone",
        f"--liveness=http://127.0.0.1:{settings.operator_health_port}/healthz",
    ]
    args += [f"--namespace={ns}" for ns in settings.operator_namespaces]
    configured = kopf_settings(settings)
    try:
        with KopfRunner(
            args, registry=build_registry(settings), settings=configured, timeout=60
        ) as runner:
            yield runner
    finally:
        # kopf runs sync handlers and client calls on this executor and never shuts it down:
        # nothing to a one-shot CLI process, idle threads piling up in a test session.
        configured.execution.executor.shutdown(wait=True)


@pytest.fixture
def operator(
    op_settings: OperatorSettings,
    kube_cluster: KubeCluster,
    crd: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[KopfRunner]:
    with operator_runner(op_settings, kube_cluster, monkeypatch) as runner:
        yield runner
    assert runner.exit_code == 0, runner.output


@pytest.fixture
def operator_factory(
    op_settings: OperatorSettings,
    kube_cluster: KubeCluster,
    crd: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """Operators run one after another (a restart), each in a `with` block."""
    return lambda: operator_runner(op_settings, kube_cluster, monkeypatch)
