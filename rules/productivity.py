"""Labour productivity and its growth, as the 2023 手引き defines them.

付加価値額 = 営業利益 + 人件費 + 減価償却費
労働生産性 = 付加価値額 ÷ (従業員数 × 年間平均労働時間)
年率平均成長率 = CAGR against the 実績値 given at application, over 1 or 2 years

The figure an applicant reports comes from the official Excel 様式; this module
tells them beforehand what it will roughly say and why, so every result carries
its inputs, the formula, the intermediate values, the publication threshold and
the passages they come from.  Arithmetic is exact (Decimal) and only display is
rounded, as rules.toml states.  Impossible inputs raise DomainError; figures for
which no growth rate exists (a base ≤ 0, negative value added) give a result
that says why, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Any

from faq.models import SourceRef
from rules.config import RulesConfig, load_rules
from rules.errors import DomainError
from rules.parsing import (
    ReportYear,
    format_count,
    format_hours,
    format_money,
    format_productivity,
    format_report_year,
    format_yes_no,
)

# Exact enough for any yen figure and hour count; traps turn nonsense into errors, not NaN.
_CTX = Context(prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
_MODES = {"ROUND_HALF_UP": ROUND_HALF_UP, "ROUND_HALF_EVEN": ROUND_HALF_EVEN, "ROUND_DOWN": ROUND_DOWN}


def _dec(name: str, value: object) -> Decimal:
    """Accept Decimal, int or a numeric string (dialog state is JSON); refuse floats and NaN."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise DomainError(name, f"{name} は Decimal で渡してください（{type(value).__name__} は使えません）")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise DomainError(name, f"{name} の値「{value}」は数値ではありません") from None
    if not result.is_finite():
        raise DomainError(name, f"{name} の値「{value}」は数値ではありません")
    return result


@dataclass(frozen=True)
class Rounded:
    """How figures are shown; the arithmetic itself is never rounded."""

    mode: str
    productivity_places: int
    percent_places: int
    fraction_places: int
    text: str

    @classmethod
    def from_rules(cls, rules: RulesConfig) -> Rounded:
        r = rules.rounding
        return cls(r.mode, r.productivity_places, r.percent_places, r.fraction_places, r.assumption)

    def _q(self, value: Decimal, places: int) -> Decimal:
        return value.quantize(Decimal(1).scaleb(-places), rounding=_MODES[self.mode])

    def productivity(self, value: Decimal) -> Decimal:
        return self._q(value, self.productivity_places)

    def fraction(self, value: Decimal) -> Decimal:
        return self._q(value, self.fraction_places)

    def percent(self, fraction: Decimal) -> str:
        return f"{self._q(fraction * 100, self.percent_places)}%"


def _threshold_text(fraction: Decimal) -> str:
    """0.05 → '5%': thresholds are shown as the source writes them, not padded with zeros."""
    return f"{(fraction * 100).normalize():f}%"


def labor_cost(salaries: Decimal, travel: Decimal, bonuses: Decimal) -> Decimal:
    """人件費 = 給与手当 + 旅費交通費 + 賞与 (2023 手引き 4/10 ②), from the 損益計算書."""
    parts = {"給与手当": salaries, "旅費交通費": travel, "賞与": bonuses}
    total = Decimal(0)
    with localcontext(_CTX):
        for name, raw in parts.items():
            value = _dec(name, raw)
            if value < 0:
                raise DomainError(
                    name, f"{name}がマイナス（{format_money(value)}）です。0以上の金額を入力してください。"
                )
            total += value
    return total


def publication_threshold(group_includes_2022: bool, rules: RulesConfig | None = None) -> Decimal:
    """5%, or 6% when a member was awarded in IT導入補助金2022 通常枠 or 複数社連携 (手引き 2/10)."""
    p = (rules or load_rules()).productivity
    return p.threshold_group_2022.value if group_includes_2022 else p.threshold.value


