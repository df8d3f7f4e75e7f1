"""The console's core: templates, sessions, the staff guard and error pages.

The pages themselves live in their own modules (login, search_pages, calc_pages,
insights_pages); each is a function of this `Console`, the request and its `Context`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from bot.console import views
from bot.console.auth import (
    COOKIE_NAME,
    CSRF_FIELD,
    Credentials,
    Session,
    SessionCodec,
    Staff,
    csrf_matches,
)
from bot.console.http import read_form, same_origin
from bot.console.insights import Insights
from bot.console.settings import ConsoleSettings
from bot.console.shared import DeviceCookies, SharedLoginThrottle, session_key
from bot.store import Store
from faq import KnowledgeBase, Policy
from rules import TOKYO

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


@dataclass(frozen=True)
class Context:
    """Who is asking, their session, and the submitted form (POST only)."""

    staff: Staff
    session: Session
    form: dict[str, str]


Handler = Callable[[Request, Context], Response]


def jst(value: datetime) -> str:
    """A time as staff read it: Tokyo, to the minute."""
    return value.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M")


class Console:
    """What every page needs: the knowledge base and policy, the store, sessions and templates."""

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
        self.insights = Insights(store, policy.config.coverage_min)
        self.browse = views.browse(kb)
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["jst"] = jst
        env.filters["score"] = lambda value: "—" if value is None else f"{value:.2f}"
        self.templates = Jinja2Templates(env=env)
        self.static_versions = {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:10] for p in STATIC.iterdir() if p.is_file()
        }

    # -- helpers ---------------------------------------------------------------

    def now_tokyo(self) -> datetime:
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
            "lines": views.contact_panel(self.kb, self.now_tokyo()) if staff else (),
        }
        return self.templates.TemplateResponse(
            request, name, {**base, **context}, status_code=status_code, headers=headers
        )

    def log_unavailable(self, request: Request, ctx: Context) -> Response:
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
                form = await read_form(request)
                if not same_origin(request) or not csrf_matches(session, form.get(CSRF_FIELD)):
                    return self.csrf_rejected(request, staff, session)
            elif staff is None or session is None:
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(self.url(request, "login", {"next": here}), status_code=303)
            return await run_in_threadpool(handler, request, Context(staff, session, form))

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
