"""The call-center console: a Starlette application mounted under `/console` by `kounen serve`.

    from bot.console import ConsoleSettings, create_console_app
    console = create_console_app(kb=kb, policy=policy, store=store, settings=load_console_settings())
    Mount("/console", app=console)

Pages (relative to the mount point): `/` search (results as you type; a plain GET form
without JavaScript), `/entries` and `/entries/{id}` browse and permalinks,
`/calc/productivity` and `/calc/withdrawal` the calculators, `/insights` and
`/insights.csv` what applicants asked, `/login`, `/logout`, `/static/…`.

Everything but the login page and the static files needs a staff session (bot.console.auth);
every POST needs the session's CSRF token and, when the browser sends one, an Origin of
this host.  The console knows nothing of the Telegram webhook: it reads no webhook header
or setting and imports nothing from it.  Listening on 127.0.0.1 is the server's job.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.console import calculators, views
from bot.console.auth import (
    COOKIE_NAME,
    CSRF_FIELD,
    Credentials,
    Session,
    SessionCodec,
    Staff,
    csrf_matches,
)
from bot.console.insights import MAX_ROWS, Insights, Period
from bot.console.settings import ConsoleSettings
from bot.console.shared import DeviceCookies, SharedLoginThrottle, client_address, session_key
from bot.store import Store, StoreError
from faq import KnowledgeBase, Policy
from rules import TOKYO

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
MAX_QUERY = 200  # characters of a search
MAX_BODY = 64 * 1024  # bytes of a submitted form
MAX_SECRET = 1024  # characters of a password or token
DEFAULT_DAYS = 7
FRAGMENT_HEADER = "x-kounen-fragment"
CSV_KINDS = {
    "unanswered": "該当なしの質問",
    "low": "確信度の低い質問",
    "entries": "よく使われた回答",
    "feedback": "「役に立たなかった」の評価",
}

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class _SecurityHeaders:
    """Adds the security headers to every response; pages are never cached (they show the log)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = str(scope.get("root_path", ""))
        path = str(scope.get("path", ""))
        static = path.removeprefix(root).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                headers["cache-control"] = "public, max-age=3600" if static else "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(frozen=True)
class _Context:
    staff: Staff
    session: Session
    form: dict[str, str]


Handler = Callable[[Request, _Context], Response]


