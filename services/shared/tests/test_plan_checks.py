"""Plan rules beyond the schema, shared by the operator and every plan-file loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from claimflow_shared.events import BenefitPlanSpecV1
from claimflow_shared.plans import (
    PlanFileError,
    PlanRef,
    conflicts,
    globs_overlap,
    load_plan_documents,
    spec_problems,
    split_key,
)

EXAMPLES = Path(__file__).parents[3] / "k8s" / "examples" / "benefitplans"


def spec(**fields: Any) -> BenefitPlanSpecV1:
    base: dict[str, Any] = {
        "groups": ["GRP-1"],
        "coveredCategories": ["diagnostic", "preventive", "basic"],
        "coinsurance": {"diagnostic": 100, "preventive": 100, "basic": 80},
    }
    return BenefitPlanSpecV1.model_validate(base | fields)


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("GRP-1*", "GRP-1*", True),
        ("GRP-1*", "GRP-10*", True),
        ("GRP-1*", "GRP-2*", False),
        ("GRP-?000", "GRP-1*", True),
        ("GRP-?000", "GRP-1001", False),
        ("*-1", "GRP-*", True),
        ("A*B", "*C", False),
        ("A?", "AB?", False),
        ("*", "ANYTHING", True),
        ("A*", "*", True),
    ],
)
def test_glob_overlap(first: str, second: str, *, overlap: bool) -> None:
    assert globs_overlap(first, second) is overlap
    assert globs_overlap(second, first) is overlap


def test_a_consistent_plan_has_no_problems() -> None:
    assert spec_problems(spec()) == []


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"groups": []}, "must name at least one group number"),
        (
            {"frequencyLimits": [{"codes": ["D8080"], "count": 1}]},
            "D8080, whose category orthodontic is not covered",
        ),
        (
            {"feeSchedule": {"D2740": "900.00"}},
            "D2740, whose category major is not covered",
        ),
        (
            {"excludedCodes": ["D1110"], "frequencyLimits": [{"codes": ["D1110"], "count": 2}]},
            "D1110, which the plan excludes",
        ),
        (
            {
                "frequencyLimits": [
                    {"codes": ["D1110"], "count": 2},
                    {"codes": ["D1110", "D1120"], "count": 1},
                ]
            },
            "D1110 is in frequency limits 0 and 1",
        ),
        ({"coinsurance": {"diagnostic": 100, "preventive": 100}}, "basic has no coinsurance"),
        ({"deductible": {"waivedCategories": ["major"]}}, "waived for major"),
        ({"effectiveFrom": "2024-02-01", "effectiveTo": "2024-01-01"}, "effectiveTo is before"),
        ({"feeSchedule": {"D0050": "10.00"}}, "D0050, which is in no CDT category"),
    ],
)
def test_contradictions_the_schema_cannot_see(fields: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in spec_problems(spec(**fields))), spec_problems(spec(**fields))


def test_clashes_between_plans() -> None:
    mine = PlanRef("team-a", "mine", spec(groups=["GRP-1*", "GRP-5000"], default=True))
    others = [
        PlanRef("team-a", "mine", spec(groups=["GRP-1*"])),  # itself: ignored
        PlanRef("team-a", "narrow", spec(groups=["GRP-12*"])),
        PlanRef("team-a", "exact", spec(groups=["GRP-1234"])),  # exact overrides a pattern
        PlanRef("team-b", "same-number", spec(groups=["grp-5000"])),
        PlanRef("team-b", "fallback", spec(groups=[], default=True)),
        PlanRef("team-c", "mine", spec(groups=["OTHER"])),
    ]
    assert conflicts(mine, others) == [
        "group number GRP-1* overlaps GRP-12* of team-a/narrow",
        "group number GRP-5000 overlaps grp-5000 of team-b/same-number",
        "team-b/fallback is already the default plan",
        "plan name mine is already used by team-c/mine",
    ]


def test_the_example_plans_load_and_pass_every_check() -> None:
    plans = load_plan_documents(EXAMPLES)
    keys = sorted(p.key for p in plans)
    assert keys == ["default/grp-1000", "default/premium", "default/standard"]
    assert all(p.metadata.generation == 1 for p in plans)


def test_plan_files_that_clash_are_refused(tmp_path: Path) -> None:
    for name, group in (("a", "GRP-1*"), ("b", "GRP-1?")):
        (tmp_path / f"{name}.yaml").write_text(
            f"""
apiVersion: claimflow.io/v1
kind: BenefitPlan
metadata: {{name: {name}}}
spec:
  groups: ["{group}"]
  coveredCategories: [basic]
  coinsurance: {{basic: 80}}
"""
        )
    with pytest.raises(PlanFileError, match=r"default/b: group number GRP-1\? overlaps GRP-1\*"):
        load_plan_documents(tmp_path)


def test_keys_without_a_namespace_are_in_the_default_one() -> None:
    assert split_key("team-a/plan") == ("team-a", "plan")
    assert split_key("plan") == ("default", "plan")
