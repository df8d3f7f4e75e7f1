"""`kounen serve`: the ASGI app (Starlette) with the Telegram webhook.

    POST /telegram/webhook   an Update from Telegram.  The header
                             X-Telegram-Bot-Api-Secret-Token must equal KOUNEN_WEBHOOK_SECRET
                             (constant-time compare), otherwise 403.  200 once the update's
                             effects are committed (its replies are then sent from the outbox);
                             503 when the database failed, so Telegram delivers it again; 413
                             for a body over 1 MiB (refused while reading); 400 for anything
                             that is not an Update.
    GET  /healthz            200 {"status": "ok", ...} when the bot is up and the database
                             answers, 503 otherwise.

`create_app(settings, extra_routes=...)` builds the app; more routes (the call-center
console under /console) are added through `extra_routes`, e.g.
`Mount("/console", app=console_app)`; `kounen serve` takes them from `served_routes`.
They are not behind the webhook secret, and the webhook is not behind theirs.  While the
app runs, `app.state.service`, `app.state.store`, `app.state.kb` and `app.state.settings`
are set.

Several workers (uvicorn --workers, or several hosts) share one PostgreSQL database:
conversation state, the handled update ids and their outbox live there.
`create_app_from_env` is the factory uvicorn imports in each worker.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.settings import Settings, SettingsError

if TYPE_CHECKING:
    from telegram.ext import Application

    from bot.console import ConsoleSettings
    from bot.service import ConversationService

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
HEALTH_PATH = "/healthz"
SECRET_HEADER = "x-telegram-bot-api-secret-token"
MAX_BODY = 1 << 20  # an Update is a few kilobytes


class _Bot:
    """What the lifespan sets up for the routes."""

    application: Application[Any, Any, Any, Any, Any, Any] | None = None
    service: ConversationService | None = None


def create_app(
    settings: Settings,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    service: ConversationService | None = None,
    close_service: bool = False,
    register_webhook: bool | None = None,
) -> Starlette:
    """The ASGI app.  Raises `SettingsError` when the token or the webhook secret is missing.

    `service`: an already opened service, shared with the extra routes (its store is closed
    at shutdown when `close_service`); without one, a service is opened from the settings at
    start-up and closed at shutdown.  `register_webhook`: call setWebhook at start-up
    (default: KOUNEN_SET_WEBHOOK_ON_START).
    """
    settings.require_token()
    expected = settings.require_webhook_secret().encode("ascii")
    register = settings.set_webhook_on_start if register_webhook is None else register_webhook
    bot = _Bot()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from bot.telegram import (
            adapter_of,
            build_application,
            close_adapter,
            register_webhook,
            start_application,
        )

        own = service is None or close_service
        svc = service if service is not None else await asyncio.to_thread(_open_service, settings)
        try:
            application = build_application(settings, svc, polling=False)
            await start_application(application, settings)
            try:
                await application.start()
                adapter_of(application).start_sweeper(application.bot)
                if register:
                    await register_webhook(application, settings)
                bot.application, bot.service = application, svc
                app.state.settings, app.state.service = settings, svc
                app.state.store, app.state.kb = svc.store, svc.kb
                log.info("webhook worker ready as @%s", application.bot.username)
                yield
            finally:
                bot.application = None
                await adapter_of(application).stop_sweeper()
                if application.running:
                    await application.stop()
                await application.shutdown()
                close_adapter(application)
        finally:
            if own:
                svc.store.close()

    async def webhook(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode("latin-1")
        if not hmac.compare_digest(given, expected):
            return PlainTextResponse("forbidden", status_code=403)
        application = bot.application
        if application is None:
            return PlainTextResponse("starting", status_code=503)
        body = await _read_limited(request, MAX_BODY)
        if body is None:
            return PlainTextResponse("too large", status_code=413)
        update = _parse_update(body, application.bot)
        if update is None:
            return PlainTextResponse("not an Update", status_code=400)
        from bot.store import StoreError
        from bot.telegram import adapter_of

        try:
            await adapter_of(application).process(update, application.bot)
        except StoreError as exc:
            # Nothing of this update was kept: a 5xx makes Telegram deliver it again.
            log.warning("update %d not handled, asking for a redelivery: %s", update.update_id, exc)
            return PlainTextResponse("database unavailable", status_code=503)
        return Response(status_code=200)

    async def health(request: Request) -> Response:
        application, svc = bot.application, bot.service
        if application is None or svc is None or not application.running:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            await asyncio.to_thread(_ping, svc)
        except Exception as exc:
            return JSONResponse(
                {"status": "database unavailable", "error": type(exc).__name__}, status_code=503
            )
        return JSONResponse({"status": "ok", "bot": application.bot.username, "database": "ok"})

    routes: list[BaseRoute] = [
        Route(WEBHOOK_PATH, webhook, methods=["POST"]),
        Route(HEALTH_PATH, health, methods=["GET"]),
        *extra_routes,
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit` (checked while reading, so a huge
    or endless chunked body is refused without being held in memory)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


_UPDATE_OBJECTS = ("message", "edited_message", "callback_query")


def _parse_update(body: bytes, bot: Any) -> Any:
    """The Update in `body`, or None when it is not one (bad JSON, too deep, wrong shapes)."""
    from telegram import Update

    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        return None
    for key in _UPDATE_OBJECTS:
        if key in data and not isinstance(data[key], dict):
            return None
    try:
        return Update.de_json(data, bot)
    except Exception as exc:  # PTB raises whatever the malformed field provokes
        log.warning("unreadable update %s: %s: %s", data.get("update_id"), type(exc).__name__, exc)
        return None


def _open_service(settings: Settings) -> ConversationService:
    from bot.chat import ChatError, open_service
    from bot.telegram import BotStartError

    try:
        return open_service(settings.database_url)
    except ChatError as exc:
        raise BotStartError(str(exc)) from None


def _ping(service: ConversationService) -> None:
    with service.store.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def served_routes(settings: Settings, service: ConversationService) -> list[BaseRoute]:
    """Routes `kounen serve` adds beside the webhook, sharing the worker's knowledge base,
    policy and store (`service.kb`, `service.policy`, `service.store`): the call-center
    console, mounted under /console."""
    from starlette.routing import Mount

    from bot.console import create_console_app

    return [
        Mount(
            "/console",
            app=create_console_app(
                kb=service.kb, policy=service.policy, store=service.store, settings=console_settings(settings)
            ),
        )
    ]


def console_settings(settings: Settings) -> ConsoleSettings:
    """The console's settings, refused when a console credential is the webhook secret:
    the webhook secret must never open the console."""
    from bot.console import load_console_settings

    console = load_console_settings()
    if settings.webhook_secret is not None and console.reuses_secret(
        settings.webhook_secret.get_secret_value()
    ):
        raise SettingsError(
            "KOUNEN_WEBHOOK_SECRET is also a console password, token or key: use a different value"
        )
    return console


def create_app_from_env() -> Starlette:
    """uvicorn factory (`bot.web:create_app_from_env`), run in each worker: settings from the
    environment, the service opened once and shared by the webhook and `served_routes`."""
    from bot.settings import configure_logging, load_settings

    settings = load_settings()
    configure_logging(settings)
    follow_supervisor()
    service = _open_service(settings)
    try:
        routes = served_routes(settings, service)
        return create_app(settings, extra_routes=routes, service=service, close_service=True)
    except BaseException:
        service.store.close()
        raise


SUPERVISOR_ENV = "KOUNEN_SUPERVISOR_PID"  # set by `kounen serve` for its workers
ORPHAN_CHECK = 1.0  # seconds between a worker's looks at its parent
ORPHAN_GRACE = 10.0  # seconds an orphaned worker has to finish its requests


def follow_supervisor() -> None:
    """In a worker of `kounen serve --workers N`: exit when the supervising process is gone.

    A worker whose master was killed would otherwise keep the port and serve on unsupervised
    (nobody restarts it, nobody stops it).  It is told to stop (SIGTERM: uvicorn finishes the
    requests in flight) and, should that hang, ends after ORPHAN_GRACE seconds.
    """
    import os
    import signal
    import threading
    import time

    expected = os.environ.get(SUPERVISOR_ENV, "")
    if not expected.isdigit() or os.getppid() != int(expected):
        return  # not a worker of a supervising `kounen serve`

    def watch() -> None:
        while os.getppid() == int(expected):
            time.sleep(ORPHAN_CHECK)
        log.error("the supervising process %s is gone: this worker stops", expected)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(ORPHAN_GRACE)
        os._exit(1)

    threading.Thread(target=watch, name="kounen-follow-supervisor", daemon=True).start()


def serve(settings: Settings) -> None:
    """`kounen serve`: check everything once, then run uvicorn with `settings.workers` workers.

    Raises `BotStartError` (one line) before any worker starts: token or secret missing,
    database unusable, Bot API unreachable or refusing the token, setWebhook refused.
    """
    import os

    from bot.telegram import BotStartError, check_bot

    try:
        settings.require_token()
        settings.require_webhook_secret()
    except SettingsError as exc:
        raise BotStartError(str(exc)) from None
    if settings.set_webhook_on_start and not settings.webhook_url:
        raise BotStartError("KOUNEN_SET_WEBHOOK_ON_START is true but KOUNEN_WEBHOOK_URL is not set")
    from bot.store import Store, StoreError

    try:
        settings.prepare_data_dir()
        Store.open(settings.database_url, salt=settings.hash_salt.get_secret_value()).close()  # migrate once
    except (SettingsError, StoreError) as exc:
        raise BotStartError(str(exc)) from None
    if settings.workers > 1 and settings.database_url.startswith("sqlite"):
        log.warning(
            "%d workers on SQLite: use PostgreSQL (KOUNEN_DATABASE_URL) for several workers", settings.workers
        )
    username = asyncio.run(check_bot(settings, register_webhook=settings.set_webhook_on_start))
    # The workers read their settings from the environment: pass on what the command line
    # changed, and do not register the webhook again in every worker.
    os.environ["KOUNEN_DATABASE_URL"] = settings.database_url
    os.environ["KOUNEN_SET_WEBHOOK_ON_START"] = "false"
    if settings.workers > 1:
        os.environ[SUPERVISOR_ENV] = str(os.getpid())  # the workers exit when this process dies
    log.warning(
        "serving @%s on http://%s:%d%s with %d worker(s)",
        username,
        settings.listen_host,
        settings.listen_port,
        WEBHOOK_PATH,
        settings.workers,
    )
    _run_uvicorn(settings, "bot.web:create_app_from_env")


def _run_uvicorn(settings: Settings, factory: str) -> None:
    """uvicorn with the settings' address, workers and log level, as `kounen serve` and `kounen console` run it."""
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=settings.listen_host,
        port=settings.listen_port,
        workers=settings.workers,
        lifespan="on",
        log_level=settings.log_level.lower(),
        # The client address is read by the console from KOUNEN_CONSOLE_TRUSTED_PROXIES only:
        # uvicorn would otherwise believe X-Forwarded-For from any local process.
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        # A worker loading the dictionary on a busy machine can miss uvicorn's 5 s health check
        # and be killed and restarted over and over; the master is told to be patient.
        timeout_worker_healthcheck=30,
    )


