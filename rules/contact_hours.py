"""Is a contact's line open now, and when does it open next?

An applicant told to "call the 後年窓口" at 18:00 on a Friday should also be
told it opens on Monday at 9:30.  Hours and closed days come from the contact
itself (faq/data/contacts.toml, never copied here); Japanese public holidays
from the maintained `holidays` package, including 振替休日 and one-off
holidays; 年末年始 only for contacts that say `year_end_closed`, with the dates
of rules.toml (an assumption: the sources give none).  A line is open from its
opening minute up to, not including, its closing minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from faq.models import Contact, Hours
from rules.config import RulesConfig, load_rules

TOKYO = ZoneInfo("Asia/Tokyo")
_WEEKDAYS = "月火水木金土日"
_DAY_TOKENS = {
    **{ch: i for i, ch in enumerate(_WEEKDAYS)},
    **{f"{ch}曜": i for i, ch in enumerate(_WEEKDAYS)},
    **{f"{ch}曜日": i for i, ch in enumerate(_WEEKDAYS)},
}
_HOLIDAY_TOKENS = frozenset({"祝日", "祝", "祝祭日", "祝休日", "休日"})
_YEAR_END_TOKENS = frozenset({"年末年始"})
_SEARCH_DAYS = 30  # longer than any closure (年末年始 + a weekend + holidays)


@dataclass(frozen=True)
class LineStatus:
    contact_id: str
    open_now: bool | None  # None: the contact states no hours (a form, a web page)
    closes_at: datetime | None  # today's closing time, when open
    next_open: datetime | None  # the next opening, when closed (None if none within 30 days)
    reason: str | None  # why closed: 土曜日 / 祝日（元日） / 年末年始 / 受付時間前 / 受付時間後
    text: str  # 「受付中（17:30まで）」「受付時間外（次は月曜 9:30）」

    def as_dict(self) -> dict[str, object]:
        return {
            "contact": self.contact_id,
            "open_now": self.open_now,
            "closes_at": self.closes_at.isoformat() if self.closes_at else None,
            "next_open": self.next_open.isoformat() if self.next_open else None,
            "reason": self.reason,
            "text": self.text,
        }


@dataclass(frozen=True)
class _Schedule:
    open: time
    close: time
    closed_weekdays: frozenset[int]
    holidays_closed: bool
    year_end_closed: bool


def _clock(value: str) -> time:
    hour, minute = value.split(":")
    return time(int(hour), int(minute))


def _schedule(contact: Contact, hours: Hours) -> _Schedule:
    weekdays: set[int] = set()
    year_end = hours.year_end_closed
    on_holidays = False
    for token in hours.closed_days:
        if token in _DAY_TOKENS:
            weekdays.add(_DAY_TOKENS[token])
        elif token in _HOLIDAY_TOKENS:
            on_holidays = True
        elif token in _YEAR_END_TOKENS:
            year_end = True
        else:
            raise ValueError(f"contact {contact.id!r}: unknown closed day {token!r} in hours.closed_days")
    opens, closes = _clock(hours.open), _clock(hours.close)
    if not opens < closes:
        raise ValueError(f"contact {contact.id!r}: hours.open must be before hours.close")
    return _Schedule(opens, closes, frozenset(weekdays), on_holidays, year_end)


@lru_cache(maxsize=64)
def _holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("JP", years=year, language="ja")


def holiday_name(day: date) -> str | None:
    """The Japanese name of a public holiday (振替休日 included), or None."""
    name = _holidays(day.year).get(day)
    return str(name) if name else None


def _closed_reason(day: date, schedule: _Schedule, rules: RulesConfig) -> str | None:
    if schedule.year_end_closed and rules.year_end_closure.contains(day):
        return "年末年始"
    if day.weekday() in schedule.closed_weekdays:
        return f"{_WEEKDAYS[day.weekday()]}曜日"
    if schedule.holidays_closed and (name := holiday_name(day)):
        return f"祝日（{name}）"
    return None


def _fmt_clock(value: time) -> str:
    return f"{value.hour}:{value.minute:02d}"


def _when(opening: datetime, now: datetime) -> str:
    days = (opening.date() - now.date()).days
    if days == 0:
        return f"本日 {_fmt_clock(opening.time())}"
    if days < 7:
        return f"{_WEEKDAYS[opening.weekday()]}曜 {_fmt_clock(opening.time())}"
    d = opening.date()
    return f"{d.month}月{d.day}日（{_WEEKDAYS[d.weekday()]}）{_fmt_clock(opening.time())}"


def line_status(contact: Contact, now: datetime, rules: RulesConfig | None = None) -> LineStatus:
    """Whether `contact`'s line is open at `now` (an aware datetime) and when it next opens."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (e.g. datetime.now(ZoneInfo('Asia/Tokyo')))")
    if contact.hours is None:
        return LineStatus(contact.id, None, None, None, None, "受付時間の定めはありません")
    rules = rules or load_rules()
    schedule = _schedule(contact, contact.hours)
    local = now.astimezone(TOKYO)
    today = local.date()
    reason = _closed_reason(today, schedule, rules)
    if reason is None and schedule.open <= local.time().replace(tzinfo=None) < schedule.close:
        closes = datetime.combine(today, schedule.close, TOKYO)
        return LineStatus(contact.id, True, closes, None, None, f"受付中（{_fmt_clock(schedule.close)}まで）")
    if reason is None:
        reason = "受付時間前" if local.time().replace(tzinfo=None) < schedule.open else "受付時間後"
    for offset in range(_SEARCH_DAYS + 1):
        day = today + timedelta(days=offset)
        if _closed_reason(day, schedule, rules) is not None:
            continue
        opening = datetime.combine(day, schedule.open, TOKYO)
        if opening > local:
            return LineStatus(
                contact.id, False, None, opening, reason, f"受付時間外（次は{_when(opening, local)}）"
            )
    return LineStatus(contact.id, False, None, None, reason, "受付時間外")


def is_open(contact: Contact, now: datetime, rules: RulesConfig | None = None) -> bool | None:
    return line_status(contact, now, rules).open_now


def next_opening(contact: Contact, now: datetime, rules: RulesConfig | None = None) -> datetime | None:
    """The next time the line opens after `now`; None when it is open now or states no hours."""
    return line_status(contact, now, rules).next_open


def contact_brief(contact: Contact, now: datetime | None = None) -> str:
    """A line in one compact line: 「後年窓口 0570-002-551（受付中・17:30まで）」.

    The first number only (the others are in the line's full block, shown on request) and,
    with `now`, whether it is open now; without a clock, its stated hours.
    """
    name = contact.short or contact.name
    number = contact.phones[0].number if contact.phones else (contact.url or "")
    if now is None:
        hours = f"　{contact.hours_text}" if contact.hours_text else ""
        return f"{name} {number}{hours}".strip()
    status = line_status(contact, now)
    if status.open_now is None:
        return f"{name} {number}".strip()
    if status.open_now and status.closes_at is not None:
        state = f"受付中・{_fmt_clock(status.closes_at.time())}まで"
    elif status.next_open is not None:
        state = f"時間外・次は{_when(status.next_open, now.astimezone(TOKYO))}"
    else:
        state = "時間外"
    return f"{name} {number}（{state}）"
