"""The two calculators as forms: read the fields with the rules' parsers, run the rules.

The same parsers and rules as `kounen calc productivity` / `kounen check withdrawal`
(bot/cli_rules.py) and the chat dialogs, so a figure typed here means what it means
there.  Unlike the command line, every field is read before anything is reported, so
all the input errors appear at once, each next to its field: a ParseError names the
field it came from, a DomainError carries the rule's field name, mapped here to the
form's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

from rules import (
    EVENT_LABELS,
    EVENTS,
    PROGRAMS,
    DomainError,
    Event,
    ParseError,
    ProductivityInputs,
    ProductivityResult,
    Program,
    WithdrawalInputs,
    WithdrawalResult,
    calculate_productivity,
    check_withdrawal,
    parse_amount,
    parse_count,
    parse_date,
    parse_hours,
    parse_productivity,
    parse_report_year,
)

T = TypeVar("T")
MAX_FIELD = 200  # characters kept from any field (the parsers refuse long text anyway)
MAX_DATES = 20

PRODUCTIVITY_FIELDS = (
    "operating_profit",
    "labor_cost",
    "depreciation",
    "employees",
    "annual_hours",
    "baseline",
    "year",
    "group_includes_2022",
)
WITHDRAWAL_FIELDS = ("program", "event", "delivered", "cancelled", "completed")

# DomainError.field (rule side) → form field.  Unknown names go to the form-level errors.
_PRODUCTIVITY_DOMAIN = {
    "operating_profit": "operating_profit",
    "営業利益": "operating_profit",
    "labor_cost": "labor_cost",
    "人件費": "labor_cost",
    "depreciation": "depreciation",
    "減価償却費": "depreciation",
    "employees": "employees",
    "annual_hours": "annual_hours",
    "年間平均労働時間": "annual_hours",
    "baseline": "baseline",
    "申請時の実績値": "baseline",
    "year": "year",
}
_WITHDRAWAL_DOMAIN = {f: f for f in WITHDRAWAL_FIELDS}
_DATE_SPLIT = re.compile(r"[\n\r,、，;；]+")


@dataclass
class FormState:
    """Submitted values (as typed, to refill the form) and the errors per field."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.general

    def read(self, name: str, parser: Callable[[str], T]) -> T | None:
        text = self.values.get(name, "").strip()
        if not text:
            return None
        try:
            return parser(text)
        except ParseError as exc:
            self.errors.setdefault(name, exc.message)
            return None

    def require(self, name: str, message: str) -> None:
        if not self.values.get(name, "").strip():
            self.errors.setdefault(name, message)

    def domain(self, exc: DomainError, mapping: Mapping[str, str]) -> None:
        target = mapping.get(exc.field)
        if target is None:
            self.general.append(exc.message)
        else:
            self.errors.setdefault(target, exc.message)


def form_values(form: Mapping[str, object], names: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        out[name] = value[:MAX_FIELD] if isinstance(value, str) else ""
    return out


# ---------------------------------------------------------------- productivity


def productivity(values: dict[str, str]) -> tuple[FormState, ProductivityResult | None]:
    state = FormState(values)
    examples = {
        "operating_profit": "営業利益を入力してください（例：3000万、▲500万）",
        "labor_cost": "人件費を入力してください（例：2,000万円）",
        "depreciation": "減価償却費を入力してください（例：500万、ない場合は 0）",
        "employees": "従業員数を入力してください（例：10人）",
        "annual_hours": "年間平均労働時間を入力してください（例：1,800時間）",
    }
    for name, message in examples.items():
        state.require(name, message)
    profit = state.read("operating_profit", parse_amount)
    labor = state.read("labor_cost", parse_amount)
    depreciation = state.read("depreciation", parse_amount)
    employees = state.read("employees", parse_count)
    hours = state.read("annual_hours", parse_hours)
    baseline = state.read("baseline", parse_productivity)
    year = state.read("year", parse_report_year)
    has_baseline = bool(values.get("baseline", "").strip())
    has_year = bool(values.get("year", "").strip())
    if has_baseline and not has_year:
        state.errors.setdefault(
            "year", "申請時の実績値を入れた場合は、効果報告年度（1年度目か2年度目）も選んでください。"
        )
    if has_year and not has_baseline:
        state.errors.setdefault(
            "baseline", "伸び率を出すには、申請時の実績値（労働生産性）も入力してください。"
        )
    if (
        not state.ok
        or profit is None
        or labor is None
        or depreciation is None
        or employees is None
        or hours is None
    ):  # a missing value already has its error in `state` (require), narrowed here without assert
        return state, None
    inputs = ProductivityInputs(
        operating_profit=profit,
        labor_cost=labor,
        depreciation=depreciation,
        employees=employees,
        annual_hours=hours,
        baseline=baseline,
        year=year,
        group_includes_2022=values.get("group_includes_2022", "") in ("1", "on", "yes", "true"),
    )
    try:
        return state, calculate_productivity(inputs)
    except DomainError as exc:
        state.domain(exc, _PRODUCTIVITY_DOMAIN)
        return state, None


# ---------------------------------------------------------------- withdrawal


def _choice(state: FormState, name: str, allowed: tuple[T, ...], message: str) -> T | None:
    value = state.values.get(name, "").strip().lower()
    for candidate in allowed:
        if value == candidate:
            return candidate
    state.errors.setdefault(name, message)
    return None


def withdrawal(values: dict[str, str], today: date) -> tuple[FormState, WithdrawalResult | None]:
    state = FormState(values)
    program: Program | None = _choice(state, "program", PROGRAMS, "制度を選んでください。")
    event: Event | None = _choice(state, "event", EVENTS, "事由を選んでください。")
    state.require("delivered", "ITツールの納品日を入力してください（複数あるときは1行に1つ）。")
    state.require("cancelled", "解約・利用停止（予定）日、または廃業等の日を入力してください。")
    state.require("completed", "補助事業の完了日を入力してください。")

    def read_date(text: str) -> date:
        return parse_date(text, today=today)

    delivered: list[date] = []
    lines = [part.strip() for part in _DATE_SPLIT.split(values.get("delivered", "")) if part.strip()]
    if len(lines) > MAX_DATES:
        state.errors.setdefault("delivered", f"納品日は{MAX_DATES}件までにしてください。")
    for number, line in enumerate(lines[:MAX_DATES], start=1):
        try:
            delivered.append(read_date(line))
        except ParseError as exc:
            where = f"{number}件目：" if len(lines) > 1 else ""
            state.errors.setdefault("delivered", where + exc.message)
            break
    cancelled = state.read("cancelled", read_date)
    completed = state.read("completed", read_date)
    if not state.ok or program is None or event is None or cancelled is None or completed is None:
        return state, None
    inputs = WithdrawalInputs(
        program=program, event=event, delivered=tuple(delivered), cancelled=cancelled, completed=completed
    )
    try:
        return state, check_withdrawal(inputs)
    except DomainError as exc:
        state.domain(exc, _WITHDRAWAL_DOMAIN)
        return state, None


EVENT_CHOICES: tuple[tuple[str, str], ...] = tuple((e, EVENT_LABELS[e]) for e in EVENTS)