# -- `kounen console`: the console alone, no bot token ---------------------------------------


def create_console_from_env() -> Starlette:
    """uvicorn factory (`bot.web:create_console_from_env`) for `kounen console`: the console
    under /console and /healthz, with the same settings and login as `kounen serve`, and no
    Telegram at all (a call center that uses only the console needs no bot token)."""
    from starlette.responses import RedirectResponse

    from bot.settings import configure_logging, load_settings

    settings = load_settings()
    configure_logging(settings)
    follow_supervisor()
    service = _open_service(settings)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.store.close()

    async def health(_request: Request) -> Response:
        try:
            await asyncio.to_thread(_ping, service)
        except Exception as exc:
            return JSONResponse(
                {"status": "database unavailable", "error": type(exc).__name__}, status_code=503
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    async def home(_request: Request) -> Response:
        return RedirectResponse("/console/", status_code=303)

    try:
        routes = [
            Route("/", home, methods=["GET"]),
            Route(HEALTH_PATH, health, methods=["GET"]),
            *served_routes(settings, service),
        ]
    except BaseException:
        service.store.close()
        raise
    return Starlette(routes=routes, lifespan=lifespan)


def serve_console(settings: Settings) -> None:
    """`kounen console`: migrate once, then uvicorn with `settings.workers` workers."""
    import os

    from bot.store import Store, StoreError
    from bot.telegram import BotStartError

    try:
        settings.prepare_data_dir()
        Store.open(settings.database_url, salt=settings.hash_salt.get_secret_value()).close()
    except (SettingsError, StoreError) as exc:
        raise BotStartError(str(exc)) from None
    os.environ["KOUNEN_DATABASE_URL"] = settings.database_url
    if settings.workers > 1:
        os.environ[SUPERVISOR_ENV] = str(os.getpid())
    log.warning(
        "serving the console on http://%s:%d/console/ with %d worker(s)",
        settings.listen_host,
        settings.listen_port,
        settings.workers,
    )
    _run_uvicorn(settings, "bot.web:create_console_from_env")
