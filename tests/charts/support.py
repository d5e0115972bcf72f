"""What the chart tests share: scenarios, the chart workspace, minimal CRDs, the hook runner."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from claimflow_devstack.kube import KubeCluster, run_helm

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
# Build order: the service charts before the umbrella that packages them.
APP_CHARTS = ("intake", "adjudication", "audit-log", "operator", "claimflow")
RELEASE = "cf"
NAMESPACE = "claimflow-test"


@dataclass(frozen=True)
class Scenario:
    chart: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.chart}-{self.name}"

    @property
    def values_file(self) -> Path:
        return CHARTS / self.chart / "ci" / f"{self.name}-values.yaml"


def scenarios() -> list[Scenario]:
    found = [
        Scenario(chart, path.name.removesuffix("-values.yaml"))
        for chart in APP_CHARTS
        for path in sorted((CHARTS / chart / "ci").glob("*-values.yaml"))
    ]
    assert found, "no charts/*/ci/*-values.yaml found"
    return found


SCENARIOS = scenarios()


def helm_env(home: Path) -> dict[str, str]:
    """helm with its cache and config in `home`, never the user's."""
    return {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


@dataclass(frozen=True)
class ChartWorkspace:
    """A copy of charts/ with every chart's dependencies in place."""

    root: Path
    env: dict[str, str]

    def chart(self, name: str) -> Path:
        return self.root / name

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_helm(args, env=self.env, timeout=120.0)

    def template(self, scenario: Scenario, *extra: str) -> list[dict[str, Any]]:
        result = self.helm(
            "template",
            RELEASE,
            str(self.chart(scenario.chart)),
            "--namespace",
            NAMESPACE,
            "-f",
            str(scenario.values_file),
            *extra,
        )
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


# Minimal CRDs of the third-party kinds the charts render: only the fields the charts use,
# closed (no unknown fields), so both the API server and the offline check catch a typo.
def _closed(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


_STR = {"type": "string"}
_LABELS = {"type": "object", "additionalProperties": _STR}
_SELECTOR = _closed({"matchLabels": _LABELS})
SERVICE_MONITOR_SPEC = _closed(
    {
        "selector": _SELECTOR,
        "namespaceSelector": _closed({"matchNames": {"type": "array", "items": _STR}}),
        "endpoints": {
            "type": "array",
            "items": _closed(
                {"port": _STR, "path": _STR, "interval": _STR, "scrapeTimeout": _STR},
                required=("port",),
            ),
        },
    },
    required=("selector", "endpoints"),
)
HTTP_ROUTE_SPEC = _closed(
    {
        "parentRefs": {
            "type": "array",
            "items": _closed(
                {"name": _STR, "namespace": _STR, "sectionName": _STR}, required=("name",)
            ),
        },
        "hostnames": {"type": "array", "items": _STR},
        "rules": {
            "type": "array",
            "items": _closed(
                {
                    "matches": {
                        "type": "array",
                        "items": _closed(
                            {
                                "path": _closed(
                                    {
                                        "type": {
                                            "type": "string",
                                            "enum": ["Exact", "PathPrefix", "RegularExpression"],
                                        },
                                        "value": _STR,
                                    }
                                )
                            }
                        ),
                    },
                    "backendRefs": {
                        "type": "array",
                        "items": _closed(
                            {"name": _STR, "port": {"type": "integer"}}, required=("name",)
                        ),
                    },
                }
            ),
        },
    },
    required=("parentRefs",),
)
THIRD_PARTY = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ("servicemonitors", SERVICE_MONITOR_SPEC),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): ("httproutes", HTTP_ROUTE_SPEC),
}


