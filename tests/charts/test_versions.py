"""One version for the whole release: VERSION, read by no tool, is what everything must equal.

The charts, the umbrella's dependencies, the images' labels and the Python packages move
together, so `helm install` of chart X.Y.Z runs images X.Y.Z built from packages X.Y.Z.
Releasing is editing every place this test lists, and adding the CHANGELOG section.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from .support import CHARTS

ROOT = CHARTS.parent
VERSION = (ROOT / "VERSION").read_text().strip()
CHART_FILES = sorted(CHARTS.glob("*/Chart.yaml"))
PYPROJECTS = sorted(
    [
        ROOT / "pyproject.toml",
        *ROOT.glob("services/*/pyproject.toml"),
        *ROOT.glob("tools/*/pyproject.toml"),
    ]
)
DOCKERFILE = ROOT / "Dockerfile"


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_version_is_semantic() -> None:
    assert re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)", VERSION)


def test_every_chart_and_package_is_found() -> None:
    assert {path.parent.name for path in CHART_FILES} >= {
        "common",
        "intake",
        "adjudication",
        "audit-log",
        "operator",
        "claimflow",
    }
    assert len(PYPROJECTS) >= 7


@pytest.mark.parametrize("path", CHART_FILES, ids=_id)
def test_chart_versions(path: Path) -> None:
    chart = yaml.safe_load(path.read_text())
    assert chart["version"] == VERSION
    if chart.get("type", "application") == "application":
        assert chart["appVersion"] == VERSION
    for dependency in chart.get("dependencies", []):
        if dependency["repository"].startswith("file://"):
            assert dependency["version"] == VERSION, dependency["name"]


@pytest.mark.parametrize("path", PYPROJECTS, ids=_id)
def test_package_versions(path: Path) -> None:
    assert tomllib.loads(path.read_text())["project"]["version"] == VERSION


def test_image_version_label_default() -> None:
    assert re.findall(r"^ARG VERSION=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE) == [VERSION]


def test_changelog_has_the_release() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.MULTILINE)
    assert releases
    assert releases[0] == VERSION
    assert "## [Unreleased]" in changelog
