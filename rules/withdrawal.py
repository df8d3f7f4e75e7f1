"""Whether cancelling a tool (or closing the business) needs a 辞退届, and what refund to expect.

Each program is judged from its own source only:

* IT導入補助金2020 — the 後年手続き FAQ, questions 6–9: within one year of the
  base date (the latest delivery date, Q9) a cancellation is a 辞退 with full
  refund including 加算金 (Q6); afterwards, within the five years after the end
  of the fiscal year containing completion, a 辞退届 is needed and the office
  decides on any refund (Q7); cancelling some of several tools is still a 辞退
  (Q8).  The FAQ says nothing about closure (廃業等) nor about what happens after
  the five years, and nothing about where to submit — the result says so and
  refers to the 後年窓口 rather than borrowing the 2023 rule.
* IT導入補助金2023 複数社連携 — the 効果報告の手引き: cancellation (part or all)
  and closure need a 辞退届 via 申請マイページ; a full or partial refund may
  follow under 交付規程 25/26/29条, with 加算金 (29条) and 延滞金 (30条).  The
  手引き states no one-year rule and no period, so none is computed.

How a date exactly on a boundary counts is an assumption (民法の期間計算), stated
in rules.toml and in every result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, get_args

from faq.models import SourceRef
from rules.config import RulesConfig, load_rules
from rules.errors import DomainError
from rules.parsing import format_date

Program = Literal["it2020", "it2023-multi"]
Event = Literal["cancel-part", "cancel-all", "closure"]
Refund = Literal["full", "decided_by_office", "none", "unknown"]
Case = Literal[
    "it2020-within-one-year",
    "it2020-within-window",
    "it2020-after-window",
    "it2020-closure-not-covered",
    "it2023-withdrawal",
]

PROGRAMS: tuple[Program, ...] = get_args(Program)
EVENTS: tuple[Event, ...] = get_args(Event)

EVENT_LABELS: dict[Event, str] = {
    "cancel-part": "導入したITツールの一部の解約・利用停止",
    "cancel-all": "導入したITツールすべての解約・利用停止",
    "closure": "廃業・倒産・事業廃止・事業譲渡・吸収合併等",
}
REFUND_LABELS: dict[Refund, str] = {
    "full": "交付された補助金の全額返還（加算金等を含む）",
    "decided_by_office": "返還の有無・額は事務局が判断（辞退届の提出後）",
    "none": "出典には返還の定めがありません",
    "unknown": "出典に定めがなく不明（窓口にご確認ください）",
}


@dataclass(frozen=True)
class WithdrawalInputs:
    program: Program
    event: Event
    # The dates matter to IT導入補助金2020 only; the 2023 手引き sets no date rule, so there they may be left out.
    delivered: tuple[date, ...] = ()  # the delivery date of each tool (実績報告の納品日)
    cancelled: date | None = None  # done or planned; for closure, the date the project stops
    completed: date | None = None  # 補助事業の完了日

    def read_back(self) -> tuple[tuple[str, str], ...]:
        """What happened and the dates given, named and shown as every channel shows them."""
        lines = [("起きたこと", EVENT_LABELS[self.event])]
        if self.delivered:
            lines.append(("納品日", "、".join(format_date(d) for d in self.delivered)))
        if self.cancelled is not None:
            lines.append(("解約日", format_date(self.cancelled)))
        if self.completed is not None:
            lines.append(("完了日", format_date(self.completed)))
        return tuple(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "event": self.event,
            "delivered": [d.isoformat() for d in self.delivered],
            "cancelled": self.cancelled.isoformat() if self.cancelled else None,
            "completed": self.completed.isoformat() if self.completed else None,
        }


@dataclass(frozen=True)
class WithdrawalResult:
    inputs: WithdrawalInputs
    case: Case
    withdrawal_required: bool | None  # None: the source is silent, only the office can say
    refund: Refund
    summary: str  # one sentence: the verdict
    base_date: date | None  # it2020: the latest delivery date (Q9); it2023: None (no such rule)
    one_year_date: date | None  # last day still "within one year" (inclusive)
    window_start: date | None  # first day after the fiscal year containing completion
    period_end: date | None  # last day of the five-year window (inclusive)
    submit_via: str | None  # where the 辞退届 goes, when the source says
    contact: str  # contact id in faq/data/contacts.toml
    boundary_rule: str  # how a date exactly on a boundary is counted
    explanation: tuple[str, ...]
    sources: tuple[SourceRef, ...]

    def as_dict(self) -> dict[str, Any]:
        def iso(d: date | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "withdrawal_required": self.withdrawal_required,
            "refund": self.refund,
            "base_date": iso(self.base_date),
            "one_year_date": iso(self.one_year_date),
            "period_end": iso(self.period_end),
            "contact": self.contact,
            "program": self.inputs.program,
            "event": self.inputs.event,
            "case": self.case,
            "summary": self.summary,
            "window_start": iso(self.window_start),
            "submit_via": self.submit_via,
            "boundary_rule": self.boundary_rule,
            "inputs": self.inputs.as_dict(),
            "explanation": list(self.explanation),
            "sources": [{"document": s.document, "ref": s.ref} for s in self.sources],
        }


# ---------------------------------------------------------------- dates


def period_last_day(base: date, years: int) -> date:
    """The last day of a period of `years` counted from `base` under 民法140条・143条.

    The base day itself is not counted (初日不算入), so the period starts the next
    day and ends on the day before its anniversary: base 2021-04-01 → 2022-04-01.
    When the start day is 29 February and the final year has none, the period ends
    on the last day of February (143条2項ただし書): base 2020-02-28 → 2021-02-28;
    base 2020-02-29 → start 03-01 → 2021-02-28.
    """
    start = base + timedelta(days=1)
    try:
        return start.replace(year=start.year + years) - timedelta(days=1)
    except ValueError:  # start is 29 February, the final year is not a leap year
        return date(start.year + years, 2, 28)


def fiscal_year_start(day: date, start_month: int) -> date:
    """The first day of the fiscal year containing `day` (start_month 4: 1 April)."""
    return date(day.year if day.month >= start_month else day.year - 1, start_month, 1)


def fiscal_year_end(day: date, start_month: int) -> date:
    """The last day of the fiscal year containing `day` (start_month 4: 31 March)."""
    first = fiscal_year_start(day, start_month)
    return date(first.year + 1, start_month, 1) - timedelta(days=1)


def window(completed: date, years: int, start_month: int) -> tuple[date, date]:
    """The `years` after the end of the fiscal year containing completion: (first day, last day)."""
    start = fiscal_year_end(completed, start_month) + timedelta(days=1)
    return start, date(start.year + years, start.month, 1) - timedelta(days=1)


def _as_date(name: str, value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if not isinstance(value, date):
        raise DomainError(name, f"{name} は日付で渡してください（{type(value).__name__} は使えません）。")
    return value


def _validated(inputs: WithdrawalInputs) -> tuple[tuple[date, ...], date | None, date | None]:
    if inputs.program not in PROGRAMS:
        raise DomainError(
            "program", f"制度は {' / '.join(PROGRAMS)} のいずれかです（入力：{inputs.program}）。"
        )
    if inputs.event not in EVENTS:
        raise DomainError("event", f"事由は {' / '.join(EVENTS)} のいずれかです（入力：{inputs.event}）。")
    delivered = tuple(_as_date("delivered", d) for d in inputs.delivered)
    needed = inputs.program == "it2020"  # the 2023 手引き sets no date rule
    if not delivered and needed:
        raise DomainError("delivered", "ITツールの納品日を1つ以上入力してください。")
    cancelled = None if inputs.cancelled is None and not needed else _as_date("cancelled", inputs.cancelled)
    completed = None if inputs.completed is None and not needed else _as_date("completed", inputs.completed)
    if not delivered or cancelled is None or completed is None:
        return delivered, cancelled, completed
    first, last = min(delivered), max(delivered)
    if cancelled < first:
        raise DomainError(
            "cancelled",
            f"解約日（{format_date(cancelled)}）が納品日（{format_date(first)}）より前になっています。"
            "解約（予定）日は納品日以降の日付を入力してください。",
        )
    if completed < last:
        raise DomainError(
            "completed",
            f"補助事業の完了日（{format_date(completed)}）が最も遅い納品日（{format_date(last)}）より前になっています。"
            "完了日は、すべてのITツールの納品日以降の日付です。日付をご確認ください。",
        )
    return delivered, cancelled, completed


# ---------------------------------------------------------------- rules


def _when_label(event: Event) -> str:
    return "補助事業を取りやめる（予定）日" if event == "closure" else "解約・利用停止（予定）日"


def check_withdrawal(inputs: WithdrawalInputs, rules: RulesConfig | None = None) -> WithdrawalResult:
    """Judge one cancellation or closure under its own program's source."""
    rules = rules or load_rules()
    delivered, cancelled, completed = _validated(inputs)
    if inputs.program == "it2020":
        if cancelled is None or completed is None:  # _validated requires them for 2020
            raise DomainError("cancelled", "解約日と補助事業の完了日を入力してください。")
        return _it2020(inputs, delivered, cancelled, completed, rules)
    return _it2023(inputs, cancelled, completed, rules)


