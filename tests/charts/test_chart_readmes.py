"""The charts' READMEs are generated from their values schemas and defaults, and kept current."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest
import yaml

from .support import CHARTS


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, CHARTS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


readme = _module("readme")


def test_chart_readmes_are_current() -> None:
    stale = [
        str(path.relative_to(CHARTS.parent))
        for path, text in readme.readmes().items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"stale chart READMEs {stale}: run python charts/readme.py"


@pytest.mark.parametrize("chart", readme.APP_CHARTS)
def test_every_documented_value_has_a_description(chart: str) -> None:
    text = (CHARTS / chart / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows
    undescribed = [row.split("|")[1].strip() for row in rows if not row.split("|")[4].strip()]
    assert not undescribed, f"add a description in charts/values_schema.py for {undescribed}"


def _leaves(values: Any, prefix: str = "") -> set[str]:
    if not isinstance(values, dict) or not values:
        return {prefix.rstrip(".")}
    found: set[str] = set()
    for key, value in values.items():
        found |= _leaves(value, f"{prefix}{key}.")
    return found


@pytest.mark.parametrize("chart", readme.APP_CHARTS)
def test_every_default_is_in_the_readme(chart: str) -> None:
    """A value the chart ships is a row, or sits inside one (resources, security contexts)."""

    values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    text = (CHARTS / chart / "README.md").read_text()
    keys = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}
    missing = {
        leaf
        for leaf in _leaves(values)
        if not any(leaf == key or leaf.startswith(f"{key}.") for key in keys)
    }
    assert not missing


def test_row_for_a_nested_value_shows_its_default_and_type() -> None:
    rows = readme.rows(
        {
            "properties": {
                "api": {
                    "type": "object",
                    "properties": {
                        "port": {"type": "integer", "description": "the port"},
                        "resources": {"type": "object", "properties": {"limits": {}}},
                    },
                },
                "common": {"type": "object"},
            }
        },
        {"api": {"port": 8080, "resources": {"limits": {"cpu": "1"}}}},
    )
    assert rows == [
        ("api.port", "integer", "`8080`", "the port"),
        ("api.resources", "object", '`{"limits": {"cpu": "1"}}`', ""),
    ]
