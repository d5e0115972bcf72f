from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claimflow_intake.domain import (
    LINE_FIELDS,
    RULES,
    STRUCTURAL_RULES,
    FieldRule,
    RuleContext,
    RuleRegistry,
    ValidationPolicy,
    ValidationResult,
    Violation,
    is_valid_npi,
    luhn_check_digit,
    rule_names,
    validate_claim,
)

TODAY = date(2024, 6, 1)
POLICY = ValidationPolicy()


def valid_line(**overrides: object) -> dict[str, object]:
    line: dict[str, object] = {
        "service_date": "3/28/18 0:00",
        "submitted_procedure": "D0180",
        "quadrant": "",
        "plan_group": "GRP-1000",
        "subscriber_number": "3730189502",
        "provider_npi": "1497775530",
        "provider_fees": "$100.00 ",
        "allowed_fees": "$100.00 ",
        "member_coinsurance": "$0.00 ",
        "member_copay": "$0.00 ",
    }
    line.update(overrides)
    return line


def check(
    line: dict[str, object], policy: ValidationPolicy = POLICY, today: date = TODAY
) -> ValidationResult:
    return validate_claim({"lines": [line]}, policy, today)


def found(result: ValidationResult) -> list[tuple[int | None, str | None, str]]:
    return [(v.line, v.field, v.rule) for v in result.violations]


def test_registered_rule_names_are_the_api() -> None:
    assert RULES.names() == {
        "money-non-negative",
        "money-precision",
        "money-range",
        "procedure-code",
        "npi-format",
        "npi-luhn",
        "quadrant",
        "service-date-not-future",
        "line-count",
        "plan-group-format",
        "subscriber-number-format",
        "external-id-format",
    }
    assert {
        "required",
        "type",
        "duplicate-field",
        "money-format",
        "date-format",
        "text-format",
    } == STRUCTURAL_RULES
    assert rule_names() == RULES.names() | STRUCTURAL_RULES


def test_a_valid_claim_is_built() -> None:
    result = validate_claim(
        {"external_id": "CLM-1", "lines": [valid_line(), valid_line(quadrant="ur")]}, POLICY, TODAY
    )
    assert result.ok
    assert result.violations == ()
    assert result.claim is not None
    assert result.claim.external_id == "CLM-1"
    first, second = result.claim.lines
    assert first.service_date == date(2018, 3, 28)
    assert first.quadrant is None
    assert second.quadrant == "UR"
    assert first.provider_fees == Decimal("100.00")


def test_json_numbers_are_accepted() -> None:
    line = valid_line(
        provider_npi=1497775530,
        subscriber_number=3730189502,
        provider_fees=Decimal("130.00"),
        allowed_fees=65,
        member_coinsurance=Decimal("16.25"),
        member_copay=0,
        service_date="2018-03-28",
    )
    result = check(line)
    assert result.claim is not None
    assert str(result.claim.total_net_fee) == "81.25"


def test_aliases_and_unknown_keys() -> None:
    line: dict[str, object] = {
        "Service Date": "3/28/2018",
        "submitted procedure": "d4211",
        "Quad": "UR",
        "Plan/Group #": "GRP-1000",
        "Subscriber#": "3730189502",
        "Provider NPI": "1497775530",
        "provider fees": "$178.00",
        "Allowed fees": "$178.00",
        "member coinsurance": "$35.60",
        "member copay": "$0.00",
        "patient name": "ignored",
    }
    result = check(line)
    assert result.claim is not None
    assert result.claim.lines[0].submitted_procedure == "D4211"
    assert str(result.claim.lines[0].net_fee) == "35.60"