def _it2020(
    inputs: WithdrawalInputs,
    delivered: tuple[date, ...],
    cancelled: date,
    completed: date,
    rules: RulesConfig,
) -> WithdrawalResult:
    r = rules.withdrawal.it2020
    start_month = rules.fiscal_year.start_month.value
    base = max(delivered)
    one_year = period_last_day(base, r.one_year.value)
    fy_end = fiscal_year_end(completed, start_month)
    fy_start = fiscal_year_start(completed, start_month)
    w_start, w_end = window(completed, r.window_years.value, start_month)
    f = format_date
    boundary = r.boundary.assumption or ""
    when = _when_label(inputs.event)

    lines = [f"事由：{EVENT_LABELS[inputs.event]}（{when} {f(cancelled)}）"]
    if len(delivered) > 1:
        lines.append(
            f"基準日：{f(base)}。納品日が異なる複数のITツールは、事務局に提出した実績報告の納品日が"
            "遅い方を基準とします（質問9）。"
        )
    else:
        lines.append(f"基準日：{f(base)}（ITツールの納品日）")
    lines.append(f"1年未満として扱う期限：{f(one_year)}（この日までの解約・利用停止は「1年未満」です）")
    lines.append(
        f"辞退届が必要な期間：{f(w_start)}〜{f(w_end)}（補助事業の完了日 {f(completed)} の属する年度"
        f"（{f(fy_start)}〜{f(fy_end)}）の終了後{r.window_years.value}年間）"
    )
    if cancelled < base:
        lines.append("解約日が最も遅い納品日より前のため、基準日から1年未満の解約として扱います。")
    if cancelled < completed:
        lines.append(
            "解約日が補助事業の完了日より前です。完了前の解約は後年手続きのFAQが想定していない可能性があるため、"
            "後年窓口にご確認ください。"
        )

    sources: list[SourceRef] = [*r.base_date.sources]
    case: Case
    required: bool | None
    refund: Refund
    if inputs.event == "closure":
        case, required, refund = "it2020-closure-not-covered", None, "unknown"
        summary = "FAQには廃業等の場合の定めがないため、辞退届の要否と返還は後年窓口にご確認ください。"
        lines.append(
            "IT導入補助金2020 のFAQ（後年手続きについて）には、廃業・倒産・事業廃止・事業譲渡・吸収合併等の場合の"
            "手続きは書かれていません。辞退届が必要か、返還があるかは、後年窓口にご確認ください。"
        )
        lines.append(
            "参考：廃業等に伴ってITツールを使用しなくなる場合は、質問6・7の「使用しなくなる場合」に当たる可能性があります"
            f"（1年未満の期限 {f(one_year)}、期間の終わり {f(w_end)}）。当てはまるかどうかは事務局の判断です。"
        )
        sources += [*r.one_year.sources, *r.window_years.sources]
    elif cancelled <= one_year:
        case, required, refund = "it2020-within-one-year", True, "full"
        summary = "辞退届の提出が必要です。交付された補助金は全額返還（加算金等を含む）となります。"
        lines.append(
            f"{when} {f(cancelled)} は基準日から1年未満（期限 {f(one_year)} まで）のため、補助事業の辞退とみなされ、"
            "交付した補助金の全額返還（加算金等含む）となります。辞退届の提出が必要です（質問6）。"
        )
        sources += r.one_year.sources
    elif cancelled <= w_end:
        case, required, refund = "it2020-within-window", True, "decided_by_office"
        summary = "辞退届の提出が必要です。返還の有無は、辞退届の提出後に事務局が状況を聞いて判断します。"
        early = cancelled < w_start
        lines.append(
            f"{when} {f(cancelled)} は基準日から1年以上経過後で、期間の終わり（{f(w_end)}）までのため、"
            "辞退届の提出が必要です。補助金の返還の有無は、辞退届を提出し、事務局が状況を伺った後の判断となります（質問7）。"
        )
        if early:
            lines.append(
                f"この解約日は完了年度の終了（{f(fy_end)}）より前です。質問7は「年度の終了後5年間」と書いていますが、"
                "その期間が終わる前の解約として、辞退届が必要なものとして扱っています。"
            )
        sources += [*r.one_year.sources, *r.window_years.sources]
    else:
        case, required, refund = "it2020-after-window", False, "none"
        summary = "FAQ上、辞退届や返還の定めはない時期です。念のため後年窓口にご確認ください。"
        lines.append(
            f"{when} {f(cancelled)} は期間の終わり（{f(w_end)}）より後です。FAQ（質問6・7）には、この時期の解約・"
            "利用停止について辞退届の提出や補助金の返還の定めはありません。念のため後年窓口にご確認ください。"
        )
        sources += [*r.one_year.sources, *r.window_years.sources]

    if inputs.event == "cancel-part" and r.partial_counts_as_withdrawal.value:
        lines.append(
            "複数のITツールの一部の解約であっても、実施している補助事業の辞退とみなされます。"
            "補助金の全額返還となる場合がありますので、ご注意ください（質問8）。"
        )
        sources += r.partial_counts_as_withdrawal.sources
    near = {one_year, one_year + timedelta(days=1), w_end, w_end + timedelta(days=1)}
    if inputs.event != "closure" and cancelled in near:
        lines.append(
            "解約日が期限の境目の日にあたります。日付の数え方は下記の前提によるため、後年窓口にもご確認ください。"
        )
    if required is not False:
        lines.append("提出方法：FAQには辞退届の提出方法が書かれていません。後年窓口にお問い合わせください。")
    lines.append(f"日付の数え方：{boundary}")
    return WithdrawalResult(
        inputs=inputs,
        case=case,
        withdrawal_required=required,
        refund=refund,
        summary=summary,
        base_date=base,
        one_year_date=one_year,
        window_start=w_start,
        period_end=w_end,
        submit_via=None,
        contact=r.contact,
        boundary_rule=boundary,
        explanation=tuple(lines),
        sources=tuple(dict.fromkeys(sources)),
    )


