"""The observability stack's objects are accepted by a real Kubernetes API server.

kustomize's output is reproduced here (same objects, ConfigMaps generated from the same
files, without the content hash), then every namespaced object is created in a fresh
namespace with strict field validation; cluster-scoped ones (the namespace itself, RBAC)
go through a server-side dry run so test sessions do not collide.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx

from claimflow_devstack.kube import KubeCluster

from .k8s_files import OBSERVABILITY, all_objects, load_yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def _collection(api_version: str, kind: str, namespace: str | None) -> str:
    group, _, version = api_version.rpartition("/")
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    plural = kind.lower() + "s"
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def _generated_configmaps() -> list[dict[str, Any]]:
    kustomization = load_yaml(OBSERVABILITY / "kustomization.yaml")
    maps = []
    for generator in kustomization["configMapGenerator"]:
        data = {}
        for entry in generator["files"]:
            key, _, source = entry.partition("=")
            data[key] = (OBSERVABILITY / source).read_text()
        maps.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    return maps


def _create(
    client: httpx.Client, obj: dict[str, Any], namespace: str | None, **params: str
) -> None:
    path = _collection(obj["apiVersion"], obj["kind"], namespace)
    response = client.post(path, json=obj, params={"fieldValidation": "Strict", **params})
    assert response.status_code == 201, (
        f"{obj['kind']}/{obj['metadata']['name']}: {response.status_code} {response.text}"
    )


def test_the_api_server_accepts_every_object(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    objects = [copy.deepcopy(d) for _, d in all_objects(OBSERVABILITY)] + _generated_configmaps()
    created = 0
    with kube_cluster.client() as client:
        for obj in objects:
            if obj["kind"] in CLUSTER_SCOPED:
                for subject in obj.get("subjects", []):
                    subject["namespace"] = kube_namespace
                _create(client, obj, None, dryRun="All")
            else:
                obj["metadata"]["namespace"] = kube_namespace
                _create(client, obj, kube_namespace)
            created += 1
        deployments = client.get(f"/apis/apps/v1/namespaces/{kube_namespace}/deployments")
        deployments.raise_for_status()
    assert created == len(objects) > 20
    names = {d["metadata"]["name"] for d in deployments.json()["items"]}
    assert names == {"otel-collector", "grafana"}