# (field, value, rule) - each value fails exactly that one rule
FAILING = [
    ("provider_fees", "abc", "money-format"),
    ("allowed_fees", 12.5, "money-format"),
    ("member_copay", True, "money-format"),
    ("member_coinsurance", "NaN", "money-format"),
    ("service_date", "2/30/18", "date-format"),
    ("service_date", "yesterday", "date-format"),
    ("plan_group", ["GRP"], "text-format"),
    ("provider_npi", Decimal("1497775530"), "text-format"),
    ("provider_fees", "-1.00", "money-non-negative"),
    ("member_copay", "$-0.01", "money-non-negative"),
    ("provider_fees", "100.005", "money-precision"),
    ("allowed_fees", Decimal("1E-3"), "money-precision"),
    ("provider_fees", "10,000,000,000.00", "money-range"),
    ("provider_fees", 10**40, "money-range"),
    ("submitted_procedure", "D018", "procedure-code"),
    ("submitted_procedure", "X0180", "procedure-code"),
    ("submitted_procedure", "D01800", "procedure-code"),
    ("submitted_procedure", "D\uff10\uff11\uff18\uff10", "procedure-code"),
    ("provider_npi", "149777553", "npi-format"),
    ("provider_npi", "14977755300", "npi-format"),
    ("provider_npi", "149777553a", "npi-format"),
    ("provider_npi", "\u0661497775530", "npi-format"),
    ("provider_npi", "1497775531", "npi-luhn"),
    ("quadrant", "XX", "quadrant"),
    ("quadrant", "upper right", "quadrant"),
    ("service_date", "2024-06-02", "service-date-not-future"),
    ("plan_group", "GRP 1000", "plan-group-format"),
    ("plan_group", "GRP/1000", "plan-group-format"),
    ("plan_group", "G" * 31, "plan-group-format"),
    ("subscriber_number", "ABC_123", "subscriber-number-format"),
    ("subscriber_number", "1" * 31, "subscriber-number-format"),
    ("subscriber_number", "3730\u00a0189502", "subscriber-number-format"),
]


@pytest.mark.parametrize(("field", "value", "rule"), FAILING)
def test_field_rule_fails(field: str, value: object, rule: str) -> None:
    result = check(valid_line(**{field: value}))
    assert result.claim is None
    assert found(result) == [(0, field, rule)]
    assert result.violations[0].message.startswith(f"{field}: ")


PASSING = [
    ("provider_fees", "0"),
    ("provider_fees", "$0.00 "),
    ("provider_fees", "1.500"),
    ("provider_fees", "9,999,999,999.99"),
    ("submitted_procedure", "d0180"),
    ("submitted_procedure", " D0180 "),
    ("provider_npi", "1234567893"),
    ("quadrant", "ll"),
    ("quadrant", None),
    ("quadrant", "   "),
    ("service_date", "2024-06-01"),
    ("service_date", "2024-06-01T23:59:59-12:00"),
    ("plan_group", "G" * 30),
    ("plan_group", "grp_1000-a"),
    ("subscriber_number", "AB-123"),
    ("subscriber_number", "9" * 30),
]


@pytest.mark.parametrize(("field", "value"), PASSING)
def test_field_rule_passes(field: str, value: object) -> None:
    result = check(valid_line(**{field: value}))
    assert result.violations == ()


@pytest.mark.parametrize("field", sorted(set(LINE_FIELDS) - {"quadrant"}))
@pytest.mark.parametrize("value", [None, "", "   ", "absent"])
def test_required_yields_only_required(field: str, value: object) -> None:
    line = valid_line()
    if value == "absent":
        del line[field]
    else:
        line[field] = value
    assert found(check(line)) == [(0, field, "required")]


def test_quadrant_is_optional() -> None:
    line = valid_line()
    del line["quadrant"]
    assert check(line).ok


def test_npi_luhn_example_and_policy_switch() -> None:
    assert is_valid_npi("1497775530")
    assert not is_valid_npi("1497775531")
    assert found(check(valid_line(provider_npi="1497775531"))) == [(0, "provider_npi", "npi-luhn")]
    assert check(valid_line(provider_npi="1497775531"), ValidationPolicy(npi_luhn=False)).ok


def test_npi_luhn_also_disableable_by_name() -> None:
    policy = ValidationPolicy(disabled_rules=frozenset({"npi-luhn"}))
    assert check(valid_line(provider_npi="1497775531"), policy).ok


