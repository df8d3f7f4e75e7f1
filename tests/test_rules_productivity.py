"""Labour productivity: golden figures, the 5%/6% threshold at its edges, and figures with no growth rate."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import (
    DomainError,
    MemberProductivity,
    ProductivityInputs,
    ProductivityResult,
    annual_growth_rate,
    calculate_productivity,
    group_productivity,
    labor_cost,
    load_rules,
    publication_threshold,
)

D = Decimal


def calc(
    profit: int | str,
    labor: int | str = 0,
    depreciation: int | str = 0,
    employees: int = 1,
    hours: int | str = 1,
    baseline: int | str | None = None,
    year: int | None = None,
    group_2022: bool = False,
) -> ProductivityResult:
    return calculate_productivity(
        ProductivityInputs(
            operating_profit=D(profit),
            labor_cost=D(labor),
            depreciation=D(depreciation),
            employees=employees,
            annual_hours=D(hours),
            baseline=None if baseline is None else D(baseline),
            year=year,  # type: ignore[arg-type]
            group_includes_2022=group_2022,
        )
    )


def test_golden_figures() -> None:
    result = calculate_productivity(
        ProductivityInputs(D(30_000_000), D(20_000_000), D(5_000_000), 10, D(1800), D(2800), 2)
    )
    assert result.value_added == D(55_000_000)
    assert result.labor_productivity == D(55_000_000) / D(18_000)
    assert result.growth_rate is not None
    assert result.growth_rate.quantize(D("0.000001")) == D("0.044639")
    assert result.threshold == D("0.05")
    assert result.meets_threshold is False
    text = "\n".join(result.explanation)
    assert "付加価値額 = 営業利益 3,000万円 + 人件費 2,000万円 + 減価償却費 500万円 = 5,500万円" in text
    assert "3,055.56円/時間" in text
    assert "（労働生産性 3,055.56 ÷ 申請時の実績値 2,800.00）^(1/2) − 1 = 4.46%" in text
    assert "「補助事業名」「代表事業者名」「補助事業グループの構成員数」" in text
    assert "ペナルティ等はありません" in text
    assert "様式（Excel）の値が正式" in text
    assert "端数処理" in text


def test_as_dict_keys_and_json() -> None:
    result = calculate_productivity(
        ProductivityInputs(D(30_000_000), D(20_000_000), D(5_000_000), 10, D(1800), D(2800), 2)
    )
    data = result.as_dict()
    assert {
        "value_added",
        "labor_productivity",
        "growth_rate",
        "threshold",
        "meets_threshold",
        "explanation",
    } <= set(data)
    assert data["value_added"] == 55_000_000
    assert data["labor_productivity"] == 3055.56
    assert data["growth_rate"] == 0.044639
    assert data["threshold"] == 0.05
    assert data["meets_threshold"] is False
    assert isinstance(data["explanation"], list) and data["explanation"]
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data


def test_exactly_five_percent_over_one_year_meets() -> None:
    result = calc(105, baseline=100, year=1)
    assert result.growth_rate == D("0.05")
    assert result.meets_threshold is True


def test_exactly_five_percent_over_two_years_meets() -> None:
    result = calc(11025, baseline=10000, year=2)  # 1.05² = 1.1025
    assert result.growth_rate == D("0.05")
    assert result.meets_threshold is True


def test_just_below_five_percent_fails() -> None:
    result = calc("104.99", baseline=100, year=1)
    assert result.meets_threshold is False


def test_rounding_shows_threshold_but_verdict_uses_exact_value() -> None:
    result = calc("1.0499999", baseline=1, year=1)
    assert result.meets_threshold is False
    text = "\n".join(result.explanation)
    assert "5.00%は基準の5%に達していません" in text
    assert "端数処理前の値は基準をわずかに下回ります" in text


def test_six_percent_when_group_includes_a_2022_member() -> None:
    with_2022 = calc("105.5", baseline=100, year=1, group_2022=True)
    without = calc("105.5", baseline=100, year=1)
    assert with_2022.threshold == D("0.06")
    assert with_2022.meets_threshold is False
    assert without.threshold == D("0.05")
    assert without.meets_threshold is True
    assert calc(106, baseline=100, year=1, group_2022=True).meets_threshold is True
    assert "今回の基準は6%です" in "\n".join(with_2022.explanation)


def test_threshold_comes_from_rules_toml() -> None:
    rules = load_rules()
    assert publication_threshold(False, rules) == rules.productivity.threshold.value == D("0.05")
    assert publication_threshold(True, rules) == rules.productivity.threshold_group_2022.value == D("0.06")


@pytest.mark.parametrize("baseline", [0, -100])
def test_base_not_positive_gives_no_rate_with_reason(baseline: int) -> None:
    result = calc(105, baseline=baseline, year=1)
    assert result.growth_rate is None
    assert result.meets_threshold is None
    reason = result.growth_unavailable_reason
    assert reason is not None and "0以下" in reason
    assert reason in result.explanation
    assert result.as_dict()["growth_rate"] is None


@pytest.mark.parametrize("year", [1, 2])
def test_negative_value_added_gives_no_rate_with_reason(year: int) -> None:
    result = calc(-60_000_000, 20_000_000, 5_000_000, 10, 1800, baseline=2800, year=year)
    assert result.value_added == D(-35_000_000)
    assert result.labor_productivity < 0
    assert result.growth_rate is None
    assert "付加価値額がマイナス" in (result.growth_unavailable_reason or "")
    assert any("営業損失" in line for line in result.explanation)


def test_both_reasons_are_given() -> None:
    result = calc(-10, baseline=-1, year=1)
    reason = result.growth_unavailable_reason or ""
    assert "0以下" in reason and "マイナス" in reason


@pytest.mark.parametrize("year", [1, 2])
def test_zero_value_added_is_minus_hundred_percent(year: int) -> None:
    result = calc(0, baseline=100, year=year)
    assert result.growth_rate == D(-1)
    assert result.meets_threshold is False


@pytest.mark.parametrize("employees", [0, -1])
def test_no_employees_explains_the_rule(employees: int) -> None:
    with pytest.raises(DomainError) as info:
        calc(100, employees=employees, hours=1800)
    assert info.value.field == "employees"
    assert "役員（代表者含む。）又は事業主の人数" in info.value.message
    assert "0人にはなりません" in info.value.message
    assert info.value.sources and info.value.sources[0].document == "it2023-tebiki"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hours": 0}, "annual_hours"),
        ({"labor": -1}, "labor_cost"),
        ({"depreciation": -1}, "depreciation"),
        ({"baseline": 100}, "year"),
    ],
)
def test_impossible_inputs_are_domain_errors(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(DomainError) as info:
        calc(100, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_year_without_baseline_says_why_there_is_no_rate() -> None:
    result = calc(100, year=1)
    assert result.growth_rate is None
    assert "入力されていない" in (result.growth_unavailable_reason or "")


def test_floats_are_refused() -> None:
    with pytest.raises(DomainError):
        calculate_productivity(ProductivityInputs(1.5, D(0), D(0), 1, D(1)))  # type: ignore[arg-type]


def test_labor_cost_adds_the_three_items() -> None:
    assert labor_cost(D(15_000_000), D(1_200_000), D(3_000_000)) == D(19_200_000)
    with pytest.raises(DomainError) as info:
        labor_cost(D(1), D(-1), D(0))
    assert info.value.field == "旅費交通費"


def test_annual_growth_rate() -> None:
    assert annual_growth_rate(D(121), D(100), 2) == D("0.1")
    assert annual_growth_rate(D(90), D(100), 1) == D("-0.1")
    with pytest.raises(DomainError):
        annual_growth_rate(D(1), D(0), 1)
    with pytest.raises(DomainError):
        annual_growth_rate(D(-1), D(1), 1)


def test_sources_are_the_2023_tebiki_only() -> None:
    result = calc(105, baseline=100, year=1)
    assert result.sources
    assert {s.document for s in result.sources} == {"it2023-tebiki"}


def test_group_figure_is_the_stated_mean() -> None:
    members = [
        MemberProductivity("A社", D(3000)),
        MemberProductivity("B社", D(4000)),
        MemberProductivity("C社", D(5000)),
    ]
    result = group_productivity(members, baseline=D(3600), year=1, group_includes_2022=True)
    assert result.labor_productivity == D(4000)
    assert result.method == "mean"
    assert result.growth_rate is not None and result.growth_rate.quantize(D("0.0001")) == D("0.1111")
    assert result.threshold == D("0.06")
    assert result.meets_threshold is True
    text = "\n".join(result.explanation)
    assert "単純平均" in text and "様式" in text and "正式" in text
    assert "単純平均" in result.method_text
    data = result.as_dict()
    assert data["labor_productivity"] == 4000.0
    assert [m["name"] for m in data["members"]] == ["A社", "B社", "C社"]
    json.dumps(data, ensure_ascii=False)


def test_group_needs_members_and_handles_bad_base() -> None:
    with pytest.raises(DomainError):
        group_productivity([])
    result = group_productivity([MemberProductivity("A社", D(100))], baseline=D(0), year=2)
    assert result.growth_rate is None and result.growth_unavailable_reason


@settings(max_examples=200, deadline=None)
@given(
    profit=st.integers(-(10**12), 10**12),
    labor=st.integers(0, 10**12),
    depreciation=st.integers(0, 10**11),
    employees=st.integers(1, 100_000),
    hours=st.decimals(min_value=1, max_value=8784, places=1, allow_nan=False, allow_infinity=False),
    baseline=st.one_of(st.none(), st.integers(-(10**6), 10**7)),
    year=st.sampled_from([1, 2]),
    group=st.booleans(),
)
def test_never_crashes_on_possible_inputs(
    profit: int,
    labor: int,
    depreciation: int,
    employees: int,
    hours: Decimal,
    baseline: int | None,
    year: int,
    group: bool,
) -> None:
    result = calculate_productivity(
        ProductivityInputs(
            D(profit),
            D(labor),
            D(depreciation),
            employees,
            hours,
            None if baseline is None else D(baseline),
            year if baseline is not None else None,  # type: ignore[arg-type]
            group,
        )
    )
    data = result.as_dict()
    json.dumps(data)
    # No verdict only when there is no base to compare with; a decline below a positive base is "not met".
    no_base = baseline is None or baseline <= 0
    assert (data["meets_threshold"] is None) == no_base
    if data["growth_rate"] is None:
        assert result.growth_unavailable_reason
        assert no_base or data["meets_threshold"] is False
