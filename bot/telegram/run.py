"""Building and running: the PTB Application, the start-up checks, the webhook and long polling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from telegram import LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, Defaults
from telegram.request import HTTPXRequest

from bot.settings import Settings
from bot.telegram.adapter import ALLOWED_UPDATES, TelegramAdapter
from bot.telegram.retries import RetryingRateLimiter

if TYPE_CHECKING:
    from bot.service import ConversationService

log = logging.getLogger(__name__)


class BotStartError(Exception):
    """The bot cannot start; the message is one line saying what to fix (never the token)."""


def file_base_url(base_url: str) -> str:
    """The file download base matching an API base (…/bot → …/file/bot)."""
    if "{token}" in base_url:
        return base_url.replace("/bot{token}", "/file/bot{token}")
    return base_url[: -len("/bot")] + "/file/bot" if base_url.endswith("/bot") else base_url


def _durations_as_timedelta() -> None:
    """PTB 22's opt-in to durations as timedelta (RetryAfter.retry_after …); without it every 429
    logs a deprecation warning.  Nothing here reads those attributes as numbers."""
    os.environ.setdefault("PTB_TIMEDELTA", "true")


def build_application(
    settings: Settings,
    service: ConversationService,
    *,
    polling: bool,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """A PTB Application for its bot (requests, rate limiter, defaults and lifecycle) with the
    adapter in `bot_data["adapter"]`.  Updates do not go through PTB's handlers: the webhook and
    `poll` give them to `TelegramAdapter.process`, which reports whether they were made durable.
    `polling` only selects the request used for getUpdates."""
    token = settings.require_token()
    _durations_as_timedelta()
    adapter = TelegramAdapter(service, settings.telegram_send_rate)
    # With the shared budget the process limits no overall rate itself (group limits and the
    # retries after a 429 stay); without it the process's own limiter is the budget.
    process_rate = 0.0 if adapter.shared_budget else settings.telegram_send_rate
    builder = (
        Application.builder()
        .token(token)
        .base_url(settings.telegram_api_base_url)
        .base_file_url(file_base_url(settings.telegram_api_base_url))
        .request(HTTPXRequest(connection_pool_size=32, connect_timeout=5.0, read_timeout=15.0))
        .rate_limiter(RetryingRateLimiter(max_retries=3, rate=process_rate))
        .defaults(
            Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True))
        )
        .updater(None)
    )
    if polling:
        builder = builder.get_updates_request(HTTPXRequest(connect_timeout=5.0, read_timeout=15.0))
    application = builder.build()
    application.bot_data["adapter"] = adapter
    limiter = application.bot.rate_limiter
    if isinstance(limiter, RetryingRateLimiter):

        async def paused(retry_after: Any) -> None:
            await adapter.pause_budget(application.bot, retry_after)

        limiter.on_retry_after = paused
    return application


def adapter_of(application: Application[Any, Any, Any, Any, Any, Any]) -> TelegramAdapter:
    adapter = application.bot_data.get("adapter")
    if not isinstance(adapter, TelegramAdapter):
        raise TypeError("the application was not made by build_application")
    return adapter


def describe_start_error(exc: BaseException, settings: Settings) -> str:
    """One line for a failure to reach or use the Bot API (the token never included)."""
    if isinstance(exc, InvalidToken):  # its message quotes the token: never shown
        return (
            "the Telegram Bot API rejected KOUNEN_TELEGRAM_TOKEN: check the token with @BotFather "
            f"(/mybots → API Token) and set it again (API: {settings.telegram_api_base_url})"
        )
    reason = " ".join(str(exc).split()) or type(exc).__name__
    token = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
    if token:
        reason = reason.replace(token, "<redacted>")
    return (
        f"cannot reach the Telegram Bot API at {settings.telegram_api_base_url}: {reason} "
        "(check the network, a proxy, or KOUNEN_TELEGRAM_API_BASE_URL)"
    )


async def start_application(
    application: Application[Any, Any, Any, Any, Any, Any], settings: Settings
) -> None:
    """initialize() (getMe) and setMyCommands; `BotStartError` with one line on failure."""
    try:
        await application.initialize()
    except (TelegramError, OSError) as exc:
        await _quiet_shutdown(application)
        raise BotStartError(describe_start_error(exc, settings)) from None
    try:
        await application.bot.set_my_commands(TelegramAdapter.bot_commands())
    except TelegramError as exc:  # the bot works without the menu; say so and go on
        log.warning("setMyCommands failed: %s", exc)


async def _quiet_shutdown(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    try:
        await application.shutdown()
    except Exception as exc:  # shutting down after a failed start must not hide the start error
        log.debug("shutdown after a failed start: %s", exc)
    close_adapter(application)


def close_adapter(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Stop the adapter's worker threads (after the application has stopped)."""
    adapter = application.bot_data.get("adapter")
    if isinstance(adapter, TelegramAdapter):
        adapter.close()