def annual_growth_rate(current: Decimal, baseline: Decimal, years: ReportYear) -> Decimal:
    """CAGR: (current ÷ baseline)^(1/years) − 1, exact for one year and correctly rounded for two.

    Raises DomainError when no rate exists: a base ≤ 0 (the ratio means nothing)
    or a negative current figure (a negative ratio has no real square root, and
    over one year the "rate" would just mirror the loss).
    """
    if years not in (1, 2):
        raise DomainError("year", "報告年度は1年度目か2年度目です。")
    if baseline <= 0:
        raise DomainError("baseline", _no_base_reason(baseline))
    if current < 0:
        raise DomainError("labor_productivity", _negative_reason(current))
    with localcontext(_CTX):
        ratio = current / baseline
        return ratio - 1 if years == 1 else ratio.sqrt() - 1


def _no_base_reason(baseline: Decimal) -> str:
    return (
        f"申請時の実績値（労働生産性）が{baseline}で0以下のため、伸び率（年率平均成長率）は定まりません。"
        "伸び率は基準の値に対する比なので、基準が0以下では意味を持ちません。"
        "実績値は申請マイページの「交付申請内容情報詳細」で確認できます。"
        "報告する値は様式（Excel）で算出し、判断に迷う場合はコールセンターにご確認ください。"
    )


def _negative_reason(productivity: Decimal) -> str:
    return (
        "営業損失が大きく付加価値額がマイナスになるため、労働生産性もマイナスになり、"
        "伸び率（年率平均成長率）は計算できません。申請時の実績値より下がっているので、基準には届きません。"
    )


@dataclass(frozen=True)
class _Growth:
    baseline: Decimal | None
    year: ReportYear | None
    rate: Decimal | None
    threshold: Decimal
    meets: bool | None
    reason: str | None


def _assess(
    current: Decimal,
    baseline: Decimal | None,
    year: int | None,
    group_includes_2022: bool,
    rules: RulesConfig,
) -> _Growth:
    threshold = publication_threshold(group_includes_2022, rules)
    if year is not None and year not in (1, 2):
        raise DomainError("year", "報告年度は1年度目か2年度目です（1 または 2）。")
    yr: ReportYear | None = 1 if year == 1 else 2 if year == 2 else None
    if baseline is None:
        return _Growth(
            None,
            yr,
            None,
            threshold,
            None,
            "申請時の実績値（労働生産性）が入力されていないため、伸び率は計算していません。",
        )
    if yr is None:
        raise DomainError("year", "伸び率を出すには、報告年度（1年度目か2年度目）も指定してください。")
    reasons = []
    if baseline <= 0:
        reasons.append(_no_base_reason(baseline))
    if current < 0:
        reasons.append(_negative_reason(current))
    if reasons:
        # A negative figure against a positive base is a decline: no rate, but clearly below the standard.
        meets = False if baseline > 0 else None
        return _Growth(baseline, yr, None, threshold, meets, "".join(reasons))
    rate = annual_growth_rate(current, baseline, yr)
    return _Growth(baseline, yr, rate, threshold, rate >= threshold, None)