def test_malformed_npi_is_not_also_a_luhn_failure() -> None:
    assert [v.rule for v in check(valid_line(provider_npi="12345")).violations] == ["npi-format"]


@given(st.from_regex(r"[0-9]{9}", fullmatch=True), st.integers(min_value=1, max_value=9))
def test_luhn_check_digit_makes_valid_npis(first_nine: str, offset: int) -> None:
    digit = luhn_check_digit("80840" + first_nine)
    assert is_valid_npi(f"{first_nine}{digit}")
    assert not is_valid_npi(f"{first_nine}{(digit + offset) % 10}")


@given(st.from_regex(r"[0-9]{9}", fullmatch=True), st.integers(min_value=0, max_value=8))
def test_luhn_catches_adjacent_transpositions(first_nine: str, position: int) -> None:
    npi = first_nine + str(luhn_check_digit("80840" + first_nine))
    swapped = npi[:position] + npi[position + 1] + npi[position] + npi[position + 2 :]
    # 0<->9 swaps are Luhn's one blind spot among adjacent transpositions.
    if swapped != npi and {npi[position], npi[position + 1]} != {"0", "9"}:
        assert not is_valid_npi(swapped)


def test_line_count() -> None:
    assert found(validate_claim({"lines": []}, POLICY, TODAY)) == [(None, "lines", "line-count")]
    assert validate_claim({"lines": [valid_line()] * 50}, POLICY, TODAY).ok
    too_many = validate_claim({"lines": [valid_line()] * 51}, POLICY, TODAY)
    assert found(too_many) == [(None, "lines", "line-count")]
    small = ValidationPolicy(max_lines=2)
    assert found(validate_claim({"lines": [valid_line()] * 3}, small, TODAY)) == [
        (None, "lines", "line-count")
    ]
    assert validate_claim({"lines": [valid_line()] * 2}, small, TODAY).ok


def test_lines_past_the_limit_are_not_examined() -> None:
    result = validate_claim({"lines": [{}] * 10_000}, POLICY, TODAY)
    assert found(result) == [(None, "lines", "line-count")]


def test_without_line_count_an_empty_claim_is_still_rejected() -> None:
    policy = ValidationPolicy(disabled_rules=frozenset({"line-count"}))
    assert found(validate_claim({"lines": []}, policy, TODAY)) == [(None, "lines", "required")]
    assert validate_claim({"lines": [valid_line()] * 60}, policy, TODAY).ok


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, [(None, "lines", "required")]),
        ({"lines": None}, [(None, "lines", "required")]),
        ({"lines": "D0180"}, [(None, "lines", "type")]),
        ({"lines": {"0": {}}}, [(None, "lines", "type")]),
        ({"lines": [valid_line(), 5]}, [(1, None, "type")]),
        ({"lines": [["D0180"]]}, [(0, None, "type")]),
    ],
)
def test_structure(payload: dict[str, object], expected: list[object]) -> None:
    assert found(validate_claim(payload, POLICY, TODAY)) == expected


def test_payload_that_is_not_an_object() -> None:
    result = validate_claim(["lines"], POLICY, TODAY)  # type: ignore[arg-type]
    assert found(result) == [(None, None, "type")]


@pytest.mark.parametrize("external_id", ["", "   ", "x" * 101, 123, "a\nb", ["CLM-1"]])
def test_external_id_format_fails(external_id: object) -> None:
    result = validate_claim({"external_id": external_id, "lines": [valid_line()]}, POLICY, TODAY)
    assert found(result) == [(None, "external_id", "external-id-format")]


@pytest.mark.parametrize(
    ("external_id", "kept"), [(None, None), ("x" * 100, "x" * 100), (" A ", "A")]
)
def test_external_id_format_passes(external_id: object, kept: str | None) -> None:
    result = validate_claim({"external_id": external_id, "lines": [valid_line()]}, POLICY, TODAY)
    assert result.claim is not None
    assert result.claim.external_id == kept


