"""Staff log in with a password or a token, and log out; failed attempts slow down per account, client and device."""

from __future__ import annotations

import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.console.auth import CSRF_FIELD, Session, Staff, csrf_matches
from bot.console.core import Console, Context
from bot.console.http import read_form, safe_next, same_origin
from bot.console.shared import client_address

log = logging.getLogger(__name__)

MAX_SECRET = 1024  # characters of a password or token


async def login(console: Console, request: Request) -> Response:
    session = console.session_of(request)
    if request.method == "GET" and session is not None and console.credentials.still_valid(session):
        target = safe_next(request, request.query_params.get("next"))
        return RedirectResponse(target or console.url(request, "search"), status_code=303)
    if request.method == "GET":
        fresh = session if session is not None and session.user is None else Session.anonymous()
        response = login_page(
            console,
            request,
            fresh,
            next_url=request.query_params.get("next", ""),
            notice="ログアウトしました。" if request.query_params.get("bye") else None,
        )
        console.set_session(request, response, fresh)
        return response
    form = await read_form(request)
    if session is None or not same_origin(request) or not csrf_matches(session, form.get(CSRF_FIELD)):
        # A forged request must not replace the session there is (it would log staff out).
        current = session or Session.anonymous()
        response = login_page(
            console,
            request,
            current,
            next_url=form.get("next", ""),
            error="ページの有効期限が切れたか、正しくない送信です。もう一度ログインしてください。",
            status_code=403,
        )
        if session is None:
            console.set_session(request, response, current)
        return response
    client = client_address(request, console.settings.trusted_networks)
    mode = "token" if form.get("mode") == "token" else "password"
    username = form.get("username", "").strip()[:64]
    account = username if mode == "password" else "[token]"
    device = console.devices.device(request, account)
    wait = await run_in_threadpool(console.throttle.retry_after, account, client, device)
    if wait:
        after = f"{wait}秒" if wait < 60 else f"{(wait + 59) // 60}分"
        return login_page(
            console,
            request,
            session,
            next_url=form.get("next", ""),
            username=username,
            mode=mode,
            error=f"ログインの失敗が続いたため、しばらく受け付けません。{after}ほど待ってから、もう一度お試しください。",
            status_code=429,
            headers={"retry-after": str(wait)},
        )
    staff: Staff | None = None
    if mode == "token":
        token = form.get("token", "")
        if 0 < len(token) <= MAX_SECRET:
            staff = await run_in_threadpool(console.credentials.check_token, token)
    else:
        password = form.get("password", "")
        if username and 0 < len(password) <= MAX_SECRET:
            staff = await run_in_threadpool(console.credentials.check_password, username, password)
    if staff is None:
        await run_in_threadpool(console.throttle.failed, account, client, device)
        log.info("console: failed %s login from %s", mode, client)
        message = (
            "トークンが正しくありません。"
            if mode == "token"
            else "ユーザー名またはパスワードが正しくありません。"
        )
        return login_page(
            console,
            request,
            session,
            next_url=form.get("next", ""),
            username=username,
            mode=mode,
            error=message,
            status_code=401,
        )
    await run_in_threadpool(console.throttle.succeeded, account, client, device)
    log.info("console: %s logged in (%s) from %s", staff.name, staff.kind, client)
    fingerprint = console.credentials.fingerprint(staff)
    fresh = Session(secrets.token_urlsafe(32), staff.name, staff.kind, fingerprint)
    target = safe_next(request, form.get("next")) or console.url(request, "search")
    response = RedirectResponse(target, status_code=303)
    console.set_session(request, response, fresh)
    console.devices.remember(response, console.cookie_path(request), account)
    return response


def login_page(
    console: Console,
    request: Request,
    session: Session,
    *,
    next_url: str = "",
    username: str = "",
    mode: str = "password",
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return console.render(
        request,
        "login.html",
        {
            "next_url": safe_next(request, next_url) or "",
            "username": username,
            "mode": mode,
            "error": error,
            "notice": notice,
            "configured": console.settings.has_credentials,
            "has_users": bool(console.settings.users),
            "has_tokens": bool(console.settings.tokens),
        },
        status_code=status_code,
        session=session,
        headers=headers,
    )


def logout(console: Console, request: Request, ctx: Context) -> Response:
    log.info("console: %s logged out", ctx.staff.name)
    response = RedirectResponse(console.url(request, "login", {"bye": "1"}), status_code=303)
    console.set_session(request, response, Session.anonymous())
    return response