def _growth_lines(g: _Growth, current: Decimal, rnd: Rounded, rules: RulesConfig, label: str) -> list[str]:
    p = rules.productivity
    items = "「" + "」「".join(p.publication.value) + "」"
    t = _threshold_text(g.threshold)
    group_rule = (
        f"公表の基準：年率平均{_threshold_text(p.threshold.value)}以上"
        f"（{p.threshold_group_2022.note}は{_threshold_text(p.threshold_group_2022.value)}以上）。"
        f"今回の基準は{t}です。"
    )
    lines = [group_rule]
    if g.rate is None or g.baseline is None or g.year is None:
        lines.append(g.reason or "伸び率は計算していません。")
        if g.meets is False:
            lines.append(
                f"事業終了後2年以内に年率平均{t}以上に達しなかった場合、"
                f"{items}がホームページで公表されます。計画値未達のペナルティ等はありません。"
            )
        return lines
    cur, base = rnd.productivity(current), rnd.productivity(g.baseline)
    if g.year == 1:
        formula = f"{label} {cur:,f} ÷ 申請時の実績値 {base:,f} − 1"
    else:
        formula = f"（{label} {cur:,f} ÷ 申請時の実績値 {base:,f}）^(1/2) − 1"
    lines.append(f"年率平均成長率（CAGR、{g.year}年度目）= {formula} = {rnd.percent(g.rate)}")
    if g.meets:
        lines.append(f"{rnd.percent(g.rate)}は基準の{t}以上です（基準に達しています）。")
    else:
        lines.append(
            f"{rnd.percent(g.rate)}は基準の{t}に達していません。"
            f"事業終了後2年以内に年率平均{t}以上に達しなかった場合、"
            f"{items}がホームページで公表されます。計画値未達のペナルティ等はありません。"
        )
        if rnd.percent(g.rate) == rnd.percent(g.threshold):
            lines.append(
                "表示上は基準と同じ値ですが、端数処理前の値は基準をわずかに下回ります。"
                "正式な判定は様式（Excel）で算出した値によります。"
            )
    return lines


@dataclass(frozen=True)
class ProductivityInputs:
    """The figures of one business for one report year (Decimal yen and hours; employees a count)."""

    operating_profit: Decimal
    labor_cost: Decimal
    depreciation: Decimal
    employees: int
    annual_hours: Decimal
    baseline: Decimal | None = None  # 申請時の実績値（労働生産性）
    year: ReportYear | None = None
    group_includes_2022: bool = False

    def read_back(self) -> tuple[tuple[str, str], ...]:
        """Each figure named and shown as every channel shows it (営業利益：3,000万円, ▲500万円)."""
        lines = [
            ("営業利益", format_money(self.operating_profit)),
            ("人件費", format_money(self.labor_cost)),
            ("減価償却費", format_money(self.depreciation)),
            ("従業員数", format_count(self.employees)),
            ("年間平均労働時間", format_hours(self.annual_hours)),
        ]
        if self.baseline is not None:
            lines.append(("申請時の実績値", format_productivity(self.baseline)))
            if self.year is not None:
                lines.append(("報告年度", format_report_year(self.year)))
            lines.append(
                ("IT導入補助金2022の交付決定を受けた構成員", format_yes_no(self.group_includes_2022))
            )
        return tuple(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "operating_profit": _json_number(self.operating_profit),
            "labor_cost": _json_number(self.labor_cost),
            "depreciation": _json_number(self.depreciation),
            "employees": self.employees,
            "annual_hours": _json_number(self.annual_hours),
            "baseline": None if self.baseline is None else _json_number(self.baseline),
            "year": self.year,
            "group_includes_2022": self.group_includes_2022,
        }


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _growth_json(
    result: ProductivityResult | GroupProductivityResult, year: ReportYear | None, baseline: Decimal | None
) -> dict[str, Any]:
    """What a single business's and a group's results share in JSON: productivity, growth, verdict."""
    rnd = result.rounding
    return {
        "labor_productivity": float(rnd.productivity(result.labor_productivity)),
        "growth_rate": None if result.growth_rate is None else float(rnd.fraction(result.growth_rate)),
        "threshold": float(result.threshold),
        "meets_threshold": result.meets_threshold,
        "growth_unavailable_reason": result.growth_unavailable_reason,
        "year": year,
        "baseline": None if baseline is None else _json_number(baseline),
        "rounding": rnd.text,
        "explanation": list(result.explanation),
        "sources": [{"document": s.document, "ref": s.ref} for s in result.sources],
    }


