"""The call-center console: a Starlette application mounted under `/console` by `kounen serve`.

    from bot.console import ConsoleSettings, create_console_app
    console = create_console_app(kb=kb, policy=policy, store=store, settings=load_console_settings())
    Mount("/console", app=console)

Pages (relative to the mount point): `/` search (results as you type; a plain GET form
without JavaScript), `/entries` and `/entries/{id}` browse and permalinks,
`/calc/productivity` and `/calc/withdrawal` the calculators, `/cases` and `/cases/{number}`
the cases handed to staff (case_pages), `/insights` and
`/insights.csv` what applicants asked, `/login`, `/logout`, `/static/…`.

Everything but the login page and the static files needs a staff session (bot.console.auth);
every POST needs the session's CSRF token and, when the browser sends one, an Origin of
this host.  The console knows nothing of the Telegram webhook: it reads no webhook header
or setting and imports nothing from it.  Listening on 127.0.0.1 is the server's job.

This module only wires the parts: bot.console.http (headers, forms, origins), core (templates,
sessions, the guard, error pages), and the pages in login, search_pages, calc_pages and
insights_pages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import partial

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.console import calc_pages, case_pages, insights_pages, login, search_pages
from bot.console.core import STATIC, Console
from bot.console.http import SecurityHeaders
from bot.console.settings import ConsoleSettings
from bot.store import Store
from faq import KnowledgeBase, Policy
from rules import TOKYO


def create_console_app(
    *,
    kb: KnowledgeBase,
    policy: Policy,
    store: Store,
    settings: ConsoleSettings,
    now: Callable[[], datetime] | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The console as an ASGI app, to mount under `/console` (any prefix works).

    `now` gives the current time for the contact lines' hours (default: the clock in
    Asia/Tokyo); `clock` is the wall clock of the login throttle (shared by every worker).  Both are there
    for tests.
    """
    console = Console(kb, policy, store, settings, now or (lambda: datetime.now(TOKYO)), clock)

    def guard(page: Callable[..., object]) -> Callable[..., object]:
        return console.protected(partial(page, console))  # type: ignore[arg-type]

    routes = [
        Route("/", guard(search_pages.search), methods=["GET"], name="search"),
        Route("/entries", guard(search_pages.entries), methods=["GET"], name="entries"),
        Route("/entries/{entry_id}", guard(search_pages.entry), methods=["GET"], name="entry"),
        Route(
            "/calc/productivity", guard(calc_pages.productivity), methods=["GET", "POST"], name="productivity"
        ),
        Route("/calc/withdrawal", guard(calc_pages.withdrawal), methods=["GET", "POST"], name="withdrawal"),
        Route("/cases", guard(case_pages.queue), methods=["GET"], name="cases"),
        Route("/cases.json", guard(case_pages.queue_json), methods=["GET"], name="cases_json"),
        Route("/cases/{number}", guard(case_pages.case_page), methods=["GET"], name="case"),
        Route("/cases/{number}/take", guard(case_pages.take), methods=["POST"], name="case_take"),
        Route("/cases/{number}/reply", guard(case_pages.reply), methods=["POST"], name="case_reply"),
        Route("/cases/{number}/close", guard(case_pages.close), methods=["POST"], name="case_close"),
        Route("/insights", guard(insights_pages.insights_page), methods=["GET"], name="insights"),
        Route("/insights.csv", guard(insights_pages.insights_csv), methods=["GET"], name="insights_csv"),
        Route("/login", partial(login.login, console), methods=["GET", "POST"], name="login"),
        Route("/logout", guard(login.logout), methods=["POST"], name="logout"),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: console.http_error, Exception: console.server_error},
    )
    app.state.console = console
    return app