def test_duplicate_field_with_different_values() -> None:
    line = valid_line()
    line["Service Date"] = "3/29/18"
    assert found(check(line)) == [(0, "service_date", "duplicate-field")]


@pytest.mark.parametrize("second", ["3/28/18 0:00", " 3/28/18 0:00 ", "", None])
def test_duplicate_field_with_same_or_blank_value_is_fine(second: object) -> None:
    line = valid_line()
    line["Date of Service"] = second
    assert check(line).ok


def test_five_bad_fields_give_five_violations_in_field_order() -> None:
    line = valid_line(
        member_copay="-1.00",
        provider_npi="1497775531",
        submitted_procedure="X1",
        service_date="2/30/18",
        plan_group="GRP 1000",
    )
    result = check(line)
    assert result.claim is None
    assert found(result) == [
        (0, "service_date", "date-format"),
        (0, "submitted_procedure", "procedure-code"),
        (0, "plan_group", "plan-group-format"),
        (0, "provider_npi", "npi-luhn"),
        (0, "member_copay", "money-non-negative"),
    ]


def test_one_field_can_fail_several_rules() -> None:
    result = check(valid_line(provider_fees="-1.005"))
    assert found(result) == [
        (0, "provider_fees", "money-precision"),
        (0, "provider_fees", "money-non-negative"),
    ]


def test_violations_are_ordered_claim_then_line_then_field() -> None:
    payload = {
        "external_id": "",
        "lines": [
            valid_line(member_copay="x", service_date="x"),
            valid_line(),
            valid_line(quadrant="XX", provider_fees="-1"),
        ],
    }
    assert found(validate_claim(payload, POLICY, TODAY)) == [
        (None, "external_id", "external-id-format"),
        (0, "service_date", "date-format"),
        (0, "member_copay", "money-format"),
        (2, "quadrant", "quadrant"),
        (2, "provider_fees", "money-non-negative"),
    ]


PHI_SUBSCRIBER = "3730189502"


@pytest.mark.parametrize(
    "overrides",
    [
        {"subscriber_number": PHI_SUBSCRIBER + "!", "service_date": "2/30/18"},
        {"subscriber_number": PHI_SUBSCRIBER + "_X", "service_date": "3/28/2099 0:00"},
        {"subscriber_number": [PHI_SUBSCRIBER], "service_date": "2099-03-28T10:00:00Z"},
        {"subscriber_number": PHI_SUBSCRIBER * 4, "service_date": "03/28/2018 25:00"},
    ],
)
def test_messages_never_contain_subscriber_number_or_date(overrides: dict[str, object]) -> None:
    result = check(valid_line(**overrides))
    assert {v.field for v in result.violations} == {"subscriber_number", "service_date"}
    for violation in result.violations:
        assert PHI_SUBSCRIBER not in violation.message
        for fragment in ("3/28", "2099", "2018", "03-28", "03/28"):
            assert fragment not in violation.message


@given(
    subscriber=st.from_regex(r"[0-9]{6,12}[!_#]", fullmatch=True),
    day=st.dates(min_value=date(1970, 1, 1), max_value=date(2067, 12, 31)),
    form=st.sampled_from(["{d:%m/%d/%y} 0:00", "{d:%Y-%m-%d}", "{d.month}/{d.day}/{d:%Y}"]),
)
def test_no_phi_in_messages_for_any_values(subscriber: str, day: date, form: str) -> None:
    text = form.format(d=day)
    today = day - timedelta(days=1)  # the date is in the future, so it fails a rule too
    result = check(valid_line(subscriber_number=subscriber, service_date=text), today=today)
    assert {v.rule for v in result.violations} == {
        "subscriber-number-format",
        "service-date-not-future",
    }
    for violation in result.violations:
        for secret in (subscriber.strip(), text, day.isoformat(), f"{day:%m/%d}"):
            assert secret not in violation.message