@dataclass(frozen=True)
class ProductivityResult:
    inputs: ProductivityInputs
    formula: str
    value_added: Decimal  # exact
    labor_productivity: Decimal  # exact (円/時間); see `rounding` for display
    growth_rate: Decimal | None  # a fraction, 0.05 = 5%; None with `growth_unavailable_reason`
    threshold: Decimal
    meets_threshold: bool | None
    growth_unavailable_reason: str | None
    explanation: tuple[str, ...]
    sources: tuple[SourceRef, ...]
    rounding: Rounded = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; productivity and growth rounded as stated in `rounding`, verdict from exact values."""
        return {
            "value_added": _json_number(self.value_added),
            **_growth_json(self, self.inputs.year, self.inputs.baseline),
            "inputs": self.inputs.as_dict(),
            "formula": self.formula,
        }


def calculate_productivity(
    inputs: ProductivityInputs, rules: RulesConfig | None = None
) -> ProductivityResult:
    """Value added, labour productivity and, with a baseline and year, growth against the threshold."""
    rules = rules or load_rules()
    p = rules.productivity
    rnd = Rounded.from_rules(rules)
    profit = _dec("営業利益", inputs.operating_profit)
    labor = _dec("人件費", inputs.labor_cost)
    depreciation = _dec("減価償却費", inputs.depreciation)
    hours = _dec("年間平均労働時間", inputs.annual_hours)
    baseline = None if inputs.baseline is None else _dec("申請時の実績値", inputs.baseline)
    if labor < 0:
        raise DomainError(
            "labor_cost",
            f"人件費がマイナス（{format_money(labor)}）です。人件費は{'・'.join(p.labor_cost_items.value)}の合計で、0以上です。",
            p.labor_cost_items.sources,
        )
    if depreciation < 0:
        raise DomainError(
            "depreciation",
            f"減価償却費がマイナス（{format_money(depreciation)}）です。0以上の金額を入力してください。",
        )
    if isinstance(inputs.employees, bool) or not isinstance(inputs.employees, int):
        raise DomainError("employees", "従業員数は整数で入力してください（例：10人）。")
    if inputs.employees <= 0:
        raise DomainError(
            "employees",
            f"従業員数が{inputs.employees}人になっています。従業員がいない場合は、{p.no_employee_rule.value}を入力してください"
            "（手引きの定めにより、0人にはなりません）。",
            p.no_employee_rule.sources,
        )
    if hours <= 0:
        raise DomainError(
            "annual_hours", "年間平均労働時間は0より大きい値を入力してください（例：1,800時間）。"
        )

    with localcontext(_CTX):
        value_added = profit + labor + depreciation
        person_hours = inputs.employees * hours
        productivity = value_added / person_hours
    growth = _assess(productivity, baseline, inputs.year, inputs.group_includes_2022, rules)

    lines = [
        f"付加価値額 = 営業利益 {format_money(profit)} + 人件費 {format_money(labor)} + 減価償却費 "
        f"{format_money(depreciation)} = {format_money(value_added)}",
        f"労働生産性 = 付加価値額 {format_money(value_added)} ÷（従業員数 {format_count(inputs.employees)} × "
        f"年間平均労働時間 {format_hours(hours)}）= {format_productivity(rnd.productivity(productivity))}",
    ]
    if value_added < 0:
        lines.append("営業損失が人件費と減価償却費の合計より大きいため、付加価値額がマイナスです。")
    lines += _growth_lines(growth, productivity, rnd, rules, "労働生産性")
    lines.append(f"端数処理：{rnd.text}")
    lines.append(
        f"報告する数値は、{p.official_excel.value}で算出し、申請マイページに転記してください。"
        "この計算は目安で、様式（Excel）の値が正式です。"
    )
    sources = _unique(
        p.formula.sources
        + p.value_added_items.sources
        + p.labor_cost_items.sources
        + p.no_employee_rule.sources
        + (p.growth_method.sources if growth.rate is not None else ())
        + p.threshold.sources
        + p.official_excel.sources
    )
    return ProductivityResult(
        inputs=inputs,
        formula=f"付加価値額 = {' + '.join(p.value_added_items.value)}；労働生産性 = {p.formula.value.split('=')[0]}",
        value_added=value_added,
        labor_productivity=productivity,
        growth_rate=growth.rate,
        threshold=growth.threshold,
        meets_threshold=growth.meets,
        growth_unavailable_reason=growth.reason,
        explanation=tuple(lines),
        sources=sources,
        rounding=rnd,
    )


def _unique(refs: tuple[SourceRef, ...]) -> tuple[SourceRef, ...]:
    return tuple(dict.fromkeys(refs))


# ---------------------------------------------------------------- group figure


@dataclass(frozen=True)
class MemberProductivity:
    """One group member's labour productivity (from calculate_productivity or the member's own sheet)."""

    name: str
    labor_productivity: Decimal


@dataclass(frozen=True)
class GroupProductivityResult:
    members: tuple[MemberProductivity, ...]
    method: str  # "mean": the arithmetic mean of the members' productivities
    method_text: str
    labor_productivity: Decimal  # exact
    baseline: Decimal | None
    year: ReportYear | None
    growth_rate: Decimal | None
    threshold: Decimal
    meets_threshold: bool | None
    growth_unavailable_reason: str | None
    explanation: tuple[str, ...]
    sources: tuple[SourceRef, ...]
    rounding: Rounded = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            **_growth_json(self, self.year, self.baseline),
            "method": self.method,
            "method_text": self.method_text,
            "members": [
                {"name": m.name, "labor_productivity": _json_number(m.labor_productivity)}
                for m in self.members
            ],
        }


def group_productivity(
    members: Sequence[MemberProductivity],
    *,
    baseline: Decimal | None = None,
    year: ReportYear | None = None,
    group_includes_2022: bool = False,
    rules: RulesConfig | None = None,
) -> GroupProductivityResult:
    """The group's productivity from its members', and its growth against the group's 実績値.

    The 手引き says only that 【様式1】 computes the group figure from each
    member's productivity; it does not say how.  We use the arithmetic mean, say
    so in every result, and point to the Excel as the authoritative figure.
    """
    rules = rules or load_rules()
    p = rules.productivity
    rnd = Rounded.from_rules(rules)
    if not members:
        raise DomainError("members", "構成員の労働生産性を1つ以上入力してください。")
    values = [_dec(f"{m.name} の労働生産性", m.labor_productivity) for m in members]
    base = None if baseline is None else _dec("申請時の実績値", baseline)
    with localcontext(_CTX):
        mean = sum(values, Decimal(0)) / len(values)
    growth = _assess(mean, base, year, group_includes_2022, rules)
    method_text = (
        f"グループの労働生産性は、構成員{len(values)}者の労働生産性の単純平均（合計 ÷ 構成員数）として計算しています。"
        f"{p.group_method.assumption or ''}"
    )
    lines = [
        "構成員の労働生産性："
        + "、".join(
            f"{m.name} {format_productivity(rnd.productivity(v))}"
            for m, v in zip(members, values, strict=True)
        ),
        f"グループの労働生産性（単純平均）= {format_productivity(rnd.productivity(mean))}",
        method_text,
    ]
    lines += _growth_lines(growth, mean, rnd, rules, "グループの労働生産性")
    lines.append(f"端数処理：{rnd.text}")
    lines.append(
        f"申請マイページには、{p.official_excel.value}で算出された値を転記してください（様式が正式です）。"
    )
    return GroupProductivityResult(
        members=tuple(members),
        method=p.group_method.value,
        method_text=method_text,
        labor_productivity=mean,
        baseline=base,
        year=growth.year,
        growth_rate=growth.rate,
        threshold=growth.threshold,
        meets_threshold=growth.meets,
        growth_unavailable_reason=growth.reason,
        explanation=tuple(lines),
        sources=_unique(
            p.group_method.sources + p.official_excel.sources + p.growth_method.sources + p.threshold.sources
        ),
        rounding=rnd,
    )
