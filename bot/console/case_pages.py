"""Cases handed to staff: the queue (open / mine / closed, search by number), a case page
(summary, masked transcript, the bot's answers linked to their entries, the calculators
pre-filled with the user's figures, what the user gave for the case) and the staff actions
(take, reply, close), each recorded with who and when (bot.cases).

The queue polls `cases.json` (no new service): new cases appear without reloading.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from bot import handoff
from bot.cases import MAX_REPLY_TEXT, Case, CaseError, Cases, reply_problem
from bot.console.core import Console, Context, jst
from bot.store import StoreError, utcnow

log = logging.getLogger(__name__)

VIEWS = {"open": "対応待ち・対応中", "mine": "自分の担当", "closed": "終了"}
STATUS = {"open": "受付中", "closed": "終了", "expired": "期限切れ", "cancelled": "取り消し"}
ACTION_NAMES = {
    "opened": "受付",
    "viewed": "閲覧",
    "assigned": "担当",
    "staff": "返信",
    "closed": "終了",
    "expired": "期限切れ",
    "cancelled": "ご本人が取り消し",
}
# The calculation of a case as staff read it: (key in the result or its inputs, label).
CALC_LABELS = {
    "productivity": (
        ("labor_productivity", "労働生産性（千円/時間）"),
        ("growth_rate", "伸び率"),
        ("threshold", "基準の伸び率"),
        ("meets_threshold", "基準を満たす"),
        ("growth_unavailable_reason", "伸び率について"),
        ("value_added", "付加価値額（円）"),
    ),
    "withdrawal": (("summary", "判定"),),
}
INPUT_LABELS = {
    "operating_profit": "営業利益（円）",
    "labor_cost": "人件費（円）",
    "depreciation": "減価償却費（円）",
    "employees": "従業員数",
    "annual_hours": "年間平均労働時間",
    "baseline": "申請時の実績値",
    "year": "報告年度",
    "group_includes_2022": "2022年度を含むグループ",
    "program": "制度",
    "event": "事由",
    "delivered": "納品日",
    "cancelled": "解約・廃棄などの日",
    "completed": "事業完了日",
}


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "はい" if value else "いいえ"
    if isinstance(value, list):
        return "、".join(map(str, value))
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def calculation_rows(calculation: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The figures and verdict, then the inputs, labelled in Japanese (no internal names)."""
    kind = handoff.calculation_kind(calculation)
    if kind is None or calculation is None:
        return []
    percent = ("growth_rate", "threshold")
    rows = [
        (label, f"{float(calculation[key]) * 100:.2f}%" if key in percent else _shown(calculation[key]))
        for key, label in CALC_LABELS[kind]
        if calculation.get(key) is not None
    ]
    inputs = calculation.get("inputs")
    if isinstance(inputs, dict):
        rows += [
            (f"入力：{INPUT_LABELS[key]}", _shown(value))
            for key, value in inputs.items()
            if value is not None and key in INPUT_LABELS
        ]
    return rows


DELIVERY = {
    "pending": "送信待ち",
    "sent": "送信済み",
    "shown": "表示済み",
    "undeliverable": "届きませんでした",
}


def cases_of(console: Console) -> Cases:
    found = getattr(console, "_cases", None)
    if not isinstance(found, Cases):
        found = Cases(console.store)
        console._cases = found  # type: ignore[attr-defined]
    return found


def age(opened: datetime, now: datetime | None = None) -> str:
    minutes = int(((now or utcnow()) - opened).total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)}分"
    if minutes < 60 * 48:
        return f"{minutes // 60}時間"
    return f"{minutes // (60 * 24)}日"


def _row(console: Console, request: Request, case: Case) -> dict[str, Any]:
    program = console.kb.programs.get(case.program or "")
    return {
        "number": case.number,
        "url": console.url(request, "case", number=case.number),
        "age": age(case.opened_at),
        "opened": jst(case.opened_at),
        "program": program.short if program else "制度未指定",
        "program_id": case.program or "",
        "reason": handoff.REASONS.get(case.reason, case.reason),
        "assignee": case.assignee or "",
        "status": STATUS.get(case.status, case.status),
        "id": case.id,
    }


def _queue(console: Console, request: Request, ctx: Context) -> tuple[str, str, list[dict[str, Any]]]:
    view = request.query_params.get("view", "open")
    view = view if view in VIEWS else "open"
    number = request.query_params.get("q", "").strip()[:32]
    found = cases_of(console).list(view, ctx.staff.name, number or None)
    return view, number, [_row(console, request, c) for c in found]


def queue(console: Console, request: Request, ctx: Context) -> Response:
    cases = cases_of(console)
    cases.housekeeping()
    try:
        view, number, rows = _queue(console, request, ctx)
    except StoreError as exc:
        log.error("console cases: %s", exc)
        return console.log_unavailable(request, ctx)
    return console.render(
        request,
        "cases.html",
        {
            "view": view,
            "views": VIEWS,
            "number": number,
            "rows": rows,
            "feed": console.url(request, "cases_json", {"view": view, "q": number}),
        },
        staff=ctx.staff,
        session=ctx.session,
    )