def third_party_crds() -> list[dict[str, Any]]:
    crds = []
    for (api_version, kind), (plural, spec) in THIRD_PARTY.items():
        group, version = api_version.split("/")
        crds.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {
                    "name": f"{plural}.{group}",
                    # *.k8s.io groups are protected; an "unapproved" note lets a copy in.
                    "annotations": {"api-approved.kubernetes.io": "unapproved, test copy"},
                },
                "spec": {
                    "group": group,
                    "scope": "Namespaced",
                    "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
                    "versions": [
                        {
                            "name": version,
                            "served": True,
                            "storage": True,
                            "schema": {
                                "openAPIV3Schema": _closed(
                                    {
                                        "apiVersion": _STR,
                                        "kind": _STR,
                                        "metadata": {"type": "object"},
                                        "spec": spec,
                                    },
                                    required=("spec",),
                                )
                            },
                        }
                    ],
                },
            }
        )
    return crds


def offline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD schema as a JSON Schema that rejects unknown fields (the API server prunes)."""
    if schema.get("type") == "object" and "properties" in schema:
        return {
            **schema,
            "additionalProperties": False,
            "properties": {k: offline_schema(v) for k, v in schema["properties"].items()},
        }
    if schema.get("type") == "array":
        return {**schema, "items": offline_schema(schema["items"])}
    return schema


class HookRunner:
    """Plays the missing controllers for hooks: finishes Jobs and `helm test` Pods.

    No job controller or kubelet runs, so a hook Job would never complete and helm would
    wait for it forever. This thread marks each new Job complete and each new Pod of a
    `helm test` hook succeeded, through the status subresource, as the controllers would
    after a successful run. It records what it finished, so tests can assert the hooks ran.
    """

    def __init__(self, cluster: KubeCluster) -> None:
        self._cluster = cluster
        self._stop = threading.Event()
        # (kind, namespace, name) of what was finished; `_done` by uid, since an upgrade's
        # hooks replace the previous ones under the same names.
        self.completed: set[tuple[str, str, str]] = set()
        self._done: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="hook-runner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError("the hook runner did not stop within 10 s")

    def _run(self) -> None:
        with self._cluster.client() as client:
            while not self._stop.wait(0.2):
                try:
                    self._finish_jobs(client)
                    self._finish_test_pods(client)
                except httpx.HTTPError:
                    continue  # the next round retries; a real failure shows as a helm timeout

    def _finish_jobs(self, client: httpx.Client) -> None:
        for job in client.get("/apis/batch/v1/jobs").json()["items"]:
            meta = job["metadata"]
            if meta["uid"] in self._done or job.get("status", {}).get("succeeded"):
                continue
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            condition = {"status": "True", "lastProbeTime": now, "lastTransitionTime": now}
            job["status"] = {
                "startTime": now,
                "completionTime": now,
                "succeeded": 1,
                "conditions": [
                    {**condition, "type": "SuccessCriteriaMet"},
                    {**condition, "type": "Complete"},
                ],
            }
            url = f"/apis/batch/v1/namespaces/{meta['namespace']}/jobs/{meta['name']}/status"
            if client.put(url, json=job).status_code == 200:
                self._done.add(meta["uid"])
                self.completed.add(("Job", meta["namespace"], meta["name"]))

    def _finish_test_pods(self, client: httpx.Client) -> None:
        pods = client.get(
            "/api/v1/pods", params={"labelSelector": "app.kubernetes.io/component=test"}
        )
        for pod in pods.json()["items"]:
            meta = pod["metadata"]
            if meta["uid"] in self._done or pod.get("status", {}).get("phase") == "Succeeded":
                continue
            pod["status"] = {"phase": "Succeeded"}
            url = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
            if client.put(url, json=pod).status_code == 200:
                self._done.add(meta["uid"])
                self.completed.add(("Pod", meta["namespace"], meta["name"]))


def prepare_namespace(client: httpx.Client, namespace: str) -> None:
    """Create the namespace if needed, with the `default` ServiceAccount its controller would
    add (pods are refused without it)."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    response = client.post("/api/v1/namespaces", json=body)
    assert response.status_code in (201, 409), response.text
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    response = client.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", json=account)
    assert response.status_code in (201, 409), response.text


def wait_established(client: httpx.Client, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        response.raise_for_status()
        crd = response.json()
        # The API server may answer `conditions: null` before its controller has run.
        conditions = (crd.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise TimeoutError(f"CRD {name} not established after {timeout:.0f}s")
