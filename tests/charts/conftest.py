"""Fixtures of the chart tests: the charts with their dependencies built, rendered once.

Every `charts/<chart>/ci/<name>-values.yaml` is one scenario. The charts are copied to a
session directory and their file:// dependencies built there (the working tree stays
clean); each scenario is rendered once with `helm template` and shared by every test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from claimflow_devstack.kube import KubeCluster, helm_binary

from .support import (
    APP_CHARTS,
    CHARTS,
    SCENARIOS,
    ChartWorkspace,
    HookRunner,
    helm_env,
    third_party_crds,
    wait_established,
)


@pytest.fixture(scope="session")
def chart_workspace(tmp_path_factory: pytest.TempPathFactory) -> ChartWorkspace:
    try:
        helm_binary()
    except Exception as exc:
        pytest.fail(f"helm is needed for the chart tests and could not be built: {exc}")
    root = tmp_path_factory.mktemp("charts")
    shutil.copytree(CHARTS, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("charts"))
    workspace = ChartWorkspace(root, helm_env(root.parent / "helm-home"))
    for chart in APP_CHARTS:
        workspace.helm("dependency", "update", "--skip-refresh", str(root / chart))
    return workspace


@pytest.fixture(scope="session")
def rendered(chart_workspace: ChartWorkspace) -> dict[str, list[dict[str, Any]]]:
    """Every scenario's manifests (hooks and the `helm test` Pod included), by scenario id."""
    return {scenario.id: chart_workspace.template(scenario) for scenario in SCENARIOS}


@pytest.fixture(scope="session")
def rendered_dir(
    rendered: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The rendered scenarios as files, one folder per scenario (for checkov)."""
    root = tmp_path_factory.mktemp("rendered")
    for scenario_id, docs in rendered.items():
        (root / scenario_id).mkdir()
        (root / scenario_id / "manifests.yaml").write_text(yaml.safe_dump_all(docs))
    return root


@pytest.fixture(scope="module")
def chart_cluster(kube_cluster: KubeCluster) -> Iterator[tuple[KubeCluster, HookRunner]]:
    """The test API server with the third-party CRDs installed and the hook runner going,
    for one module: the runner's thread must not poll on into other modules' tests."""
    with kube_cluster.client() as client:
        for crd in third_party_crds():
            response = client.post(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd
            )
            assert response.status_code in (201, 409), response.text
        for crd in third_party_crds():
            wait_established(client, crd["metadata"]["name"])
    runner = HookRunner(kube_cluster)
    runner.start()
    try:
        yield kube_cluster, runner
    finally:
        runner.stop()
