"""Fixtures over the k8s/ tree's configuration files."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .k8s_files import OBSERVABILITY, load_yaml


@pytest.fixture(scope="session")
def collector_config() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(OBSERVABILITY / "otel-collector" / "config.yaml")
    return config


@pytest.fixture(scope="session")
def agent_config() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(OBSERVABILITY / "otel-collector" / "agent-config.yaml")
    return config


@pytest.fixture(scope="session")
def datasources() -> list[dict[str, Any]]:
    provisioning = load_yaml(OBSERVABILITY / "grafana" / "datasources.yaml")
    found: list[dict[str, Any]] = provisioning["datasources"]
    return found


@pytest.fixture(scope="session")
def dashboards() -> dict[str, dict[str, Any]]:
    folder = OBSERVABILITY / "grafana" / "dashboards"
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


@pytest.fixture(scope="session")
def rules() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(OBSERVABILITY / "prometheus" / "rules.yaml")
    return loaded
