"""A real single-node Kubernetes runs the project's kind of workload, and leaves the host as
it found it.

The workload is the devstack's `probe` (a static HTTP server and client in a FROM-scratch
image): a Deployment whose readiness probe gates its availability, a ClusterIP Service that a
Job reaches by its DNS name (the real job controller, CoreDNS and kube-proxy), a NodePort
reached from the host on 127.0.0.1, and the API server reached from a pod as in-cluster
clients reach it. The last test tears the node down, compares the host with
the record taken before it started, and brings the node up again.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from claimflow_devstack import host_state
from claimflow_devstack.kube_node import (
    BRIDGE,
    CLUSTER_DNS,
    NODE_IP,
    NODE_NAME,
    PROBE_IMAGE,
    KubeNode,
    dns_query,
)

WAIT = "180s"
# What the node's binaries (built from tools/devstack/go/kube-apiserver) report.
KUBERNETES_VERSION = "v1.36.3"


def _probe_container(args: list[str]) -> dict[str, Any]:
    return {
        "name": "probe",
        "image": PROBE_IMAGE,
        "imagePullPolicy": "Never",
        "args": args,
        "resources": {"limits": {"cpu": "100m", "memory": "32Mi"}},
    }


@pytest.fixture
def namespace(kube_node: KubeNode) -> Iterator[str]:
    name = f"t-{secrets.token_hex(4)}"
    kube_node.kubectl("create", "namespace", name)
    yield name
    # The namespace controller runs here: deleting it deletes the pods, and the kubelet
    # stops their containers.
    kube_node.kubectl("delete", "namespace", name, f"--timeout={WAIT}")


def _web(namespace: str) -> list[dict[str, Any]]:
    labels = {"app": "web"}
    server = _probe_container(["serve", ":8080"])
    server["ports"] = [{"containerPort": 8080}]
    server["readinessProbe"] = {
        "httpGet": {"path": "/healthz", "port": 8080},
        "periodSeconds": 2,
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [server], "terminationGracePeriodSeconds": 2},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web-nodeport", "namespace": namespace},
            "spec": {
                "type": "NodePort",
                "selector": labels,
                "ports": [{"port": 80, "targetPort": 8080}],
            },
        },
    ]


def _fetch_job(namespace: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "fetch", "namespace": namespace},
        "spec": {
            "backoffLimit": 2,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [_probe_container(["get", url])],
                }
            },
        },
    }


def test_deployment_services_dns_and_job(kube_node: KubeNode, namespace: str) -> None:
    kube_node.apply(_web(namespace))
    kube_node.kubectl(
        "-n", namespace, "wait", "--for=condition=Available", "deployment/web", f"--timeout={WAIT}"
    )
    pods = json.loads(kube_node.kubectl("-n", namespace, "get", "pods", "-o", "json").stdout)
    ready = [
        pod["metadata"]["name"]
        for pod in pods["items"]
        if any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])
    ]
    assert len(ready) == 2

    # From inside a pod, by the Service's DNS name: CoreDNS answers, kube-proxy routes.
    kube_node.apply([_fetch_job(namespace, f"http://web.{namespace}.svc.cluster.local/")])
    kube_node.kubectl(
        "-n", namespace, "wait", "--for=condition=Complete", "job/fetch", f"--timeout={WAIT}"
    )
    output = kube_node.kubectl("-n", namespace, "logs", "job/fetch").stdout
    status, _, hostname = output.partition(" ")
    assert status == "200"
    assert hostname.strip() in ready

    # From the host, on loopback only.
    service = json.loads(
        kube_node.kubectl("-n", namespace, "get", "service", "web-nodeport", "-o", "json").stdout
    )
    node_port = service["spec"]["ports"][0]["nodePort"]
    response = httpx.get(f"http://127.0.0.1:{node_port}/", timeout=10.0)
    assert response.status_code == 200
    assert response.text.strip() in ready
    # ... and on loopback only: not on the node's own address.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{NODE_IP}:{node_port}/", timeout=10.0)

    cluster_ip = json.loads(
        kube_node.kubectl("-n", namespace, "get", "service", "web", "-o", "json").stdout
    )["spec"]["clusterIP"]
    assert dns_query(CLUSTER_DNS, f"web.{namespace}.svc.cluster.local") == [cluster_ip]


def test_pods_reach_the_api_server_through_the_kubernetes_service(
    kube_node: KubeNode, namespace: str
) -> None:
    """What an in-cluster client (the operator's) does: the API server by the `kubernetes`
    Service's name, over TLS verified with the CA its service account's volume holds."""
    job = _fetch_job(namespace, "https://kubernetes.default.svc/version")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    # Go reads its trusted CAs from this file (the image has none of its own).
    ca = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    container["env"] = [{"name": "SSL_CERT_FILE", "value": ca}]
    kube_node.apply([job])
    kube_node.kubectl(
        "-n", namespace, "wait", "--for=condition=Complete", "job/fetch", f"--timeout={WAIT}"
    )
    output = kube_node.kubectl("-n", namespace, "logs", "job/fetch").stdout
    status, _, body = output.partition(" ")
    assert status == "200", output
    assert json.loads(body)["gitVersion"] == KUBERNETES_VERSION


def test_kubelet_refuses_anonymous_callers(kube_node: KubeNode) -> None:
    node = json.loads(kube_node.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    # The kubelet's serving certificate is self-signed; what matters is that it asks who calls.
    response = httpx.get(f"https://{NODE_IP}:{port}/pods", verify=False, timeout=10.0)
    assert response.status_code == 401
    # The API server, with its client certificate, gets through (kubectl logs above does too).
    healthz = kube_node.kubectl("get", "--raw", f"/api/v1/nodes/{NODE_NAME}/proxy/healthz")
    assert healthz.stdout == "ok"


def test_teardown_restores_the_host_and_the_node_comes_back(kube_node: KubeNode) -> None:
    before = kube_node.recorded_host_state
    kube_node.down()  # raises, listing each difference, if the host is not as recorded

    after = host_state.record(before["watched_dirs"])
    assert host_state.differences(before, after) == []
    assert BRIDGE not in after["interfaces"]
    for family in ("iptables", "ip6tables"):
        for table in after[family].values():
            assert not [c for c in table["chains"] if c.startswith(("KUBE-", "CNI-"))]
            assert not [r for r in table["rules"] if BRIDGE in r or "KUBE-" in r]
    assert after["cgroups"] == before["cgroups"]

    # A second start on the same host works, from a clean slate.
    kube_node.start()
    node = json.loads(kube_node.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    assert node["status"]["nodeInfo"]["kubeletVersion"] == KUBERNETES_VERSION
    assert dns_query(CLUSTER_DNS, "kubernetes.default.svc.cluster.local") == ["10.96.0.1"]
