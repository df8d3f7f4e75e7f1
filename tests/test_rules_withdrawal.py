"""Withdrawal (辞退): every branch of each program's own rule, with the dates on and next to each boundary."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import (
    EVENTS,
    DomainError,
    Event,
    Program,
    WithdrawalInputs,
    WithdrawalResult,
    check_withdrawal,
    fiscal_year_end,
    period_last_day,
    window,
)

DAY = timedelta(days=1)


def check(
    cancelled: date,
    *,
    program: Program = "it2020",
    event: Event = "cancel-all",
    delivered: tuple[date, ...] = (date(2021, 4, 1),),
    completed: date = date(2021, 4, 20),
) -> WithdrawalResult:
    return check_withdrawal(WithdrawalInputs(program, event, delivered, cancelled, completed))


# ---------------------------------------------------------------- date arithmetic


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        (date(2021, 4, 1), date(2022, 4, 1)),
        (date(2021, 12, 31), date(2022, 12, 31)),
        (date(2020, 2, 29), date(2021, 2, 28)),  # leap-day base: no 29 Feb next year
        (date(2020, 2, 28), date(2021, 2, 28)),  # start 29 Feb → last day of February
        (date(2023, 2, 28), date(2024, 2, 29)),  # start 1 Mar 2023 → day before 1 Mar 2024
        (date(2024, 2, 29), date(2025, 2, 28)),
    ],
)
def test_one_year_last_day_follows_the_civil_code(base: date, expected: date) -> None:
    assert period_last_day(base, 1) == expected


@pytest.mark.parametrize(
    ("completed", "fy_end", "period_end"),
    [
        (date(2021, 3, 31), date(2021, 3, 31), date(2026, 3, 31)),
        (date(2021, 4, 1), date(2022, 3, 31), date(2027, 3, 31)),
        (date(2020, 2, 29), date(2020, 3, 31), date(2025, 3, 31)),
        (date(2021, 12, 31), date(2022, 3, 31), date(2027, 3, 31)),
    ],
)
def test_fiscal_year_and_window(completed: date, fy_end: date, period_end: date) -> None:
    assert fiscal_year_end(completed, 4) == fy_end
    assert window(completed, 5, 4) == (fy_end + DAY, period_end)


# ---------------------------------------------------------------- IT導入補助金2020


def test_within_one_year_full_refund() -> None:
    result = check(date(2021, 10, 1))
    assert result.case == "it2020-within-one-year"
    assert result.withdrawal_required is True
    assert result.refund == "full"
    assert result.base_date == date(2021, 4, 1)
    assert result.one_year_date == date(2022, 4, 1)
    assert result.period_end == date(2027, 3, 31)
    assert result.contact == "it2020-kounen"
    text = "\n".join(result.explanation)
    assert "全額返還（加算金等含む）" in text and "質問6" in text


def test_exactly_one_year_is_still_within_one_year() -> None:
    on = check(date(2022, 4, 1))
    after = check(date(2022, 4, 2))
    assert (on.case, on.refund) == ("it2020-within-one-year", "full")
    assert (after.case, after.refund) == ("it2020-within-window", "decided_by_office")
    for result in (on, after):
        assert any("境目" in line for line in result.explanation)
        assert "初日不算入" in result.boundary_rule


def test_leap_day_base_date() -> None:
    delivered = (date(2020, 2, 29),)
    on = check(date(2021, 2, 28), delivered=delivered, completed=date(2020, 3, 10))
    after = check(date(2021, 3, 1), delivered=delivered, completed=date(2020, 3, 10))
    assert on.one_year_date == date(2021, 2, 28)
    assert on.refund == "full"
    assert after.refund == "decided_by_office"
    assert after.period_end == date(2025, 3, 31)


def test_after_one_year_within_window_office_decides() -> None:
    result = check(date(2024, 6, 1))
    assert result.case == "it2020-within-window"
    assert result.withdrawal_required is True
    assert result.refund == "decided_by_office"
    assert "質問7" in "\n".join(result.explanation)


def test_last_day_of_window_and_the_day_after() -> None:
    last = check(date(2027, 3, 31))
    after = check(date(2027, 4, 1))
    assert (last.case, last.withdrawal_required, last.refund) == (
        "it2020-within-window",
        True,
        "decided_by_office",
    )
    assert (after.case, after.withdrawal_required, after.refund) == ("it2020-after-window", False, "none")
    text = "\n".join(after.explanation)
    assert "定めはありません" in text and "後年窓口" in text


@pytest.mark.parametrize(
    ("completed", "period_end"),
    [(date(2021, 3, 31), date(2026, 3, 31)), (date(2021, 4, 1), date(2027, 3, 31))],
)
def test_completion_on_31_march_vs_1_april(completed: date, period_end: date) -> None:
    delivered = (date(2021, 3, 1),)
    result = check(date(2026, 6, 1), delivered=delivered, completed=completed)
    assert result.period_end == period_end
    expected = "it2020-after-window" if completed.month == 3 else "it2020-within-window"
    assert result.case == expected


def test_cancellation_before_completion_year_end_is_within_window() -> None:
    # Completion more than a year after delivery: after the one-year date, before the window starts.
    result = check(date(2022, 6, 1), delivered=(date(2021, 4, 1),), completed=date(2022, 5, 1))
    assert result.window_start == date(2023, 4, 1)
    assert result.case == "it2020-within-window"
    assert any("年度の終了" in line and "より前" in line for line in result.explanation)


def test_latest_delivery_is_the_base_date() -> None:
    result = check(date(2022, 3, 15), delivered=(date(2021, 4, 1), date(2021, 3, 1)), event="cancel-part")
    assert result.base_date == date(2021, 4, 1)
    text = "\n".join(result.explanation)
    assert "質問9" in text
    assert result.refund == "full"


def test_cancelling_before_the_latest_delivery_counts_as_within_one_year() -> None:
    result = check(
        date(2021, 3, 15), delivered=(date(2021, 3, 1), date(2021, 4, 1)), completed=date(2021, 4, 20)
    )
    assert result.refund == "full"
    assert any("最も遅い納品日より前" in line for line in result.explanation)


def test_partial_cancellation_is_a_withdrawal() -> None:
    result = check(date(2023, 1, 10), event="cancel-part")
    assert result.withdrawal_required is True
    text = "\n".join(result.explanation)
    assert "一部の解約であっても" in text and "質問8" in text
    assert any(s.ref == "質問8" for s in result.sources)


def test_closure_is_not_covered_by_the_2020_faq() -> None:
    result = check(date(2022, 1, 1), event="closure")
    assert result.case == "it2020-closure-not-covered"
    assert result.withdrawal_required is None
    assert result.refund == "unknown"
    text = "\n".join(result.explanation)
    assert "書かれていません" in text and "後年窓口" in text
    assert "申請マイページ" not in text  # nothing borrowed from the 2023 手引き
    assert "交付規程" not in text


def test_2020_submission_route_is_not_invented() -> None:
    result = check(date(2021, 10, 1))
    assert result.submit_via is None
    assert any("提出方法" in line and "書かれていません" in line for line in result.explanation)


def test_2020_sources_are_the_2020_faq_only() -> None:
    for event in EVENTS:
        for cancelled in (date(2021, 10, 1), date(2024, 1, 1), date(2030, 1, 1)):
            result = check(cancelled, event=event)
            assert {s.document for s in result.sources} == {"it2020-faq"}


# ---------------------------------------------------------------- IT導入補助金2023 複数社連携


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("cancelled", [date(2023, 9, 1), date(2024, 9, 1), date(2040, 1, 1)])
def test_2023_every_event_needs_a_withdrawal_and_the_office_decides(event: Event, cancelled: date) -> None:
    result = check(
        cancelled,
        program="it2023-multi",
        event=event,
        delivered=(date(2023, 6, 1),),
        completed=date(2023, 8, 1),
    )
    assert result.case == "it2023-withdrawal"
    assert result.withdrawal_required is True
    assert result.refund == "decided_by_office"
    assert result.submit_via == "申請マイページ"
    assert result.contact == "it2023-callcenter"
    assert result.base_date is None and result.one_year_date is None and result.period_end is None
    text = "\n".join(result.explanation)
    for fragment in (
        "第25条、第26条、第29条",
        "加算金",
        "第30条",
        "延滞金",
        "書かれていません",
        "申請マイページ",
    ):
        assert fragment in text
    assert "質問" not in text  # no 2020 FAQ rule borrowed
    assert {s.document for s in result.sources} == {"it2023-tebiki"}


def test_2023_partial_and_closure_wording() -> None:
    part = check(
        date(2024, 1, 1),
        program="it2023-multi",
        event="cancel-part",
        delivered=(date(2023, 6, 1),),
        completed=date(2023, 8, 1),
    )
    closure = check(
        date(2024, 1, 1),
        program="it2023-multi",
        event="closure",
        delivered=(date(2023, 6, 1),),
        completed=date(2023, 8, 1),
    )
    assert any("一部を解約する場合であっても" in line for line in part.explanation)
    assert any("廃業・倒産・事業廃止・事業譲渡・吸収合併等" in line for line in closure.explanation)


# ---------------------------------------------------------------- validation and output


def test_cancellation_before_delivery_is_a_domain_error() -> None:
    with pytest.raises(DomainError) as info:
        check(date(2021, 3, 31))
    assert info.value.field == "cancelled"
    assert "納品日" in info.value.message and "より前" in info.value.message


def test_completion_before_delivery_is_a_domain_error() -> None:
    with pytest.raises(DomainError) as info:
        check(date(2022, 1, 1), completed=date(2021, 3, 1))
    assert info.value.field == "completed"


@pytest.mark.parametrize(
    ("program", "event", "delivered", "field"),
    [
        ("it2020", "cancel-all", (), "delivered"),
        ("it2021", "cancel-all", (date(2021, 1, 1),), "program"),
        ("it2020", "sell", (date(2021, 1, 1),), "event"),
        ("it2020", "closure", ("2021-01-01",), "delivered"),
    ],
)
def test_invalid_inputs(program: Any, event: Any, delivered: Any, field: str) -> None:
    # Dialog state is JSON: whatever arrives untyped must fail as a DomainError, not a crash.
    with pytest.raises(DomainError) as info:
        check_withdrawal(WithdrawalInputs(program, event, delivered, date(2022, 1, 1), date(2021, 4, 1)))
    assert info.value.field == field


def test_as_dict_has_iso_dates_and_the_issue_keys() -> None:
    data = check(date(2022, 4, 1), event="cancel-part").as_dict()
    for key in (
        "withdrawal_required",
        "refund",
        "base_date",
        "one_year_date",
        "period_end",
        "contact",
        "explanation",
    ):
        assert key in data
    assert data["base_date"] == "2021-04-01"
    assert data["one_year_date"] == "2022-04-01"
    assert data["period_end"] == "2027-03-31"
    assert data["inputs"]["delivered"] == ["2021-04-01"]
    json.dumps(data, ensure_ascii=False)
    data23 = check(
        date(2024, 1, 1), program="it2023-multi", delivered=(date(2023, 6, 1),), completed=date(2023, 8, 1)
    ).as_dict()
    assert data23["one_year_date"] is None and data23["period_end"] is None and data23["base_date"] is None


@settings(max_examples=300, deadline=None)
@given(
    program=st.sampled_from(["it2020", "it2023-multi"]),
    event=st.sampled_from(EVENTS),
    delivered=st.lists(st.dates(date(2019, 1, 1), date(2025, 12, 31)), min_size=1, max_size=4),
    lag=st.integers(0, 400),
    after=st.integers(0, 4000),
)
def test_results_are_consistent(
    program: Program, event: Event, delivered: list[date], lag: int, after: int
) -> None:
    base = max(delivered)
    completed = base + timedelta(days=lag)
    cancelled = min(delivered) + timedelta(days=after)
    result = check_withdrawal(WithdrawalInputs(program, event, tuple(delivered), cancelled, completed))
    json.dumps(result.as_dict())
    assert result.explanation and result.summary
    if program == "it2023-multi":
        assert (result.withdrawal_required, result.refund) == (True, "decided_by_office")
        return
    assert result.base_date == base and result.one_year_date and result.period_end
    assert (result.period_end.month, result.period_end.day) == (3, 31)
    assert result.period_end > completed
    if event == "closure":
        assert (result.withdrawal_required, result.refund) == (None, "unknown")
    elif cancelled <= result.one_year_date:
        assert result.refund == "full"
    elif cancelled <= result.period_end:
        assert result.refund == "decided_by_office"
    else:
        assert (result.withdrawal_required, result.refund) == (False, "none")
