"""The two calculators' pages: the form, its errors next to the fields, and the result."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bot.console import calculators, views
from bot.console.core import Console, Context
from rules import TOKYO


def productivity(console: Console, request: Request, ctx: Context) -> Response:
    given = ctx.form if request.method == "POST" else dict(request.query_params)  # a case pre-fills
    values = calculators.form_values(given, calculators.PRODUCTIVITY_FIELDS)
    state, result = (
        calculators.productivity(values)
        if request.method == "POST"
        else (calculators.FormState(values), None)
    )
    view = views.productivity_view(console.kb, result) if result else None
    return console.render(
        request,
        "productivity.html",
        {"state": state, "view": view, "submitted": request.method == "POST"},
        status_code=200 if state.ok else 422,
        staff=ctx.staff,
        session=ctx.session,
    )


def withdrawal(console: Console, request: Request, ctx: Context) -> Response:
    given = ctx.form if request.method == "POST" else dict(request.query_params)  # a case pre-fills
    values = calculators.form_values(given, calculators.WITHDRAWAL_FIELDS)
    now = console.now_tokyo()
    state, result = (
        calculators.withdrawal(values, now.astimezone(TOKYO).date())
        if request.method == "POST"
        else (calculators.FormState(values), None)
    )
    view = views.withdrawal_view(console.kb, result, now) if result else None
    return console.render(
        request,
        "withdrawal.html",
        {
            "state": state,
            "view": view,
            "submitted": request.method == "POST",
            "program_choices": [(p, console.kb.programs[p].short) for p in ("it2020", "it2023-multi")],
            "event_choices": calculators.EVENT_CHOICES,
        },
        status_code=200 if state.ok else 422,
        staff=ctx.staff,
        session=ctx.session,
    )