def queue_json(console: Console, request: Request, ctx: Context) -> Response:
    try:
        _view, _number, rows = _queue(console, request, ctx)
    except StoreError:
        return JSONResponse({"error": "database unavailable"}, status_code=503)
    return JSONResponse({"rows": rows}, headers={"cache-control": "no-store"})


def _calculator_link(console: Console, request: Request, calculation: dict[str, Any] | None) -> str | None:
    kind = handoff.calculation_kind(calculation)
    inputs = (calculation or {}).get("inputs")
    if kind is None or not isinstance(inputs, dict):
        return None
    values: dict[str, str] = {}
    for name, value in inputs.items():
        if value is None:
            continue
        if isinstance(value, list):
            values[name] = "\n".join(str(v) for v in value)
        elif isinstance(value, bool):
            values[name] = "on" if value else ""
        else:
            values[name] = str(value)
    path = console.url(request, "productivity" if kind == "productivity" else "withdrawal")
    kept = {k: v for k, v in values.items() if v}
    return f"{path}?{urlencode(kept)}" if kept else path


def case_page(
    console: Console,
    request: Request,
    ctx: Context,
    *,
    errors: dict[str, str] | None = None,
    reply: str = "",
    note: str = "",
    status_code: int = 200,
    notice: str | None = None,
) -> Response:
    number = request.path_params["number"]
    try:
        case = cases_of(console).get(number, viewer=ctx.staff.name if request.method == "GET" else None)
    except StoreError as exc:
        log.error("console case: %s", exc)
        return console.log_unavailable(request, ctx)
    if case is None:
        raise HTTPException(404, "この受付番号のお問い合わせはありません。")
    summary = case.summary
    turns = []
    for turn in summary.get("turns", []):
        entry_id = turn.get("entry_id")
        turns.append(
            {
                **turn,
                "url": console.url(request, "entry", entry_id=entry_id)
                if entry_id in console.kb.by_id
                else None,
            }
        )
    transcript = [e for e in case.events if e.kind in ("user", "bot", "staff", "notice")]
    actions = [e for e in case.events if e.kind in ACTION_NAMES]
    program = console.kb.programs.get(case.program or "")
    calculation = summary.get("calculation")
    return console.render(
        request,
        "case.html",
        {
            "case": case,
            "row": _row(console, request, case),
            "program_name": program.name if program else "制度未指定",
            "turns": turns,
            "calculation": calculation,
            "calc_kind": handoff.calculation_kind(calculation),
            "calc_rows": calculation_rows(calculation),
            "calc_link": _calculator_link(console, request, calculation),
            "transcript": transcript,
            "actions": actions,
            "action_names": ACTION_NAMES,
            "delivery": DELIVERY,
            "entries": console.kb.by_id,
            "errors": errors or {},
            "reply": reply,
            "note": note,
            "notice": notice or request.query_params.get("done", ""),
            "max_reply": MAX_REPLY_TEXT - len(handoff.STAFF_PREFIX),
            "prefix": handoff.STAFF_PREFIX.strip(),
        },
        status_code=status_code,
        staff=ctx.staff,
        session=ctx.session,
    )


DONE = {
    "taken": "担当になりました。",
    "replied": "返信を送りました。",
    "closed": "お問い合わせを終了しました。",
}


def _done(console: Console, request: Request, number: str, what: str) -> Response:
    return RedirectResponse(
        console.url(request, "case", {"done": DONE[what]}, number=number), status_code=303
    )


def take(console: Console, request: Request, ctx: Context) -> Response:
    number = request.path_params["number"]
    try:
        cases_of(console).assign(number, ctx.staff.name)
    except CaseError as exc:
        return case_page(console, request, ctx, errors={"form": str(exc)}, status_code=409)
    return _done(console, request, number, "taken")


def reply(console: Console, request: Request, ctx: Context) -> Response:
    number = request.path_params["number"]
    text = ctx.form.get("reply", "")
    problem = reply_problem(text)
    if problem:
        return case_page(console, request, ctx, errors={"reply": problem}, reply=text, status_code=422)
    try:
        cases_of(console).reply(number, ctx.staff.name, text)
    except CaseError as exc:
        return case_page(console, request, ctx, errors={"reply": str(exc)}, reply=text, status_code=409)
    return _done(console, request, number, "replied")


def close(console: Console, request: Request, ctx: Context) -> Response:
    number = request.path_params["number"]
    note = ctx.form.get("note", "")
    try:
        cases_of(console).close(number, ctx.staff.name, note)
    except CaseError as exc:
        return case_page(console, request, ctx, errors={"note": str(exc)}, note=note, status_code=422)
    return _done(console, request, number, "closed")
