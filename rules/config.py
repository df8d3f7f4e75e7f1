"""The rule constants of rules/data/rules.toml, typed and validated.

Thresholds, periods and article numbers decide what the bot tells an applicant
about money, so they live in one data file next to the passage each comes from,
and a broken value stops start-up with the file and field named instead of
silently changing a verdict.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from faq.models import SourceRef

RULES_PATH = Path(__file__).parent / "data" / "rules.toml"

T = TypeVar("T")


class RulesConfigError(ValueError):
    """rules.toml cannot be used; the message names the file and every bad field."""

    def __init__(self, file: str, problems: list[tuple[str | None, str]]) -> None:
        self.file = file
        self.problems = problems
        parts = [f"field {loc!r}: {msg}" if loc else msg for loc, msg in problems]
        more = f" (and {len(parts) - 1} more)" if len(parts) > 1 else ""
        super().__init__(f"{file}: {parts[0] if parts else 'invalid rules file'}{more}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sourced(_Frozen, Generic[T]):
    """A value and where it comes from: a source passage, or an assumption saying why it is ours."""

    value: T
    source: SourceRef | None = None
    assumption: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _needs_a_reason(self) -> Sourced[T]:
        if self.source is None and not self.assumption:
            raise ValueError("needs a `source` or an `assumption` saying why the value is ours")
        return self

    @property
    def sources(self) -> tuple[SourceRef, ...]:
        return (self.source,) if self.source else ()


class FiscalYear(_Frozen):
    start_month: Sourced[int]

    @field_validator("start_month")
    @classmethod
    def _month(cls, value: Sourced[int]) -> Sourced[int]:
        if not 1 <= value.value <= 12:
            raise ValueError("start_month must be 1–12")
        return value


class ProductivityRules(_Frozen):
    value_added_items: Sourced[tuple[str, ...]]
    formula: Sourced[str]
    labor_cost_items: Sourced[tuple[str, ...]]
    no_employee_rule: Sourced[str]
    growth_method: Sourced[Literal["cagr"]]
    report_years: Sourced[tuple[int, ...]]
    threshold: Sourced[Decimal]
    threshold_group_2022: Sourced[Decimal]
    publication: Sourced[tuple[str, ...]]
    official_excel: Sourced[str]
    group_method: Sourced[Literal["mean"]]

    @field_validator("threshold", "threshold_group_2022")
    @classmethod
    def _fraction(cls, value: Sourced[Decimal]) -> Sourced[Decimal]:
        if not (value.value.is_finite() and Decimal(0) < value.value < Decimal(1)):
            raise ValueError("a threshold is a fraction between 0 and 1 (0.05 = 5%)")
        return value

    @field_validator("report_years")
    @classmethod
    def _years(cls, value: Sourced[tuple[int, ...]]) -> Sourced[tuple[int, ...]]:
        if not value.value or any(y not in (1, 2) for y in value.value):
            raise ValueError("report years are 1 and/or 2")
        return value


class Rounding(_Frozen):
    mode: Literal["ROUND_HALF_UP", "ROUND_HALF_EVEN", "ROUND_DOWN"]
    productivity_places: int = Field(ge=0, le=6)
    percent_places: int = Field(ge=0, le=6)
    fraction_places: int = Field(ge=2, le=10)
    assumption: str = Field(min_length=1)


class It2020Withdrawal(_Frozen):
    contact: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    base_date: Sourced[Literal["latest-delivery"]]
    one_year: Sourced[int]
    window_years: Sourced[int]
    partial_counts_as_withdrawal: Sourced[bool]
    boundary: Sourced[Literal["civil-code"]]

    @field_validator("one_year", "window_years")
    @classmethod
    def _positive(cls, value: Sourced[int]) -> Sourced[int]:
        if value.value < 1:
            raise ValueError("must be at least 1 year")
        return value


class It2023Withdrawal(_Frozen):
    contact: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    submit_via: Sourced[str]
    events: Sourced[tuple[str, ...]]
    refund_articles: Sourced[tuple[int, ...]]
    repayment_article: Sourced[int]
    surcharge_article: Sourced[int]
    late_fee_article: Sourced[int]


class WithdrawalRules(_Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    it2020: It2020Withdrawal
    it2023_multi: It2023Withdrawal = Field(alias="it2023-multi")


_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")


class YearEndClosure(_Frozen):
    start: str
    end: str
    assumption: str = Field(min_length=1)

    @field_validator("start", "end")
    @classmethod
    def _month_day(cls, value: str) -> str:
        found = _MONTH_DAY.match(value)
        if not found:
            raise ValueError("expected MM-DD, e.g. 12-29")
        date(2024, int(found.group(1)), int(found.group(2)))  # a leap year, so 02-29 is allowed
        return value

    @staticmethod
    def _pair(value: str) -> tuple[int, int]:
        month, day = value.split("-")
        return int(month), int(day)

    def contains(self, day: date) -> bool:
        """Whether `day` falls in the closure; the period may wrap over 1 January."""
        start, end, here = self._pair(self.start), self._pair(self.end), (day.month, day.day)
        if start <= end:
            return start <= here <= end
        return here >= start or here <= end


class RulesConfig(_Frozen):
    fiscal_year: FiscalYear
    productivity: ProductivityRules
    rounding: Rounding
    withdrawal: WithdrawalRules
    year_end_closure: YearEndClosure


def load_rules_file(path: Path) -> RulesConfig:
    """Read and validate a rules file; raise RulesConfigError naming the file and each bad field."""
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise RulesConfigError(str(path), [(None, "file not found")]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RulesConfigError(str(path), [(None, f"not valid TOML: {exc}")]) from None
    except OSError as exc:
        raise RulesConfigError(str(path), [(None, f"cannot read: {exc.strerror}")]) from None
    try:
        return RulesConfig.model_validate(raw)
    except ValidationError as exc:
        problems: list[tuple[str | None, str]] = [
            (".".join(str(part) for part in err["loc"]) or None, err["msg"]) for err in exc.errors()
        ]
        raise RulesConfigError(str(path), problems) from None


@lru_cache(maxsize=1)
def load_rules() -> RulesConfig:
    """The project's rules, read once per process."""
    return load_rules_file(RULES_PATH)
