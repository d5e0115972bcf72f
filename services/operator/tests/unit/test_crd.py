"""The CRD's schema and the plan model stay one contract; the example resources fit both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import BaseModel

from claimflow_shared.events import BenefitPlanSpecV1
from claimflow_shared.plans import GROUP, KIND, PLURAL, VERSION, load_plan_documents

ROOT = Path(__file__).parents[4]
CRD = ROOT / "charts" / "operator" / "crds" / "benefitplans.claimflow.io.yaml"
EXAMPLES = ROOT / "k8s" / "examples" / "benefitplans"


def crd() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CRD.read_text())
    return document


def schema() -> dict[str, Any]:
    [version] = crd()["spec"]["versions"]
    root: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return root


def test_names_and_version_are_what_the_code_uses() -> None:
    spec = crd()["spec"]
    assert (spec["group"], spec["names"]["plural"], spec["names"]["kind"]) == (GROUP, PLURAL, KIND)
    [version] = spec["versions"]
    assert version["name"] == VERSION
    assert spec["scope"] == "Namespaced"
    assert version["subresources"] == {"status": {}}
    assert spec["names"]["shortNames"]


def _model_fields(model: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or name): f for name, f in model.model_fields.items()}


def test_the_schema_has_exactly_the_models_fields() -> None:
    spec = schema()["properties"]["spec"]
    assert set(spec["properties"]) == set(_model_fields(BenefitPlanSpecV1))
    assert set(spec["required"]) == {
        alias for alias, f in _model_fields(BenefitPlanSpecV1).items() if f.is_required()
    }
    assert set(spec["properties"]["deductible"]["properties"]) == {"amount", "waivedCategories"}
    limit = spec["properties"]["frequencyLimits"]["items"]
    assert set(limit["properties"]) == {"codes", "count", "period"}


def _plain(node: Any) -> Any:
    """The schema as JSON Schema: without the Kubernetes extensions jsonschema does not know."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def test_the_examples_fit_the_schema_and_the_model() -> None:
    validator = jsonschema.Draft7Validator(_plain(schema()))
    raws = [yaml.safe_load(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))]
    assert len(raws) == 3
    for raw in raws:
        assert list(validator.iter_errors(raw)) == []
    assert len(load_plan_documents(EXAMPLES)) == 3


def test_the_schema_refuses_what_the_model_refuses() -> None:
    validator = jsonschema.Draft7Validator(_plain(schema()))
    base = yaml.safe_load((EXAMPLES / "grp-1000.yaml").read_text())
    for path, value in [
        (("coinsurance", "basic"), 101),
        (("benefitYearStartMonth",), 13),
        (("coveredCategories",), ["cosmetic"]),
        (("annualMaximum",), "12.345"),
        (("groups",), ["GRP 1000"]),
    ]:
        raw = yaml.safe_load(yaml.safe_dump(base))
        target = raw["spec"]
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        assert list(validator.iter_errors(raw)), path