class _Forbidden(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


async def _read_form(request: Request) -> dict[str, str]:
    """An urlencoded form of at most MAX_BODY bytes; the first value of each name."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise HTTPException(415, "フォームの形式が正しくありません。")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise HTTPException(413, "送信された内容が大きすぎます。")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, "送信された内容が大きすぎます。")
    try:
        text = bytes(body).decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "フォームの内容を読み取れません。") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def _same_origin(request: Request) -> bool:
    """False for a request a browser says comes from another site."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def _safe_next(request: Request, target: str | None) -> str | None:
    """`target` when it is a path inside the console, else None (no open redirects)."""
    if not target or len(target) > 2000 or "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    parts = urlsplit(target)
    root = request.scope.get("root_path", "")
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    if not (parts.path == root or parts.path.startswith(root.rstrip("/") + "/")):
        return None
    return target


def _csv_cell(value: object) -> str:
    """Text for a spreadsheet: formulas (=, +, -, @) are neutralised with a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _parse_day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


class _Console:
    def __init__(
        self,
        kb: KnowledgeBase,
        policy: Policy,
        store: Store,
        settings: ConsoleSettings,
        now: Callable[[], datetime],
        clock: Callable[[], float],
    ) -> None:
        self.kb = kb
        self.policy = policy
        self.store = store
        self.settings = settings
        self.now = now
        self.credentials = Credentials(settings)
        # Shared by every worker through the store (bot.console.shared).
        key = session_key(store) if settings.secret_key is None else settings.secret_key.get_secret_value()
        self.codec = SessionCodec(key, settings.session_seconds)
        self.devices = DeviceCookies(key, settings.cookie_secure)
        self.throttle = SharedLoginThrottle(
            store,
            free=settings.login_attempts,
            max_delay=settings.login_max_delay_seconds,
            forget_after=settings.login_window_seconds,
            clock=clock,
        )
        self.insights = Insights(store, settings.low_score)
        self.browse = views.browse(kb)
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["jst"] = self._jst
        env.filters["score"] = lambda value: "—" if value is None else f"{value:.2f}"
        self.templates = Jinja2Templates(env=env)
        self.static_versions = {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:10] for p in STATIC.iterdir() if p.is_file()
        }

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def _jst(value: datetime) -> str:
        return value.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M")

    def _now(self) -> datetime:
        value = self.now()
        return value if value.tzinfo is not None else value.replace(tzinfo=TOKYO)

    def session_of(self, request: Request) -> Session | None:
        return self.codec.loads(request.cookies.get(COOKIE_NAME))

    def cookie_path(self, request: Request) -> str:
        return str(request.scope.get("root_path", "")) or "/"

    def set_session(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self.codec.dumps(session),
            max_age=self.settings.session_seconds,
            path=self.cookie_path(request),
            secure=self.settings.cookie_secure,
            httponly=True,
            samesite="lax",
        )

    def url(self, request: Request, name: str, query: dict[str, Any] | None = None, **params: Any) -> str:
        path = request.url_for(name, **params).path
        kept = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        return f"{path}?{urlencode(kept)}" if kept else path

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any],
        *,
        status_code: int = 200,
        staff: Staff | None = None,
        session: Session | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        def url(name: str, query: dict[str, Any] | None = None, **params: Any) -> str:
            return self.url(request, name, query, **params)

        def static(filename: str) -> str:
            version = self.static_versions.get(filename, "")
            return self.url(request, "static", {"v": version}, path=filename)

        def absolute_url(name: str, **params: Any) -> str:
            return str(request.url_for(name, **params))

        base = {
            "url": url,
            "absolute_url": absolute_url,
            "static": static,
            "staff": staff,
            "csrf_token": session.csrf if session else "",
            "csrf_field": CSRF_FIELD,
            "page": name.removesuffix(".html"),
            "programs": {pid: p for pid, p in self.kb.programs.items() if pid != "common"},
        }
        return self.templates.TemplateResponse(
            request, name, {**base, **context}, status_code=status_code, headers=headers
        )

    def _log_unavailable(self, request: Request, ctx: _Context) -> Response:
        """The query log could not be read: a page that says so, not a server error."""
        return self.error(
            request,
            503,
            "データベースを読めません",
            "質問ログを読み込めませんでした。しばらくしてから再度お試しください。",
            staff=ctx.staff,
            session=ctx.session,
        )

    def error(
        self,
        request: Request,
        status: int,
        title: str,
        message: str,
        *,
        staff: Staff | None = None,
        session: Session | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return self.render(
            request,
            "error.html",
            {"title": title, "message": message, "status": status},
            status_code=status,
            staff=staff,
            session=session,
            headers=headers,
        )

    # -- the guard -------------------------------------------------------------

    def protected(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A staff session for every method; for POST also the CSRF token and a same-origin request."""

        async def endpoint(request: Request) -> Response:
            session = self.session_of(request)
            staff = self.credentials.still_valid(session) if session else None
            if request.method not in ("GET", "HEAD", "POST"):
                raise HTTPException(405)
            form: dict[str, str] = {}
            if request.method == "POST":
                if staff is None or session is None:
                    return self.error(
                        request,
                        403,
                        "ログインが必要です",
                        "ログインの有効期限が切れたか、ログインしていません。ログインしてから、もう一度送信してください。",
                    )
                form = await _read_form(request)
                if not _same_origin(request) or not csrf_matches(session, form.get(CSRF_FIELD)):
                    return self.csrf_rejected(request, staff, session)
            elif staff is None or session is None:
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(self.url(request, "login", {"next": here}), status_code=303)
            return await run_in_threadpool(handler, request, _Context(staff, session, form))

        return endpoint

    def csrf_rejected(self, request: Request, staff: Staff | None, session: Session | None) -> Response:
        return self.error(
            request,
            403,
            "送信を受け付けられません",
            "フォームの確認用トークンが一致しません（ページを開いてから時間がたったか、別のサイトからの送信です）。"
            "ページを開き直して、もう一度送信してください。",
            staff=staff,
            session=session,
        )

    # -- login and logout ------------------------------------------------------

    async def login(self, request: Request) -> Response:
        session = self.session_of(request)
        if request.method == "GET" and session is not None and self.credentials.still_valid(session):
            target = _safe_next(request, request.query_params.get("next"))
            return RedirectResponse(target or self.url(request, "search"), status_code=303)
        if request.method == "GET":
            fresh = session if session is not None and session.user is None else Session.anonymous()
            response = self.login_page(
                request,
                fresh,
                next_url=request.query_params.get("next", ""),
                notice="ログアウトしました。" if request.query_params.get("bye") else None,
            )
            self.set_session(request, response, fresh)
            return response
        form = await _read_form(request)
        if session is None or not _same_origin(request) or not csrf_matches(session, form.get(CSRF_FIELD)):
            # A forged request must not replace the session there is (it would log staff out).
            current = session or Session.anonymous()
            response = self.login_page(
                request,
                current,
                next_url=form.get("next", ""),
                error="ページの有効期限が切れたか、正しくない送信です。もう一度ログインしてください。",
                status_code=403,
            )
            if session is None:
                self.set_session(request, response, current)
            return response
        client = client_address(request, self.settings.trusted_networks)
        mode = "token" if form.get("mode") == "token" else "password"
        username = form.get("username", "").strip()[:64]
        account = username if mode == "password" else "[token]"
        device = self.devices.device(request, account)
        wait = await run_in_threadpool(self.throttle.retry_after, account, client, device)
        if wait:
            after = f"{wait}秒" if wait < 60 else f"{(wait + 59) // 60}分"
            return self.login_page(
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
                staff = await run_in_threadpool(self.credentials.check_token, token)
        else:
            password = form.get("password", "")
            if username and 0 < len(password) <= MAX_SECRET:
                staff = await run_in_threadpool(self.credentials.check_password, username, password)
        if staff is None:
            await run_in_threadpool(self.throttle.failed, account, client, device)
            log.info("console: failed %s login from %s", mode, client)
            message = (
                "トークンが正しくありません。"
                if mode == "token"
                else "ユーザー名またはパスワードが正しくありません。"
            )
            return self.login_page(
                request,
                session,
                next_url=form.get("next", ""),
                username=username,
                mode=mode,
                error=message,
                status_code=401,
            )
        await run_in_threadpool(self.throttle.succeeded, account, client, device)
        log.info("console: %s logged in (%s) from %s", staff.name, staff.kind, client)
        fingerprint = self.credentials.fingerprint(staff)
        fresh = Session(secrets.token_urlsafe(32), staff.name, staff.kind, fingerprint)
        target = _safe_next(request, form.get("next")) or self.url(request, "search")
        response = RedirectResponse(target, status_code=303)
        self.set_session(request, response, fresh)
        self.devices.remember(response, self.cookie_path(request), account)
        return response

    def login_page(
        self,
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
        return self.render(
            request,
            "login.html",
            {
                "next_url": _safe_next(request, next_url) or "",
                "username": username,
                "mode": mode,
                "error": error,
                "notice": notice,
                "configured": self.settings.has_credentials,
                "has_users": bool(self.settings.users),
                "has_tokens": bool(self.settings.tokens),
            },
            status_code=status_code,
            session=session,
            headers=headers,
        )

    def logout(self, request: Request, ctx: _Context) -> Response:
        log.info("console: %s logged out", ctx.staff.name)
        response = RedirectResponse(self.url(request, "login", {"bye": "1"}), status_code=303)
        self.set_session(request, response, Session.anonymous())
        return response

    # -- search, browse ----------------------------------------------------------

    def search(self, request: Request, ctx: _Context) -> Response:
        query = request.query_params.get("q", "").strip()[:MAX_QUERY]
        program = request.query_params.get("program") or None
        if program not in self.kb.programs or program == "common":
            program = None
        result = None
        if query:
            outcome = self.policy.decide(query, program)
            result = views.search_view(self.kb, outcome, self._now())
        context = {"query": query, "program": program or "", "result": result}
        name = "_results.html" if request.headers.get(FRAGMENT_HEADER) == "1" else "search.html"
        return self.render(request, name, context, staff=ctx.staff, session=ctx.session)

    def entries(self, request: Request, ctx: _Context) -> Response:
        return self.render(
            request,
            "entries.html",
            {"groups": self.browse, "total": len(self.kb.entries)},
            staff=ctx.staff,
            session=ctx.session,
        )

    def entry(self, request: Request, ctx: _Context) -> Response:
        entry = self.kb.by_id.get(str(request.path_params["entry_id"]))
        if entry is None:
            return self.error(
                request,
                404,
                "見つかりません",
                "この回答はありません（IDが変わったか、削除されました）。検索か一覧からお探しください。",
                staff=ctx.staff,
                session=ctx.session,
            )
        view = views.entry_view(self.kb, entry, self._now())
        return self.render(
            request,
            "entry.html",
            {"item": view, "flow": views.FLOW_ROUTES.get(entry.dialog) if entry.dialog else None},
            staff=ctx.staff,
            session=ctx.session,
        )

    # -- calculators -------------------------------------------------------------

    def productivity(self, request: Request, ctx: _Context) -> Response:
        values = calculators.form_values(ctx.form, calculators.PRODUCTIVITY_FIELDS)
        state, result = (
            calculators.productivity(values)
            if request.method == "POST"
            else (calculators.FormState(values), None)
        )
        view = views.productivity_view(self.kb, result) if result else None
        return self.render(
            request,
            "productivity.html",
            {"state": state, "view": view, "submitted": request.method == "POST"},
            status_code=200 if state.ok else 422,
            staff=ctx.staff,
            session=ctx.session,
        )

    def withdrawal(self, request: Request, ctx: _Context) -> Response:
        values = calculators.form_values(ctx.form, calculators.WITHDRAWAL_FIELDS)
        now = self._now()
        state, result = (
            calculators.withdrawal(values, now.astimezone(TOKYO).date())
            if request.method == "POST"
            else (calculators.FormState(values), None)
        )
        view = views.withdrawal_view(self.kb, result, now) if result else None
        return self.render(
            request,
            "withdrawal.html",
            {
                "state": state,
                "view": view,
                "submitted": request.method == "POST",
                "program_choices": [(p, self.kb.programs[p].short) for p in ("it2020", "it2023-multi")],
                "event_choices": calculators.EVENT_CHOICES,
            },
            status_code=200 if state.ok else 422,
            staff=ctx.staff,
            session=ctx.session,
        )

    # -- insights ------------------------------------------------------------------

    def _period(self, request: Request) -> tuple[Period, date, date, dict[str, str]]:
        today = self._now().astimezone(TOKYO).date()
        errors: dict[str, str] = {}
        raw_from, raw_to = request.query_params.get("from"), request.query_params.get("to")
        first = _parse_day(raw_from)
        last = _parse_day(raw_to)
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

    def insights_page(self, request: Request, ctx: _Context) -> Response:
        period, first, last, errors = self._period(request)
        today = self._now().astimezone(TOKYO).date()
        try:
            data = {
                "totals": self.insights.totals(period),
                "unanswered": self.insights.unanswered(period),
                "low": self.insights.low_confidence(period),
                "top": self.insights.top_entries(period),
                "feedback": self.insights.not_helpful(period),
            }
        except StoreError as exc:
            log.error("console insights: %s", exc)
            return self._log_unavailable(request, ctx)
        presets = [
            ("今日", today, today),
            ("過去7日", today - timedelta(days=6), today),
            ("過去30日", today - timedelta(days=29), today),
        ]
        return self.render(
            request,
            "insights.html",
            {
                **data,
                "first": first.isoformat(),
                "last": last.isoformat(),
                "errors": errors,
                "presets": [(label, a.isoformat(), b.isoformat()) for label, a, b in presets],
                "entries": self.kb.by_id,
                "csv_kinds": CSV_KINDS,
                "low_score": self.settings.low_score,
            },
            staff=ctx.staff,
            session=ctx.session,
        )

    def insights_csv(self, request: Request, ctx: _Context) -> Response:
        kind = request.query_params.get("kind", "")
        if kind not in CSV_KINDS:
            return self.error(
                request,
                400,
                "出力の種類が正しくありません",
                f"kind には {' / '.join(CSV_KINDS)} のいずれかを指定してください。",
                staff=ctx.staff,
                session=ctx.session,
            )
        period, first, last, _ = self._period(request)
        rows: list[list[object]]
        try:
            if kind in ("unanswered", "low"):
                found = (
                    self.insights.unanswered(period, MAX_ROWS)
                    if kind == "unanswered"
                    else self.insights.low_confidence(period, MAX_ROWS)
                )
                header = ["質問", "件数", "最終日時", "最高スコア", "状態"]
                rows = [
                    [
                        r.text,
                        r.count,
                        self._jst(r.last_time),
                        "" if r.best_score is None else f"{r.best_score:.3f}",
                        r.statuses,
                    ]
                    for r in found
                ]
            elif kind == "entries":
                header = ["エントリID", "質問", "回答回数", "役に立った", "役に立たなかった"]
                rows = [
                    [
                        r.entry_id,
                        self.kb.by_id[r.entry_id].question if r.entry_id in self.kb.by_id else "",
                        r.count,
                        r.helpful,
                        r.not_helpful,
                    ]
                    for r in self.insights.top_entries(period, MAX_ROWS)
                ]
            else:
                header = ["日時", "エントリID", "質問", "コメント", "チャネル"]
                rows = [
                    [self._jst(r.time), r.entry_id, r.question or "", r.comment or "", r.channel]
                    for r in self.insights.not_helpful(period, MAX_ROWS)
                ]
        except StoreError as exc:
            log.error("console CSV export: %s", exc)
            return self._log_unavailable(request, ctx)
        buffer = io.StringIO()
        buffer.write("\ufeff")  # so that Excel reads UTF-8
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows([[_csv_cell(cell) for cell in row] for row in rows])
        filename = f"kounen-{kind}-{first.isoformat()}_{last.isoformat()}.csv"
        return Response(
            buffer.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    # -- errors ----------------------------------------------------------------------

    async def http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        titles = {404: "ページが見つかりません", 405: "この操作はできません"}
        detail = exc.detail if isinstance(exc, HTTPException) else ""
        message = detail if detail and detail != _default_phrase(status) else "URLをご確認ください。"
        session = self.session_of(request)
        staff = self.credentials.still_valid(session) if session else None
        return self.error(
            request,
            status,
            titles.get(status, "リクエストを処理できません"),
            message,
            staff=staff,
            session=session,
        )

    async def server_error(self, request: Request, exc: Exception) -> Response:
        log.exception("console: error on %s", request.url.path, exc_info=exc)
        return self.error(
            request,
            500,
            "内部エラー",
            "処理中にエラーが発生しました。しばらくしてから再度お試しください。",
        )


def _default_phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


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
    console = _Console(kb, policy, store, settings, now or (lambda: datetime.now(TOKYO)), clock)
    guard = console.protected
    routes = [
        Route("/", guard(console.search), methods=["GET"], name="search"),
        Route("/entries", guard(console.entries), methods=["GET"], name="entries"),
        Route("/entries/{entry_id}", guard(console.entry), methods=["GET"], name="entry"),
        Route(
            "/calc/productivity", guard(console.productivity), methods=["GET", "POST"], name="productivity"
        ),
        Route("/calc/withdrawal", guard(console.withdrawal), methods=["GET", "POST"], name="withdrawal"),
        Route("/insights", guard(console.insights_page), methods=["GET"], name="insights"),
        Route("/insights.csv", guard(console.insights_csv), methods=["GET"], name="insights_csv"),
        Route("/login", console.login, methods=["GET", "POST"], name="login"),
        Route("/logout", guard(console.logout), methods=["POST"], name="logout"),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_SecurityHeaders)],
        exception_handlers={HTTPException: console.http_error, Exception: console.server_error},
    )
    app.state.console = console
    return app
