"""Plans: CDT categories, resolution by plan/group number, benefit years, YAML files and the
topic overlay."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from claimflow_adjudication.adapters.plans import (
    PlanFileError,
    PlanRegistry,
    load_plan_dir,
    load_plan_documents,
)
from claimflow_adjudication.domain import CATEGORY_RANGES, Category, PlanBook, category_of
from claimflow_shared.events import BenefitPlanSpecV1, PlanPublishedV1, new_event

from .builders import D, plan

PLANS_DIR = Path(__file__).parents[4] / "k8s" / "examples" / "benefitplans"


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("D0120", Category.DIAGNOSTIC),
        ("D0999", Category.DIAGNOSTIC),
        ("D1110", Category.PREVENTIVE),
        ("D2140", Category.BASIC),
        ("D2399", Category.BASIC),
        ("D2400", Category.MAJOR),
        ("D2740", Category.MAJOR),
        ("D3330", Category.BASIC),
        ("D4346", Category.BASIC),
        ("D5110", Category.MAJOR),
        ("D6010", Category.MAJOR),
        ("D7140", Category.BASIC),
        ("D8080", Category.ORTHODONTIC),
        ("D9110", Category.BASIC),
        ("D0050", None),
        ("X1234", None),
    ],
)
def test_cdt_categories(code: str, category: Category | None) -> None:
    assert category_of(code) == category


def test_category_ranges_cover_every_section_without_overlap() -> None:
    covered = [n for first, last, _ in CATEGORY_RANGES for n in range(first, last + 1)]
    assert covered == list(range(100, 10000))


def test_resolution_exact_then_most_specific_pattern_then_default() -> None:
    book = PlanBook(
        [
            plan(plan_id="fallback", is_default=True),
            plan(plan_id="broad", groups=("GRP-*",)),
            plan(plan_id="narrow", groups=("GRP-1*",)),
            plan(plan_id="exact", groups=("GRP-1000",)),
        ]
    )
    assert book.resolve("GRP-1000").plan_id == "exact"  # type: ignore[union-attr]
    assert book.resolve("grp-1000").plan_id == "exact"  # type: ignore[union-attr]
    assert book.resolve("GRP-1001").plan_id == "narrow"  # type: ignore[union-attr]
    assert book.resolve("GRP-2001").plan_id == "broad"  # type: ignore[union-attr]
    assert book.resolve("OTHER").plan_id == "fallback"  # type: ignore[union-attr]
    assert PlanBook([plan(groups=("A",))]).resolve("B") is None


def test_several_defaults_resolve_to_the_lowest_id_and_are_reported() -> None:
    book = PlanBook([plan(plan_id="b", is_default=True), plan(plan_id="a", is_default=True)])
    assert book.default is not None
    assert book.default.plan_id == "a"
    assert book.ambiguous_defaults == ["b"]


def test_benefit_year_starts_on_the_plans_month() -> None:
    july = plan(benefit_year_start_month=7)
    assert july.benefit_year(date(2024, 6, 30)) == date(2023, 7, 1)
    assert july.benefit_year(date(2024, 7, 1)) == date(2024, 7, 1)
    assert plan().benefit_year(date(2024, 12, 31)) == date(2024, 1, 1)


@pytest.mark.parametrize(
    "overrides",
    [
        {"benefit_year_start_month": 13},
        {"coinsurance": {Category.BASIC: D(101)}},
        {"deductible": D(-1)},
        {"annual_maximum": D(-1)},
        {"fee_schedule": {"D0120": D(-1)}},
        {"effective_from": date(2024, 2, 1), "effective_to": date(2024, 1, 1)},
    ],
)
def test_inconsistent_plans_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        plan(**overrides)


def test_the_shipped_plan_files_load() -> None:
    plans = {e.plan.plan_id: e for e in load_plan_dir(PLANS_DIR)}
    assert set(plans) == {"standard", "grp-1000", "premium"}
    assert plans["standard"].plan.is_default
    assert plans["grp-1000"].plan.fee_schedule["D4346"] == D("65.00")
    assert plans["premium"].plan.benefit_year_start_month == 7
    book = PlanBook(e.plan for e in plans.values())
    assert book.resolve("GRP-1000").plan_id == "grp-1000"  # type: ignore[union-attr]
    assert book.resolve("GRP-2417").plan_id == "premium"  # type: ignore[union-attr]
    assert book.resolve("GRP-3000").plan_id == "standard"  # type: ignore[union-attr]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


GOOD = """
apiVersion: claimflow.io/v1
kind: BenefitPlan
metadata: {name: one}
spec:
  groups: [GRP-1]
  coveredCategories: [basic]
  coinsurance: {basic: 80}
"""


def test_plan_files_name_the_file_and_field_that_is_wrong(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", GOOD.replace("basic: 80", "basic: 180"))
    with pytest.raises(PlanFileError, match=r"a\.yaml: invalid at spec\.coinsurance\.basic"):
        load_plan_documents(tmp_path)


def test_the_same_plan_in_two_files_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", GOOD)
    _write(tmp_path, "b.yml", GOOD)
    with pytest.raises(PlanFileError, match=r"also in a\.yaml"):
        load_plan_documents(tmp_path)


def test_broken_yaml_and_missing_directories_are_reported(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "spec: [unclosed")
    with pytest.raises(PlanFileError, match="not valid YAML"):
        load_plan_documents(tmp_path)
    with pytest.raises(PlanFileError, match="does not exist"):
        load_plan_documents(tmp_path / "missing")


def _published(plan_id: str, generation: int, percent: int, namespace: str = "default") -> bytes:
    spec = BenefitPlanSpecV1.model_validate(
        {"coveredCategories": ["basic"], "coinsurance": {"basic": percent}, "default": True}
    )
    data = PlanPublishedV1(
        plan_id=plan_id,
        namespace=namespace,
        generation=generation,
        spec=spec,
        published_at=datetime.now(UTC),
    )
    return new_event("/test", data, subject=plan_id).to_json()


def test_topic_plans_overlay_file_plans_and_tombstones_restore_them(tmp_path: Path) -> None:
    registry = PlanRegistry(load_plan_dir(_write(tmp_path, "a.yaml", GOOD)))
    before = registry.book()
    registry.on_topic_change("default/one", _published("one", 7, 50))
    assert before.get("one").version == 1  # type: ignore[union-attr]  # snapshots never change
    current = registry.book().get("one")
    assert current is not None
    assert (current.version, current.coinsurance[Category.BASIC]) == (7, D(50))
    assert [e.source for e in registry.entries()] == ["topic"]
    registry.on_topic_change("default/one", None)
    assert registry.book().get("one").version == 1  # type: ignore[union-attr]
    assert [e.source for e in registry.entries()] == ["file"]


def test_bad_topic_messages_are_skipped_and_change_nothing() -> None:
    registry = PlanRegistry()
    registry.on_topic_change("default/one", b"not json")
    registry.on_topic_change("default/two", _published("one", 1, 80))  # key and plan disagree
    registry.on_topic_change("one", _published("one", 1, 80))  # a key without the namespace
    assert len(registry.book()) == 0
    registry.on_topic_change("default/one", _published("one", 1, 80))
    assert registry.book().default is not None


def test_a_plan_id_held_in_another_namespace_is_refused() -> None:
    registry = PlanRegistry()
    registry.on_topic_change("default/one", _published("one", 1, 80))
    registry.on_topic_change("team-b/one", _published("one", 2, 50, namespace="team-b"))
    assert [e.key for e in registry.entries()] == ["default/one"]
    assert registry.book().get("one").version == 1  # type: ignore[union-attr]
