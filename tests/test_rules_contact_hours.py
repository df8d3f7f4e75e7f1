"""Contact hours from contacts.toml: weekdays, opening minutes, public holidays and 年末年始 where stated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from faq import KnowledgeBase
from faq.models import Contact, Hours, SourceRef
from rules import TOKYO, holiday_name, line_status, load_rules, next_opening


def at(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TOKYO)


@pytest.fixture(scope="module")
def kounen(kb: KnowledgeBase) -> Contact:
    return kb.contacts["it2020-kounen"]


@pytest.fixture(scope="module")
def gbizid(kb: KnowledgeBase) -> Contact:
    return kb.contacts["gbizid"]


def test_open_on_a_weekday(kounen: Contact) -> None:
    status = line_status(kounen, at(2025, 1, 10, 10))  # Friday
    assert status.open_now is True
    assert status.text == "受付中（17:30まで）"
    assert status.closes_at == at(2025, 1, 10, 17, 30)
    assert status.next_open is None


def test_opening_and_closing_minutes(kounen: Contact) -> None:
    assert line_status(kounen, at(2025, 1, 10, 9, 29)).open_now is False
    assert line_status(kounen, at(2025, 1, 10, 9, 30)).open_now is True
    assert line_status(kounen, at(2025, 1, 10, 17, 29)).open_now is True
    closed = line_status(kounen, at(2025, 1, 10, 17, 30))
    assert closed.open_now is False
    assert closed.reason == "受付時間後"


def test_before_opening_today(kounen: Contact) -> None:
    status = line_status(kounen, at(2025, 1, 10, 8))
    assert status.text == "受付時間外（次は本日 9:30）"
    assert status.reason == "受付時間前"


def test_weekend_opens_monday(kounen: Contact) -> None:
    status = line_status(kounen, at(2025, 2, 1, 10))  # Saturday
    assert status.open_now is False
    assert status.reason == "土曜日"
    assert status.next_open == at(2025, 2, 3, 9, 30)
    assert status.text == "受付時間外（次は月曜 9:30）"


def test_public_holiday_from_the_holidays_package(kounen: Contact) -> None:
    status = line_status(kounen, at(2025, 1, 13, 10))  # 成人の日 (Monday)
    assert status.open_now is False
    assert status.reason == "祝日（成人の日）"
    assert status.text == "受付時間外（次は火曜 9:30）"


def test_substitute_holiday(kounen: Contact) -> None:
    assert holiday_name(at(2024, 2, 12).date()) is not None  # 振替休日
    assert line_status(kounen, at(2024, 2, 12, 10)).open_now is False


def test_year_end_only_where_the_contact_says_so(kounen: Contact, gbizid: Contact) -> None:
    assert kounen.hours is not None and not kounen.hours.year_end_closed
    assert gbizid.hours is not None and gbizid.hours.year_end_closed
    # 2024-12-30 is a Monday, not a public holiday.
    assert line_status(kounen, at(2024, 12, 30, 10)).open_now is True
    closed = line_status(gbizid, at(2024, 12, 30, 10))
    assert closed.open_now is False
    assert closed.reason == "年末年始"
    # 12/29–1/3 closed (an assumption in rules.toml); 1/4/2025 is Saturday → Monday 6 January.
    assert closed.next_open == at(2025, 1, 6, 9, 0)
    assert closed.text == "受付時間外（次は1月6日（月）9:00）"


def test_year_end_dates_are_a_stated_assumption() -> None:
    closure = load_rules().year_end_closure
    assert (closure.start, closure.end) == ("12-29", "01-03")
    assert "仮定" in closure.assumption


def test_other_time_zones_are_converted(kounen: Contact) -> None:
    # 01:00 UTC = 10:00 in Tokyo on a Friday.
    assert line_status(kounen, datetime(2025, 1, 10, 1, 0, tzinfo=UTC)).open_now is True
    # 09:00 UTC = 18:00 Friday in Tokyo; Monday the 13th is 成人の日, so Tuesday.
    assert next_opening(kounen, datetime(2025, 1, 10, 9, 0, tzinfo=UTC)) == at(2025, 1, 14, 9, 30)


def test_naive_datetime_is_refused(kounen: Contact) -> None:
    with pytest.raises(ValueError, match="aware"):
        line_status(kounen, datetime(2025, 1, 10, 10))


def test_contact_without_hours(kb: KnowledgeBase) -> None:
    status = line_status(kb.contacts["it2020-r1-form"], at(2025, 1, 10))
    assert status.open_now is None
    assert status.text == "受付時間の定めはありません"


def test_every_shipped_contact_has_readable_hours(kb: KnowledgeBase) -> None:
    for contact in kb.contacts.values():
        status = line_status(contact, at(2025, 1, 10, 10))
        assert status.text
        assert status.as_dict()["contact"] == contact.id


def test_unknown_closed_day_is_a_data_error() -> None:
    contact = Contact(
        id="x",
        program="common",
        name="x",
        hours=Hours(open="09:00", close="17:00", closed_days=("土", "お盆"), year_end_closed=False),
        source=SourceRef(document="it2020-faq", ref="質問2"),
    )
    with pytest.raises(ValueError, match="お盆"):
        line_status(contact, at(2025, 1, 10))
