"""Loading the k8s/ tree: the manifests and the configuration files they mount."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from claimflow_devstack.paths import repo_root

K8S = repo_root() / "k8s"
OBSERVABILITY = K8S / "observability"
DATA = K8S / "data"
# The local cluster's single-node data tier: a kustomization of its own inside k8s/data.
LOCAL_DATA = DATA / "local"

# YAML files under k8s/ that are configuration for a program, not Kubernetes objects; each is
# turned into a ConfigMap by kustomize and checked by its own tests.
CONFIG_FILES = frozenset(
    {
        OBSERVABILITY / "otel-collector" / "config.yaml",
        OBSERVABILITY / "otel-collector" / "agent-config.yaml",
        OBSERVABILITY / "tempo" / "tempo-config.yaml",
        OBSERVABILITY / "prometheus" / "prometheus.yml",
        OBSERVABILITY / "prometheus" / "rules.yaml",
        OBSERVABILITY / "prometheus" / "rules.test.yaml",
        OBSERVABILITY / "loki" / "loki-config.yaml",
        OBSERVABILITY / "grafana" / "datasources.yaml",
        OBSERVABILITY / "grafana" / "dashboards.yaml",
    }
)


def yaml_files() -> list[Path]:
    return sorted([*K8S.rglob("*.yaml"), *K8S.rglob("*.yml")])


def manifest_files() -> list[Path]:
    return [p for p in yaml_files() if p not in CONFIG_FILES and p.name != "kustomization.yaml"]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def documents(path: Path) -> list[dict[str, Any]]:
    """The objects in a multi-document file; a comment-only document is not an object."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def all_objects(root: Path = K8S) -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in manifest_files() if p.is_relative_to(root) for d in documents(p)]


def objects_of(kind: str, root: Path = K8S) -> list[dict[str, Any]]:
    return [d for _, d in all_objects(root) if d["kind"] == kind]
