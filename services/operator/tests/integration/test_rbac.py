"""The operator works with exactly the permissions its chart grants, and no more: run as a
service account bound to those rules instead of the session's admin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from claimflow_devstack.kube import KubeCluster
from claimflow_operator.settings import OperatorSettings

from .conftest import SPEC_BASIC, Plans, PlansTopic, operator_runner

RBAC = "/apis/rbac.authorization.k8s.io/v1"
# The agreed contract with the operator chart (charts/operator/templates/rbac.yaml).
NAMESPACED_RULES = [
    {"apiGroups": ["claimflow.io"], "resources": ["benefitplans"],
     "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["claimflow.io"], "resources": ["benefitplans/status"],
     "verbs": ["get", "patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]  # fmt: skip
CLUSTER_RULES = [
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
]  # fmt: skip


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def service_account_kubeconfig(
    client: httpx.Client, cluster: KubeCluster, namespace: str, directory: Path
) -> Path:
    """A service account bound to the chart's rules, and a kubeconfig with its token."""
    name = "claimflow-operator"
    subject = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    _created(
        client.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts", json={"metadata": {"name": name}}
        )
    )
    cluster_name = f"claimflow-operator-{namespace}"
    _created(
        client.post(
            f"{RBAC}/clusterroles",
            json={"metadata": {"name": cluster_name}, "rules": CLUSTER_RULES},
        )
    )
    _created(
        client.post(
            f"{RBAC}/clusterrolebindings",
            json={
                "metadata": {"name": cluster_name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_name,
                },
                "subjects": subject,
            },
        )
    )
    _created(
        client.post(
            f"{RBAC}/namespaces/{namespace}/roles",
            json={"metadata": {"name": name}, "rules": NAMESPACED_RULES},
        )
    )
    _created(
        client.post(
            f"{RBAC}/namespaces/{namespace}/rolebindings",
            json={
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": subject,
            },
        )
    )
    token = _created(
        client.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
    )["status"]["token"]
    kubeconfig = directory / "operator-kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": cluster.server,
                            "certificate-authority": str(cluster.ca_file),
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [
                    {"name": "x", "context": {"cluster": "c", "user": "u", "namespace": namespace}}
                ],
                "current-context": "x",
            }
        )
    )
    return kubeconfig


def test_the_chart_rules_are_enough(
    plans: Plans,
    topic: PlansTopic,
    op_settings: OperatorSettings,
    kube_cluster: KubeCluster,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    kubeconfig = service_account_kubeconfig(plans.client, kube_cluster, plans.namespace, tmp_path)
    with operator_runner(op_settings, kube_cluster, monkeypatch, kubeconfig) as runner:
        assert plans.create("least", {**SPEC_BASIC, "groups": ["GRP-81*"]}).status_code == 201
        plans.wait_condition("least", "Published", "True")
        assert plans.create("clash", {**SPEC_BASIC, "groups": ["GRP-81?0"]}).status_code == 201
        plans.wait_condition("clash", "Valid", "False")
        assert [e for e in plans.events("least") if e["reason"] == "Published"]
        plans.delete("least")  # the sweep's list, the recheck's patch, the status
        plans.wait_condition("clash", "Published", "True")
        assert topic.wait_for(f"{plans.namespace}/least", 2)[-1] is None
    assert runner.exit_code == 0, runner.output
    assert "Forbidden" not in runner.output
