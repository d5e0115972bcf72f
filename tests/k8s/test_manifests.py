"""Every manifest under k8s/ is a valid Kubernetes 1.36 object, hardened, and wired together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from .k8s_files import (
    CONFIG_FILES,
    DATA,
    K8S,
    LOCAL_DATA,
    OBSERVABILITY,
    all_objects,
    documents,
    load_yaml,
    manifest_files,
    objects_of,
    yaml_files,
)

KUBERNETES_VERSION = "1.36.0"
# Kinds of operators the manifests target; the API server schemas do not know them.
CUSTOM_KINDS = {
    ("kafka.strimzi.io/v1beta2", "Kafka"),
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"),
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
    ("kafka.strimzi.io/v1beta2", "KafkaUser"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    ("barmancloud.cnpg.io/v1", "ObjectStore"),
    # claimflow's own plans (k8s/examples); the operator's tests check them against its CRD.
    ("claimflow.io/v1", "BenefitPlan"),
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
# The only pod allowed to run as root, and why, is stated in its manifest (it reads the
# node's pod log files, which the runtime writes as root with mode 0640).
ROOT_PODS = {"otel-agent"}


def test_every_yaml_file_parses() -> None:
    files = yaml_files()
    assert len(files) >= 15
    for path in files:
        docs = list(yaml.safe_load_all(path.read_text()))
        assert any(d is not None for d in docs), f"{path} is empty"


def test_every_manifest_file_holds_only_objects() -> None:
    for path in manifest_files():
        for doc in documents(path):
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), path
            assert doc["metadata"].get("name"), path


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(Path(p).relative_to(K8S)))
def test_built_in_kinds_validate_strictly(path: Path) -> None:
    for doc in documents(path):
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_only_known_custom_kinds_are_used() -> None:
    kinds = {(d["apiVersion"], d["kind"]) for _, d in all_objects()}
    builtin = {k for k in kinds if k not in CUSTOM_KINDS}
    for api_version, kind in builtin:
        group = api_version.rpartition("/")[0]
        assert group in {"", "apps", "rbac.authorization.k8s.io"}, (api_version, kind)


def _kustomization_root(path: Path) -> Path:
    """The nearest folder above `path` with a kustomization.yaml: the one that applies it."""
    return next(p for p in path.parents if (p / "kustomization.yaml").is_file())


@pytest.mark.parametrize(
    "root", [OBSERVABILITY, DATA, LOCAL_DATA], ids=["observability", "data", "local-data"]
)
def test_kustomization_lists_every_manifest_and_generated_file(root: Path) -> None:
    kustomization = load_yaml(root / "kustomization.yaml")
    listed = {(root / r).resolve() for r in kustomization["resources"]}
    on_disk = {
        p.resolve()
        for p in manifest_files()
        if p.is_relative_to(root) and _kustomization_root(p) == root
    }
    assert listed == on_disk
    generated_sources = set()
    for generator in kustomization.get("configMapGenerator", []):
        for entry in generator["files"]:
            source = root / entry.partition("=")[2]
            assert source.is_file(), source
            generated_sources.add(source.resolve())
    configs_here = {p.resolve() for p in CONFIG_FILES if p.is_relative_to(root)}
    # rules.test.yaml is promtool's input, not something the cluster needs.
    assert configs_here - generated_sources == {
        p for p in configs_here if p.name == "rules.test.yaml"
    }


def _pod_specs(root: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for _, d in all_objects(root)
        if d["kind"] in WORKLOAD_KINDS
    ]


def test_every_mounted_configmap_is_generated_by_kustomize() -> None:
    kustomization = load_yaml(OBSERVABILITY / "kustomization.yaml")
    generated = {g["name"] for g in kustomization["configMapGenerator"]}
    mounted = {
        v["configMap"]["name"]
        for _, spec in _pod_specs(OBSERVABILITY)
        for v in spec.get("volumes", [])
        if "configMap" in v
    }
    assert mounted == generated


def test_workloads_are_hardened() -> None:
    specs = _pod_specs(OBSERVABILITY)
    assert {name for name, _ in specs} == {
        "otel-collector",
        "otel-agent",
        "tempo",
        "prometheus",
        "loki",
        "grafana",
    }
    for name, spec in specs:
        pod = spec["securityContext"]
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["runAsNonRoot"] is (name not in ROOT_PODS), name
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["capabilities"] == {"drop": ["ALL"]}, name
            assert "privileged" not in ctx, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), name
            assert "memory" in resources["limits"], name
            assert container.get("readinessProbe"), name
            assert container.get("livenessProbe"), name


def test_images_are_pinned() -> None:
    for _, spec in _pod_specs(K8S):
        for container in spec["containers"]:
            image: str = container["image"]
            repository, _, tag = image.rpartition(":")
            assert repository, image
            assert "/" not in tag, image
            assert tag not in {"latest", "main", "master"}, image
            assert any(ch.isdigit() for ch in tag), image


def test_host_paths_only_where_documented() -> None:
    for name, spec in _pod_specs(K8S):
        host_paths = [v for v in spec.get("volumes", []) if "hostPath" in v]
        if name not in ROOT_PODS:
            assert not host_paths, name
    agent = next(spec for name, spec in _pod_specs(OBSERVABILITY) if name == "otel-agent")
    logs = next(
        m for m in agent["containers"][0]["volumeMounts"] if m["mountPath"] == "/var/log/pods"
    )
    assert logs["readOnly"] is True


def test_services_select_existing_pods_and_ports() -> None:
    workloads = [d for _, d in all_objects(OBSERVABILITY) if d["kind"] in WORKLOAD_KINDS]
    for service in objects_of("Service", OBSERVABILITY):
        selector = service["spec"]["selector"]
        matches = [
            w
            for w in workloads
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, service["metadata"]["name"]
        port_names = {
            p["name"]
            for c in matches[0]["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, (service["metadata"]["name"], port)


def test_service_accounts_exist_and_cluster_roles_are_read_only() -> None:
    accounts = {sa["metadata"]["name"] for sa in objects_of("ServiceAccount", OBSERVABILITY)}
    for name, spec in _pod_specs(OBSERVABILITY):
        assert spec["serviceAccountName"] in accounts, name
    for role in objects_of("ClusterRole", OBSERVABILITY):
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, role["metadata"]["name"]
    for binding in objects_of("ClusterRoleBinding", OBSERVABILITY):
        for subject in binding["subjects"]:
            assert subject["name"] in accounts
            assert subject["namespace"] == "claimflow-observability"


def test_namespace_is_the_observability_namespace() -> None:
    kustomization = load_yaml(OBSERVABILITY / "kustomization.yaml")
    namespaces = objects_of("Namespace", OBSERVABILITY)
    assert [n["metadata"]["name"] for n in namespaces] == ["claimflow-observability"]
    assert kustomization["namespace"] == "claimflow-observability"
