"""Search (a full page, or the results alone for search-as-you-type), the list of answers, one answer."""

from __future__ import annotations

import logging
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from bot.console import views
from bot.console.core import Console, Context
from bot.console.insights import Period
from bot.store import StoreError

log = logging.getLogger(__name__)

MAX_QUERY = 200  # characters of a search
FRAGMENT_HEADER = "x-kounen-fragment"
POPULAR_DAYS = 30  # the empty search page lists what was asked most in this many days
POPULAR_COUNT = 8


def _popular(console: Console) -> tuple[views.PopularEntry, ...]:
    """The entries answered most often lately; none (and a log line) when the log cannot be read."""
    now = console.now_tokyo()
    try:
        rows = console.insights.top_entries(Period(now - timedelta(days=POPULAR_DAYS), now), POPULAR_COUNT)
    except StoreError as exc:
        log.warning("console search: %s", exc)
        return ()
    return views.popular(console.kb, [(r.entry_id, r.count) for r in rows])


def search(console: Console, request: Request, ctx: Context) -> Response:
    query = request.query_params.get("q", "").strip()[:MAX_QUERY]
    program = request.query_params.get("program") or None
    if program not in console.kb.programs or program == "common":
        program = None
    result = None
    popular: tuple[views.PopularEntry, ...] = ()
    if query:
        outcome = console.policy.decide(query, program)
        result = views.search_view(console.kb, outcome, console.now_tokyo(), console.policy.config)
    else:
        popular = _popular(console)
    context = {
        "query": query,
        "program": program or "",
        "result": result,
        "popular": popular,
        "popular_days": POPULAR_DAYS,
    }
    name = "_results.html" if request.headers.get(FRAGMENT_HEADER) == "1" else "search.html"
    return console.render(request, name, context, staff=ctx.staff, session=ctx.session)


def entries(console: Console, request: Request, ctx: Context) -> Response:
    return console.render(
        request,
        "entries.html",
        {"groups": console.browse, "total": len(console.kb.entries)},
        staff=ctx.staff,
        session=ctx.session,
    )


def entry(console: Console, request: Request, ctx: Context) -> Response:
    entry = console.kb.by_id.get(str(request.path_params["entry_id"]))
    if entry is None:
        return console.error(
            request,
            404,
            "見つかりません",
            "この回答はありません（IDが変わったか、削除されました）。検索か一覧からお探しください。",
            staff=ctx.staff,
            session=ctx.session,
        )
    view = views.entry_view(console.kb, entry, console.now_tokyo())
    return console.render(
        request,
        "entry.html",
        {"item": view, "flow": views.FLOW_ROUTES.get(entry.dialog) if entry.dialog else None},
        staff=ctx.staff,
        session=ctx.session,
    )
