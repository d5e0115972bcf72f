"""The session's Kubernetes API server is real: it stores, validates and authorizes."""

from __future__ import annotations

import httpx
import pytest

from claimflow_devstack.kube import HelmError, KubeCluster


def _config_map(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}}


def test_objects_are_stored_and_read_back(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    with kube_cluster.client() as client:
        created = client.post(
            f"/api/v1/namespaces/{kube_namespace}/configmaps", json=_config_map("c")
        )
        assert created.status_code == 201, created.text
        read = client.get(f"/api/v1/namespaces/{kube_namespace}/configmaps/c")
    assert read.json()["data"] == {"a": "1"}


def test_invalid_objects_are_rejected_by_validation(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    with kube_cluster.client() as client:
        response = client.post(
            f"/api/v1/namespaces/{kube_namespace}/configmaps", json=_config_map("Not_A_Name")
        )
    assert response.status_code == 422
    assert response.json()["reason"] == "Invalid"


def test_unknown_tokens_are_refused(kube_cluster: KubeCluster) -> None:
    with httpx.Client(
        base_url=kube_cluster.server, verify=kube_cluster.ssl_context(), timeout=10.0
    ) as client:
        response = client.get("/api/v1/namespaces", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401


def test_rbac_is_enforced_for_service_accounts(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    # Impersonating a service account with no bindings must be forbidden: RBAC is on.
    with kube_cluster.client() as client:
        response = client.get(
            "/api/v1/namespaces",
            headers={"Impersonate-User": f"system:serviceaccount:{kube_namespace}:nobody"},
        )
    assert response.status_code == 403


def test_helm_talks_to_the_cluster(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    listed = kube_cluster.helm("list", "--namespace", kube_namespace, "--output", "json")
    assert listed.stdout.strip() == "[]"
    with pytest.raises(HelmError, match="not found"):
        kube_cluster.helm("status", "absent", "--namespace", kube_namespace)