def _it2023(
    inputs: WithdrawalInputs,
    cancelled: date | None,
    completed: date | None,
    rules: RulesConfig,
) -> WithdrawalResult:
    r = rules.withdrawal.it2023_multi
    f = format_date
    articles = "、".join(f"第{n}条" for n in r.refund_articles.value)
    event_rule = {
        "cancel-part": "導入したITツールを解約・利用停止した場合には、辞退届の提出が必要です。複数のITツールを導入し、"
        "そのうちの一部を解約する場合であっても、実施している補助事業の辞退とみなします。",
        "cancel-all": "導入したITツールを解約・利用停止した場合には、辞退届の提出が必要です。",
        "closure": "廃業・倒産・事業廃止・事業譲渡・吸収合併等により補助事業を取りやめた場合には、辞退届の提出が必要です。",
    }[inputs.event]
    boundary = "手引きには解約の時期による区別や期間の定めがないため、境目となる日付はありません。"
    when = f"（{_when_label(inputs.event)} {f(cancelled)}）" if cancelled else ""
    lines = [
        f"事由：{EVENT_LABELS[inputs.event]}{when}",
        event_rule,
        f"{r.submit_via.value}より辞退届を提出してください。辞退届については「後年手続きの手引き」をご確認ください。",
        f"辞退となる場合、交付規程{articles}に基づき、交付された補助金の全額返還あるいは"
        "一部返還が発生することがあります。返還の有無と額は、事務局が判断します。",
        f"返還が必要となる場合（交付規程第{r.repayment_article.value}条）、第{r.surcharge_article.value}条に基づき、"
        "補助金受領の日から返還金納付の日までの日数に応じて加算金を納付する必要があります。",
        f"納付が遅れた場合には、交付規程第{r.late_fee_article.value}条に基づき延滞金が発生します。",
        "この手引きには、導入から1年以内かどうかといった時期による区別や、辞退届が必要な期間の終わりは書かれていません。"
        "そのため、基準日・1年の期限・期間の終わりは示しません（IT導入補助金2020のFAQの定めは、この事業には当てはめません）。"
        "時期については「後年手続きの手引き」（この案内では参照できない別の資料です）をご確認いただくか、コールセンターにお問い合わせください。",
    ]
    if cancelled is not None and completed is not None and cancelled < completed:
        lines.append("解約日が補助事業の完了日より前です。手続きについてコールセンターにご確認ください。")
    return WithdrawalResult(
        inputs=inputs,
        case="it2023-withdrawal",
        withdrawal_required=True,
        refund="decided_by_office",
        summary=f"辞退届の提出が必要です（{r.submit_via.value}から）。全額または一部の返還が発生することがあり、事務局が判断します。",
        base_date=None,
        one_year_date=None,
        window_start=None,
        period_end=None,
        submit_via=r.submit_via.value,
        contact=r.contact,
        boundary_rule=boundary,
        explanation=tuple(lines),
        sources=tuple(dict.fromkeys([*r.events.sources, *r.submit_via.sources, *r.refund_articles.sources])),
    )