async def register_webhook(
    application: Application[Any, Any, Any, Any, Any, Any], settings: Settings
) -> None:
    """setWebhook with the URL and secret from the settings."""
    await _set_webhook(application.bot, settings)


async def check_bot(settings: Settings, *, register_webhook: bool = False) -> str:
    """Before `kounen serve` starts its workers: getMe, setMyCommands and, when asked, setWebhook,
    once.  Returns the bot's username; `BotStartError` with one line on failure."""
    from telegram.ext import ExtBot

    _durations_as_timedelta()
    bot = ExtBot(
        settings.require_token(),
        base_url=settings.telegram_api_base_url,
        base_file_url=file_base_url(settings.telegram_api_base_url),
        request=HTTPXRequest(connect_timeout=5.0, read_timeout=15.0),
        rate_limiter=RetryingRateLimiter(max_retries=3),
    )
    try:
        await bot.initialize()
    except (TelegramError, OSError) as exc:
        raise BotStartError(describe_start_error(exc, settings)) from None
    try:
        try:
            await bot.set_my_commands(TelegramAdapter.bot_commands())
        except TelegramError as exc:
            log.warning("setMyCommands failed: %s", exc)
        if register_webhook:
            await _set_webhook(bot, settings)
        return bot.username
    finally:
        await bot.shutdown()


async def _set_webhook(bot: Any, settings: Settings) -> None:
    if not settings.webhook_url:
        raise BotStartError("KOUNEN_SET_WEBHOOK_ON_START is true but KOUNEN_WEBHOOK_URL is not set")
    try:
        await bot.set_webhook(
            settings.webhook_url,
            secret_token=settings.require_webhook_secret(),
            allowed_updates=list(ALLOWED_UPDATES),
        )
    except TelegramError as exc:
        raise BotStartError(f"setWebhook {settings.webhook_url} failed: {exc}") from None


async def poll(
    application: Application[Any, Any, Any, Any, Any, Any],
    settings: Settings,
    stop: asyncio.Event,
    *,
    poll_timeout: float = 10.0,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Long polling until `stop` is set (deleteWebhook first), confirming only durable updates."""
    await start_application(application, settings)
    adapter = adapter_of(application)
    try:
        try:
            await application.bot.delete_webhook()
        except TelegramError as exc:
            raise BotStartError(describe_start_error(exc, settings)) from None
        await application.start()
        adapter.start_sweeper(application.bot)
        if on_ready is not None:
            on_ready()
        await adapter.poll_updates(application.bot, stop, poll_timeout)
    finally:
        await adapter.stop_sweeper()
        if application.running:
            await application.stop()
        await _quiet_shutdown(application)


def run_polling(database_url: str | None = None, poll_timeout: float = 10.0) -> None:
    """`kounen bot`: settings → token → store and knowledge base → long polling until SIGINT/SIGTERM.

    Raises `BotStartError` (one line) for anything the user must fix.
    """
    from bot.chat import ChatError, open_service
    from bot.settings import SettingsError, configure_logging, load_settings

    try:
        settings = load_settings(database_url=database_url)
        settings.require_token()
        configure_logging(settings)
        service = open_service(settings.database_url)
    except (SettingsError, ChatError) as exc:
        raise BotStartError(str(exc)) from None
    try:
        application = build_application(settings, service, polling=True)
        asyncio.run(_poll_until_signal(application, settings, poll_timeout))
    finally:
        service.store.close()


async def _poll_until_signal(
    application: Application[Any, Any, Any, Any, Any, Any], settings: Settings, poll_timeout: float
) -> None:
    import sys

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on the main thread / Windows
            loop.add_signal_handler(signum, stop.set)

    def ready() -> None:
        name = application.bot.username
        sys.stderr.write(
            f"kounen: polling as @{name} via {settings.telegram_api_base_url} (Ctrl-C to stop)\n"
        )
        sys.stderr.flush()

    await poll(application, settings, stop, poll_timeout=poll_timeout, on_ready=ready)