def test_a_rule_that_echoes_phi_is_scrubbed() -> None:
    registry = RuleRegistry()

    @registry.field_rule("leaky", fields=("subscriber_number",), value_type=str)
    def leaky(value: str, ctx: RuleContext) -> str | None:
        return f"{value} is not allowed"

    result = validate_claim({"lines": [valid_line()]}, POLICY, TODAY, registry=registry)
    assert [v.message for v in result.violations] == ["subscriber_number: fails the leaky rule"]


def test_new_rule_is_one_function_and_a_registration() -> None:
    registry = RuleRegistry()

    @registry.field_rule("no-d9999", fields=("submitted_procedure",), value_type=str)
    def no_d9999(value: str, ctx: RuleContext) -> str | None:
        return "is reserved" if value.upper() == "D9999" else None

    result = validate_claim(
        {"lines": [valid_line(submitted_procedure="d9999"), valid_line()]},
        POLICY,
        TODAY,
        registry=registry,
    )
    assert result.violations == (
        Violation(0, "submitted_procedure", "no-d9999", "submitted_procedure: is reserved"),
    )
    disabled = ValidationPolicy(disabled_rules=frozenset({"no-d9999"}))
    assert validate_claim(
        {"lines": [valid_line(submitted_procedure="d9999")]}, disabled, TODAY, registry=registry
    ).ok


def test_rules_can_be_classes() -> None:
    class EvenCents:
        name = "even-cents"
        fields = frozenset({"provider_fees"})

        def run(self, value: object, ctx: RuleContext) -> str | None:
            odd = isinstance(value, Decimal) and (value * 100) % 2 == 1
            return "must be an even number of cents" if odd else None

    registry = RuleRegistry()
    registry.register(EvenCents())
    result = validate_claim(
        {"lines": [valid_line(provider_fees="1.01")]}, POLICY, TODAY, registry=registry
    )
    assert found(result) == [(0, "provider_fees", "even-cents")]


def test_registry_refuses_taken_or_structural_names_and_unknown_fields() -> None:
    registry = RuleRegistry()
    registry.register(FieldRule("x", frozenset({"quadrant"}), str, lambda value, ctx: None))
    with pytest.raises(ValueError, match="already taken"):
        registry.register(FieldRule("x", frozenset({"quadrant"}), str, lambda value, ctx: None))
    with pytest.raises(ValueError, match="already taken"):
        registry.register(
            FieldRule("required", frozenset({"quadrant"}), str, lambda value, ctx: None)
        )
    with pytest.raises(ValueError, match="unknown fields"):
        registry.register(FieldRule("y", frozenset({"tooth"}), str, lambda value, ctx: None))


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="max_lines"):
        ValidationPolicy(max_lines=0)
    with pytest.raises(ValueError, match="npi-lunh"):
        check(valid_line(), ValidationPolicy(disabled_rules=frozenset({"npi-lunh"})))
    with pytest.raises(ValueError, match="required"):
        check(valid_line(), ValidationPolicy(disabled_rules=frozenset({"required"})))


def test_rules_a_claim_line_relies_on_cannot_be_disabled() -> None:
    assert RULES.locked() == {"money-precision", "money-range"}
    for rule in RULES.locked():
        with pytest.raises(ValueError, match="relies on"):
            check(valid_line(), ValidationPolicy(disabled_rules=frozenset({rule})))


@pytest.mark.parametrize("rule", sorted(RULES.names() - RULES.locked() - {"line-count"}))
def test_every_other_registered_rule_can_be_disabled(rule: str) -> None:
    failing = [(field, value) for field, value, name in FAILING if name == rule]
    payload: dict[str, object] = {"lines": [valid_line(**dict([failing[0]]))] if failing else []}
    if rule == "external-id-format":
        payload = {"external_id": "", "lines": [valid_line()]}
    assert rule in {v.rule for v in validate_claim(payload, POLICY, TODAY).violations}
    disabled = ValidationPolicy(disabled_rules=frozenset({rule}))
    assert rule not in {v.rule for v in validate_claim(payload, disabled, TODAY).violations}
