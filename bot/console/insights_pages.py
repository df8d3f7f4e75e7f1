"""The insights page over a period of Tokyo dates, and its CSV exports."""

from __future__ import annotations

import csv
import io
import logging
from datetime import date, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from bot.console.case_pages import cases_of
from bot.console.core import Console, Context, jst
from bot.console.http import csv_cell, parse_day
from bot.console.insights import MAX_ROWS, Period
from bot.handoff import REASONS
from bot.store import StoreError
from rules import TOKYO

log = logging.getLogger(__name__)

DEFAULT_DAYS = 7
CSV_KINDS = {
    "unanswered": "該当なしの質問",
    "picked": "該当なしのあと選ばれた回答",
    "low": "確信度の低い質問",
    "entries": "よく使われた回答",
    "feedback": "「役に立たなかった」の評価",
}


def _period(console: Console, request: Request) -> tuple[Period, date, date, dict[str, str]]:
    today = console.now_tokyo().astimezone(TOKYO).date()
    errors: dict[str, str] = {}
    raw_from, raw_to = request.query_params.get("from"), request.query_params.get("to")
    first = parse_day(raw_from)
    last = parse_day(raw_to)
    if raw_from and first is None:
        errors["from"] = "日付を 2024-05-01 の形で入力してください。"
    if raw_to and last is None:
        errors["to"] = "日付を 2024-05-31 の形で入力してください。"
    last = last or today
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        errors["to"] = "終了日は開始日以降にしてください。"
        first, last = last, first
    start = datetime.combine(first, datetime.min.time(), TOKYO)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), TOKYO)
    return Period(start, end), first, last, errors


def insights_page(console: Console, request: Request, ctx: Context) -> Response:
    period, first, last, errors = _period(console, request)
    today = console.now_tokyo().astimezone(TOKYO).date()
    try:
        data = {
            "totals": console.insights.totals(period),
            "unanswered": console.insights.unanswered(period),
            "picked": console.insights.picked_after_not_found(period),
            "low": console.insights.low_confidence(period),
            "top": console.insights.top_entries(period),
            "feedback": console.insights.not_helpful(period),
            "cases": cases_of(console).stats(period.start, period.end),
        }
    except StoreError as exc:
        log.error("console insights: %s", exc)
        return console.log_unavailable(request, ctx)
    presets = [
        ("今日", today, today),
        ("過去7日", today - timedelta(days=6), today),
        ("過去30日", today - timedelta(days=29), today),
    ]
    return console.render(
        request,
        "insights.html",
        {
            **data,
            "first": first.isoformat(),
            "last": last.isoformat(),
            "errors": errors,
            "presets": [(label, a.isoformat(), b.isoformat()) for label, a, b in presets],
            "entries": console.kb.by_id,
            "csv_kinds": CSV_KINDS,
            "answer_min": console.policy.config.coverage_min,
            "reasons": REASONS,
        },
        staff=ctx.staff,
        session=ctx.session,
    )


def insights_csv(console: Console, request: Request, ctx: Context) -> Response:
    kind = request.query_params.get("kind", "")
    if kind not in CSV_KINDS:
        return console.error(
            request,
            400,
            "出力の種類が正しくありません",
            f"kind には {' / '.join(CSV_KINDS)} のいずれかを指定してください。",
            staff=ctx.staff,
            session=ctx.session,
        )
    period, first, last, _ = _period(console, request)
    rows: list[list[object]]
    try:
        if kind in ("unanswered", "low"):
            found = (
                console.insights.unanswered(period, MAX_ROWS)
                if kind == "unanswered"
                else console.insights.low_confidence(period, MAX_ROWS)
            )
            header = ["質問", "件数", "最終日時", "最高スコア", "状態"]
            rows = [
                [
                    r.text,
                    r.count,
                    jst(r.last_time),
                    "" if r.best_score is None else f"{r.best_score:.3f}",
                    r.statuses,
                ]
                for r in found
            ]
        elif kind == "picked":
            header = ["質問", "選ばれたエントリID", "選ばれた回答", "件数", "最終日時"]
            rows = [
                [
                    r.text,
                    r.entry_id,
                    console.kb.by_id[r.entry_id].question if r.entry_id in console.kb.by_id else "",
                    r.count,
                    jst(r.last_time),
                ]
                for r in console.insights.picked_after_not_found(period, MAX_ROWS)
            ]
        elif kind == "entries":
            header = ["エントリID", "質問", "回答回数", "役に立った", "役に立たなかった"]
            rows = [
                [
                    r.entry_id,
                    console.kb.by_id[r.entry_id].question if r.entry_id in console.kb.by_id else "",
                    r.count,
                    r.helpful,
                    r.not_helpful,
                ]
                for r in console.insights.top_entries(period, MAX_ROWS)
            ]
        else:
            header = ["日時", "エントリID", "質問", "コメント", "チャネル"]
            rows = [
                [jst(r.time), r.entry_id, r.question or "", r.comment or "", r.channel]
                for r in console.insights.not_helpful(period, MAX_ROWS)
            ]
    except StoreError as exc:
        log.error("console CSV export: %s", exc)
        return console.log_unavailable(request, ctx)
    buffer = io.StringIO()
    buffer.write("\ufeff")  # so that Excel reads UTF-8
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[csv_cell(cell) for cell in row] for row in rows])
    filename = f"kounen-{kind}-{first.isoformat()}_{last.isoformat()}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
