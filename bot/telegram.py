"""The Telegram channel: python-telegram-bot 22 over the conversation service.

The adapter only translates.  An update becomes a `UserInput` (typed text, a
command, or the value of a pressed button) for `ConversationService.handle`; the
`Reply`s that come back become messages: HTML parse mode with every text escaped,
inline keyboards whose callback data is the choice value (≤ 64 bytes ASCII), texts
over 4,096 characters split at line ends, and 👍/👎 buttons under every answer,
stored through `ConversationService.feedback`.  What to answer is decided by the
service; the conversation lives in its store, never in PTB's ConversationHandler,
user_data or a persistence file, so any number of processes can share it.

Callback data sent here:
    faq:… prog:… flow:… cmd:… and step values   the service's choice values, as given
    /program <id>                                 a command, handled as if typed
    fb:1:<id> / fb:0:<id>                         👍 / 👎 on an answer (entry id or flow:<id>)
    cat:<category id> / cat:                      /faq browsing (the message is edited in place)

Exactly-once effects over at-least-once delivery: `TelegramAdapter.process` runs each
update as one store transaction (`Store.run_update`) that claims the update id, reads and
locks the conversation, routes it through the service, saves it, logs the turn, stores
feedback and queues the messages in the outbox; the messages are sent after the commit, in
order, and marked sent.  A redelivered update that committed only sends what is left of its
messages; one that did not is handled afresh.  A database failure raises `StoreError`: the
webhook answers 503 and polling does not move its offset, so Telegram delivers it again.
What stays at-least-once is the send itself (see README, "Delivery").
One chat's updates are handled one at a time (`ChatOrder` in a process; the locked
conversation row and outbox rows across processes); different chats run concurrently.
Sends respect one budget per bot (KOUNEN_TELEGRAM_SEND_RATE): on PostgreSQL it is taken in
the update's transaction and shared by every worker (a user kept waiting sees "typing…"); on
SQLite the process's limiter is the budget.  Bot API calls go through `RetryingRateLimiter`:
AIORateLimiter (group limits, retries on 429) plus retries with exponential backoff on network
errors and 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, Defaults
from telegram.request import HTTPXRequest

from bot.handoff import OFFER_LABEL
from bot.settings import Settings
from bot.store import Handled, StoreError, UpdateUnit
from dialogs.types import Reply, ReplyChoice, UserInput
from faq.render import contact_block, general_contacts
from rules.contact_hours import TOKYO, line_status

if TYPE_CHECKING:
    from bot.service import ConversationService, ServiceTurn

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "telegram"
MAX_MESSAGE = 4096  # Telegram's limit on a message's text, in UTF-16 code units after parsing
MAX_CALLBACK_BYTES = 64
MAX_LABEL = 60  # characters of a button label (longer ones are cut with …)
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
SERVICE_THREADS = 4  # threads running service turns and store calls (see TelegramAdapter)
SENDERS = 8  # chats whose outbox is being sent at once (each holds a database connection)
SWEEP_INTERVAL = 5.0  # seconds between looks for messages left unsent
TYPING_AFTER = 0.5  # seconds of waiting for the send budget after which "typing…" is shown
POLL_BACKOFF, POLL_BACKOFF_MAX = 0.5, 10.0  # seconds before fetching again after a failure

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "はじめに（できること・制度の選択）"),
    ("help", "使い方"),
    ("faq", "よくある質問をカテゴリから探す"),
    ("calc", "労働生産性・伸び率を計算する"),
    ("jitai", "辞退・返還にあたるか確認する"),
    ("program", "制度を指定・変更する"),
    ("contact", "問い合わせ先と、いま受付中か"),
    ("human", "担当者（人）に相談する"),
    ("cancel", "案内を中止する"),
)
COMMAND_NAMES = frozenset(name for name, _ in COMMANDS)
FLOW_COMMANDS = {"calc": "flow:productivity", "jitai": "flow:withdrawal"}

UNSUPPORTED = (
    "申し訳ありません。画像・スタンプ・音声・ファイルなどの内容は読み取れません。"
    "ご質問は文章で入力してください（使い方は /help）。"
)
EDITED = (
    "メッセージの編集には対応していません。お手数ですが、訂正した内容を新しいメッセージとしてお送りください。"
)
ERROR_TEXT = "申し訳ありません。処理中にエラーが発生しました。少し時間をおいて、もう一度お送りください。"
CHOOSE = "お選びください。"
PROGRAM_PROMPT = "ご利用の制度をお選びください（あとから /program で変更できます）。"
FAQ_PROMPT = "よくある質問のカテゴリをお選びください。"
FAQ_BACK = "« カテゴリ一覧"
FEEDBACK_UP, FEEDBACK_DOWN = "👍 役に立った", "👎 役に立たなかった"
FEEDBACK_THANKS = "ご評価ありがとうございます。今後の改善に使わせていただきます。"
CONTACT_HEAD = "お問い合わせ先"
NOT_HELPFUL_OFFER = "お役に立てず申し訳ありません。担当者に相談することもできます。"


class BotStartError(Exception):
    """The bot cannot start; the message is one line saying what to fix (never the token)."""


# -- rendering (pure) -------------------------------------------------------------------


def escape(text: str) -> str:
    """Text for HTML parse mode: every <, > and & shown literally."""
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _cut(line: str, limit: int) -> tuple[str, str]:
    """The longest head of `line` within `limit` UTF-16 units (never halving a character), and the rest."""
    units = 0
    for index, char in enumerate(line):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return line[:index], line[index:]
    return line, ""


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """`text` in pieces of at most `limit` characters (as Telegram counts), cut at line ends.

    A single line longer than the limit is cut inside the line.  Empty pieces are dropped.
    """
    if utf16_len(text) <= limit:
        return [text] if text.strip() else []
    pieces: list[str] = []
    current = ""

    def flush() -> None:
        nonlocal current
        if current.strip():
            pieces.append(current.rstrip("\n"))
        current = ""

    for line in text.splitlines(keepends=True):
        if utf16_len(current) + utf16_len(line) <= limit:
            current += line
            continue
        flush()
        while utf16_len(line) > limit:
            head, line = _cut(line, limit)
            pieces.append(head)
        current = line
    flush()
    return pieces


def valid_callback(value: str) -> bool:
    return value.isascii() and 0 < len(value.encode("ascii")) <= MAX_CALLBACK_BYTES


def _label(text: str, fallback: str) -> str:
    text = " ".join(text.split()) or fallback
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _button(label: str, data: str) -> InlineKeyboardButton | None:
    if not valid_callback(data):
        log.warning("button %r dropped: callback data %r is not 1-64 bytes of ASCII", label, data)
        return None
    return InlineKeyboardButton(_label(label, data), callback_data=data)


def feedback_row(entry_id: str) -> list[InlineKeyboardButton]:
    buttons = [_button(FEEDBACK_UP, f"fb:1:{entry_id}"), _button(FEEDBACK_DOWN, f"fb:0:{entry_id}")]
    return [b for b in buttons if b is not None]


def keyboard(choices: Sequence[ReplyChoice], feedback: str | None = None) -> InlineKeyboardMarkup | None:
    """Choices as inline buttons: short ones side by side, long ones one per row, the dialog's
    navigation (戻る・ヘルプ・やめる) on one row, and 👍/👎 last when `feedback` names an answer."""
    main: list[InlineKeyboardButton] = []
    nav: list[InlineKeyboardButton] = []
    for choice in choices:
        button = _button(choice.label, choice.value)
        if button is not None:
            (nav if choice.value.startswith("cmd:") else main).append(button)
    rows: list[list[InlineKeyboardButton]] = []
    if main and all(len(b.text) <= 8 for b in main):
        rows += [main[i : i + 3] for i in range(0, len(main), 3)]
    else:
        rows += [[b] for b in main]
    if nav:
        rows.append(nav)
    if feedback:
        row = feedback_row(feedback)
        if row:
            rows.append(row)
    return InlineKeyboardMarkup(rows) if rows else None


@dataclass(frozen=True)
class Outgoing:
    """One message to send: HTML text and its keyboard."""

    html: str
    markup: InlineKeyboardMarkup | None = None


def render_replies(
    replies: Sequence[Reply], feedback: str | None = None, feedback_at: int = 0
) -> list[Outgoing]:
    """Replies as messages; the keyboard (and 👍/👎 for reply `feedback_at`) on each reply's last piece."""
    out: list[Outgoing] = []
    for index, reply in enumerate(replies):
        markup = keyboard(reply.choices, feedback if index == feedback_at else None)
        pieces = split_text(reply.text)
        if not pieces and markup is None:
            continue
        if not pieces:
            pieces = [CHOOSE]
        for number, piece in enumerate(pieces, start=1):
            out.append(Outgoing(escape(piece), markup if number == len(pieces) else None))
    return out


def render_turn(turn: ServiceTurn) -> list[Outgoing]:
    """A service turn as messages, with 👍/👎 under the answer or the calculation's summary."""
    feedback_at = 0
    if turn.entry_id is not None and turn.result is not None:
        feedback_at = next((i for i, r in enumerate(turn.replies) if r.result is not None), 0)
    return render_replies(turn.replies, turn.entry_id, feedback_at)


def _chat_key(update: object) -> str | None:
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return str(update.effective_chat.id)
    if update.effective_user is not None:
        return str(update.effective_user.id)
    return None


# -- ordering and retries ----------------------------------------------------------------


class ChatOrder:
    """One chat's updates one at a time, in arrival order; different chats concurrently.

    Within a process.  Across processes the conversation row, locked from the turn's read to
    its commit, and the outbox rows, locked while they are sent, keep one chat's turns and
    messages apart and in order (see `Store.run_update` and `OutboxBatch`).
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def __call__(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._locks[key]

    @property
    def idle(self) -> bool:
        return not self._locks


class RetryingRateLimiter(AIORateLimiter):
    """AIORateLimiter (flood limits, up to `max_retries` retries after a 429) plus retries with
    exponential backoff on network errors and server errors (5xx), for every Bot API call
    except getUpdates (the updater retries that one itself)."""

    def __init__(
        self, *, max_retries: int = 3, network_retries: int = 3, backoff: float = 0.5, rate: float = 30.0
    ) -> None:
        # rate 0: no overall limit (group limits stay; a 429 is still retried after its retry_after).
        super().__init__(
            max_retries=max_retries,
            overall_max_rate=rate,
            overall_time_period=1,
        )
        self.network_retries = network_retries
        self.backoff = backoff
        # Called with retry_after (seconds or a timedelta) on every 429, before the wait.
        self.on_retry_after: Callable[[Any], Awaitable[None]] | None = None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        delay = self.backoff
        on_retry_after = self.on_retry_after

        async def call(*call_args: Any, **call_kwargs: Any) -> bool | dict[str, Any] | list[dict[str, Any]]:
            try:
                return await callback(*call_args, **call_kwargs)
            except RetryAfter as exc:  # tell the other workers too, then let the limiter wait
                if on_retry_after is not None:
                    await on_retry_after(exc.retry_after)
                raise

        for attempt in range(self.network_retries + 1):
            try:
                return await super().process_request(call, args, kwargs, endpoint, data, rate_limit_args)
            except BadRequest:
                raise  # a NetworkError subclass, but retrying cannot fix the request
            except NetworkError as exc:
                if attempt == self.network_retries:
                    raise
                log.info("Bot API %s failed (%s); retry %d in %.1f s", endpoint, exc, attempt + 1, delay)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover


# -- the adapter ------------------------------------------------------------------------


Work = Callable[[UpdateUnit], "str | None"]  # runs inside the update's transaction; the callback answer


def _message(html_text: str, markup: InlineKeyboardMarkup | None = None) -> dict[str, Any]:
    """An outbox entry: a new message to the update's chat."""
    item: dict[str, Any] = {"method": "sendMessage", "text": html_text}
    if markup is not None:
        item["reply_markup"] = markup.to_dict()
    return item


def _outbox(messages: Iterable[Outgoing]) -> list[dict[str, Any]]:
    return [_message(m.html, m.markup) for m in messages]


class TelegramAdapter:
    """Turns each update into one committed unit of effects, then sends its messages.

    `process(update)`: in one store transaction (`Store.run_update`) the update is claimed,
    the conversation read, locked, routed by the service and saved, the turn logged, feedback
    stored and the messages to send queued in the outbox; only then are they sent, in order,
    and marked sent.  A redelivered update whose transaction committed changes nothing: only
    its unsent messages go out.  A database failure raises `StoreError`: the webhook answers
    5xx and polling does not confirm the update, so Telegram delivers it again.
    """

    def __init__(
        self,
        service: ConversationService,
        clock: Callable[[], datetime] | None = None,
        send_rate: float = 0.0,
    ) -> None:
        self.service = service
        # One send budget per bot, kept in PostgreSQL and shared by every worker and host; on
        # SQLite (one process) the rate limiter of the process is the budget.
        self.shared_budget = send_rate > 0 and service.store.engine.dialect.name == "postgresql"
        self._budget = (send_rate, max(1.0, send_rate)) if self.shared_budget else None
        self.kb = service.kb
        self._clock = clock or (lambda: datetime.now(TOKYO))
        # The store's blocking calls run here, off the event loop: few threads (the work is
        # short and the matcher holds the GIL), each with its own Sudachi tokenizer.
        self._executor = ThreadPoolExecutor(SERVICE_THREADS, thread_name_prefix="kounen-service")
        self._order = ChatOrder()
        self._senders = asyncio.Semaphore(SENDERS)
        self._sweeper: asyncio.Task[None] | None = None
        # Messages sent whose marking failed (database down): never sent again by this process.
        self._unrecorded: dict[tuple[str, int], tuple[int, bool]] = {}

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _blocking(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    @staticmethod
    def source(bot: Any) -> str:
        return f"{CHANNEL}:{bot.id}"

    @staticmethod
    def bot_commands() -> list[BotCommand]:
        return [BotCommand(name, description) for name, description in COMMANDS]

    # -- one update ---------------------------------------------------------------------

    async def process(self, update: Update, bot: Any) -> bool:
        """Handle `update` with exactly-once effects.  False for a redelivery of a committed one.

        Raises `StoreError` when its effects could not be made durable (nothing was kept).
        A bug while routing is logged and answered with a notice, committed like any answer:
        delivering the update again would only fail again.
        """
        chat = _chat_key(update)
        if chat is None:
            return True
        async with self._order(chat):
            try:
                work = self.plan(update, bot)
            except Exception as exc:  # an update of a shape nobody expected: a bug, answered
                log.error("cannot read update %s: %s: %s", update.update_id, type(exc).__name__, exc)
                work = _notice(ERROR_TEXT)
            if work is None:
                return True
            source = self.source(bot)
            try:
                handled = await self._blocking(self._commit, source, update.update_id, chat, work)
            except StoreError:
                raise
            except Exception as exc:
                log.error(
                    "error while handling update %s: %s: %s",
                    update.update_id,
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                )
                handled = await self._blocking(
                    self._commit, source, update.update_id, chat, _notice(ERROR_TEXT)
                )
            send_at = asyncio.get_running_loop().time() + handled.send_delay
            if not handled.fresh:
                log.info("update %d handled before: sending what is left of its replies", update.update_id)
            elif update.callback_query is not None:
                await self._answer_query(update.callback_query, handled.result)
            await self._flush(bot, chat, send_at)
            return handled.fresh

    def _commit(self, source: str, update_id: int, chat: str, work: Work) -> Handled[str | None]:
        return self.service.store.run_update(
            CHANNEL, chat, work, source=source, update_id=update_id, budget=self._budget
        )

    # -- the outbox -----------------------------------------------------------------------

    async def pause_budget(self, bot: Any, retry_after: Any) -> None:
        """A 429 with `retry_after`: no worker sends from the shared budget before it is over."""
        if not self.shared_budget:
            return  # the process's own limiter already waits
        seconds = retry_after.total_seconds() if hasattr(retry_after, "total_seconds") else float(retry_after)
        try:
            await self._blocking(self.service.store.pause_sends, self.source(bot), seconds)
        except StoreError as exc:
            log.warning("could not share a 429's retry_after: %s", exc)

    async def _wait_for_budget(self, bot: Any, chat_id: int, send_at: float, typed: bool) -> bool:
        """Sleep until `send_at` (loop time); a user kept waiting sees "typing…".  Returns whether
        the chat action was sent."""
        wait = send_at - asyncio.get_running_loop().time()
        if wait <= 0:
            return typed
        if wait >= TYPING_AFTER and not typed:
            try:
                await bot.send_chat_action(chat_id, ChatAction.TYPING)
            except TelegramError as exc:
                log.info("typing… not shown: %s", exc)
            typed = True
            wait = send_at - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)
        return typed

    async def _flush(self, bot: Any, chat: str, send_at: float = 0.0, source: str | None = None) -> None:
        """Send the chat's unsent messages in order and mark them sent (call under its order).

        With the shared budget the first goes at `send_at` (loop time) and the next ones one
        budget slot apart.  `source`: another outbox than the bot's updates (CASE_SOURCE:
        messages from staff)."""
        source = source or self.source(bot)
        batch = self.service.store.outbox(source, chat)
        async with self._senders:
            pending = await self._blocking(batch.take)
            progress: dict[int, tuple[int, bool]] = {}
            typed = False
            try:
                for unsent in pending:
                    done = max(unsent.sent, self._unrecorded.get((source, unsent.update_id), (0, False))[0])
                    if done:
                        progress[unsent.update_id] = (done, False)
                    for item in unsent.messages[done:]:
                        if self._budget is not None:
                            typed = await self._wait_for_budget(bot, int(chat), send_at, typed)
                            send_at = max(send_at, asyncio.get_running_loop().time()) + 1 / self._budget[0]
                        delivered = await self._deliver(bot, int(chat), item)
                        if "case_event" in item:  # a message from staff: its delivery is shown on the case
                            await self._blocking(self._case_delivery, int(item["case_event"]), delivered)
                        done += 1
                        progress[unsent.update_id] = (done, False)
                    progress[unsent.update_id] = (done, True)
            except (NetworkError, RetryAfter) as exc:  # after the limiter's retries: swept later
                log.warning("sending to chat %s failed (%s): will retry", chat, exc)
            finally:
                try:
                    await self._blocking(batch.finish, progress)
                except StoreError:
                    self._unrecorded.update({(source, uid): p for uid, p in progress.items()})
                    raise
                for update_id in progress:
                    self._unrecorded.pop((source, update_id), None)

    def _case_delivery(self, event_id: int, delivered: bool) -> None:
        from bot.cases import Cases

        try:
            Cases(self.service.store).mark_delivery(event_id, "sent" if delivered else "undeliverable")
        except StoreError as exc:  # the message went (or was refused) all the same
            log.warning("delivery of case message %d not recorded: %s", event_id, exc)

    async def _deliver(self, bot: Any, chat_id: int, item: dict[str, Any]) -> bool:
        """Send one outbox item; False when the Bot API refuses it for good (blocked, bad request)."""
        method = item.get("method")
        data = item.get("reply_markup")
        markup = InlineKeyboardMarkup.de_json(data, bot) if data else None
        try:
            if method == "editMessageText":
                try:
                    await bot.edit_message_text(
                        item["text"], chat_id=chat_id, message_id=item["message_id"], reply_markup=markup
                    )
                    return True
                except BadRequest as exc:
                    if "not modified" in exc.message:
                        return True  # already showing it
                    log.info("message not edited (%s): sending a new one", exc)
            elif method == "editMessageReplyMarkup":
                await bot.edit_message_reply_markup(
                    chat_id=chat_id, message_id=item["message_id"], reply_markup=markup
                )
                return True
            await bot.send_message(chat_id, item["text"], reply_markup=markup)
            return True
        except (BadRequest, Forbidden) as exc:  # retrying cannot fix these: dropped, said in the log
            log.warning("Bot API refused %s to chat %s: %s", method, chat_id, exc)
            return False

    async def sweep(self, bot: Any, interval: float = SWEEP_INTERVAL) -> None:
        """Forever: send what is left in the outbox (a send failed, or another worker died)."""
        from bot.cases import CASE_SOURCE, Cases

        cases = Cases(self.service.store, self.service.case_settings)
        while True:
            await asyncio.sleep(interval)
            try:
                chats = await self._blocking(self.service.store.chats_with_unsent, self.source(bot), interval)
                for chat in chats:
                    async with self._order(chat):
                        await self._flush(bot, chat)
                # Cases: expiry and retention, then what staff sent (committed by the console).
                await self._blocking(cases.housekeeping)
                for chat in await self._blocking(self.service.store.chats_with_unsent, CASE_SOURCE):
                    async with self._order(chat):
                        await self._flush(bot, chat, source=CASE_SOURCE)
            except StoreError as exc:
                log.warning("outbox sweep: %s", exc)
            except Exception as exc:
                log.error("outbox sweep failed: %s: %s", type(exc).__name__, exc, exc_info=exc)

    def start_sweeper(self, bot: Any) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self.sweep(bot, SWEEP_INTERVAL))

    async def stop_sweeper(self) -> None:
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- polling ----------------------------------------------------------------------------

    async def poll_updates(self, bot: Any, stop: asyncio.Event, poll_timeout: float) -> None:
        """getUpdates until `stop`; the offset moves past a batch only once all of it is committed.

        Confirming an update to Telegram is asking for the next offset, so an update that was
        not made durable (database down, process killed) is fetched again; one that was is a
        redelivery and changes nothing.
        """
        offset: int | None = None
        delay = POLL_BACKOFF
        while not stop.is_set():
            fetch = asyncio.ensure_future(
                bot.get_updates(
                    offset=offset, timeout=int(poll_timeout), allowed_updates=list(ALLOWED_UPDATES)
                )
            )
            stopping = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if fetch not in done:
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, TelegramError):
                    await fetch
                return
            try:
                updates: Sequence[Update] = fetch.result()
            except TelegramError as exc:
                log.warning("polling failed, retrying in %.1f s: %s: %s", delay, type(exc).__name__, exc)
                await _sleep_unless(stop, delay)
                delay = min(delay * 2, POLL_BACKOFF_MAX)
                continue
            if not updates:
                continue
            results = await asyncio.gather(*(self.process(u, bot) for u in updates), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                log.warning(
                    "%d of %d updates not handled (%s): fetching them again in %.1f s",
                    len(failed),
                    len(updates),
                    failed[0],
                    delay,
                )
                await _sleep_unless(stop, delay)
                delay = min(delay * 2, POLL_BACKOFF_MAX)
                continue
            delay = POLL_BACKOFF
            offset = updates[-1].update_id + 1

    # -- what an update does (runs inside its transaction) --------------------------------

    def plan(self, update: Update, bot: Any) -> Work | None:
        """The work for `update`, or None when it asks for nothing (e.g. another bot's command)."""
        if update.edited_message is not None:
            return _notice(EDITED)
        if update.callback_query is not None:
            return self._plan_callback(update.callback_query)
        message = update.message
        if message is None:
            return None
        if message.text is None:
            return _notice(UNSUPPORTED) if message.effective_attachment is not None else None
        text = message.text
        first, _, rest = text.strip().partition(" ")
        if first.startswith("/") and len(first) > 1:
            command, _, addressee = first[1:].partition("@")
            if addressee and bot.username and addressee.lower() != bot.username.lower():
                return None  # a command for another bot in a group
            name = command.lower()
            if name in COMMAND_NAMES:
                return self._plan_command(name, rest.split())
            text = f"/{command} {rest}".strip()  # /reset@this_bot → /reset
        return self._turn(UserInput(text))

    def _turn(
        self, user_input: UserInput, after: Callable[[UpdateUnit, ServiceTurn], None] | None = None
    ) -> Work:
        def work(unit: UpdateUnit) -> None:
            turn = self.service.handle_in(unit, CHANNEL, unit.user_id, user_input)
            unit.send(*_outbox(render_turn(turn)))
            if after is not None:
                after(unit, turn)

        return work

    def _plan_command(self, name: str, args: list[str]) -> Work:
        if name in FLOW_COMMANDS:
            return self._turn(UserInput(choice=FLOW_COMMANDS[name]))
        if name == "faq":
            if args:  # /faq 質問文: answered like typed text
                return self._turn(UserInput(" ".join(args)))
            return _notice(FAQ_PROMPT, self.category_keyboard())
        if name == "contact":

            def contact(unit: UpdateUnit) -> None:
                text = self._contacts(unit.conversation().program)
                unit.send(*(_message(escape(piece)) for piece in split_text(text)))

            return contact
        prompt = _message(escape(PROGRAM_PROMPT), self.program_keyboard())
        if name == "program" and not args:
            return self._turn(UserInput("/program"), lambda unit, _turn: unit.send(prompt))

        if name == "start":

            def offer_program(unit: UpdateUnit, turn: ServiceTurn) -> None:
                if turn.dialog is None:
                    unit.send(prompt)

            return self._turn(UserInput("/start"), offer_program)
        # help, cancel, program <id>: the service's own commands
        return self._turn(UserInput(" ".join([f"/{name}", *args])))

    def _plan_callback(self, query: CallbackQuery) -> Work:
        data = query.data or ""
        message = query.message
        message_id = message.message_id if isinstance(message, Message) else None
        if not data:
            return lambda _unit: None
        if data.startswith("fb:"):
            return self._feedback(data, message if isinstance(message, Message) else None)
        if data.startswith("cat:"):
            return self._browse(data.removeprefix("cat:"), message_id)
        if data.startswith("/"):
            return self._turn(UserInput(data))
        return self._turn(UserInput(choice=data))

    @staticmethod
    async def _answer_query(query: CallbackQuery, text: str | None = None) -> None:
        try:
            await query.answer(text)
        except TelegramError as exc:  # too old, or already answered
            log.info("callback query not answered: %s", exc)

    def _feedback(self, data: str, message: Message | None) -> Work:
        _, helpful, entry_id = [*data.split(":", 2), "", ""][:3]
        flow = entry_id.removeprefix("flow:") if entry_id.startswith("flow:") else None
        known = entry_id in self.kb.by_id or (flow is not None and flow in self.service.flows)
        if helpful not in ("0", "1") or not known:  # only what this bot offered is stored
            return lambda _unit: None

        def work(unit: UpdateUnit) -> str:
            unit.add_feedback(entry_id, helpful == "1")
            if helpful == "0":  # 👎: a person may help where the answer did not
                offer = ReplyChoice(OFFER_LABEL, "hand:not_helpful")
                unit.send(_message(escape(NOT_HELPFUL_OFFER), keyboard([offer])))
            markup = message.reply_markup if message is not None else None
            if message is not None and markup is not None:
                rows = [
                    list(row)
                    for row in markup.inline_keyboard
                    if not any(str(b.callback_data or "").startswith("fb:") for b in row)
                ]
                item: dict[str, Any] = {"method": "editMessageReplyMarkup", "message_id": message.message_id}
                if rows:
                    item["reply_markup"] = InlineKeyboardMarkup(rows).to_dict()
                unit.send(item)
            return FEEDBACK_THANKS

        return work

    def _browse(self, category_id: str, message_id: int | None) -> Work:
        category = self.kb.categories.get(category_id)
        if category is None:
            text, markup = FAQ_PROMPT, self.category_keyboard()
        else:
            text = f"「{category.name}」のよくある質問です。お選びください。"
            markup = self.entries_keyboard(category.id)
        item = _message(escape(text), markup)
        if message_id is not None:
            item.update(method="editMessageText", message_id=message_id)
        return _notice_item(item)

    def category_keyboard(self) -> InlineKeyboardMarkup:
        used = {e.category for e in self.kb.entries}
        rows = []
        for category in self.kb.categories.values():
            if category.id in used and (button := _button(category.name, f"cat:{category.id}")) is not None:
                rows.append([button])
        return InlineKeyboardMarkup(rows)

    def _entry_label(self, entry_id: str) -> str:
        entry = self.kb.by_id[entry_id]
        program = self.kb.programs.get(entry.program)
        tag = ""
        if program is not None and entry.program != "common":
            tag = program.short.replace("IT導入補助金", "").strip() + "｜"
        return tag + entry.question

    def entries_keyboard(self, category_id: str) -> InlineKeyboardMarkup:
        rows = []
        for entry in self.kb.entries:
            if entry.category == category_id and (
                button := _button(self._entry_label(entry.id), f"faq:{entry.id}")
            ):
                rows.append([button])
        back = _button(FAQ_BACK, "cat:")
        if back is not None:
            rows.append([back])
        return InlineKeyboardMarkup(rows)

    def program_keyboard(self) -> InlineKeyboardMarkup:
        rows = []
        for pid, program in self.kb.programs.items():
            if pid != "common" and (button := _button(program.short, f"/program {pid}")):
                rows.append([button])
        if (button := _button("指定しない", "/program any")) is not None:
            rows.append([button])
        return InlineKeyboardMarkup(rows)

    def _contacts(self, program: str | None) -> str:
        program = program if program in self.kb.programs else None
        now = self._clock()
        blocks = [CONTACT_HEAD + f"（{now:%m月%d日 %H:%M} 現在）"]
        for contact in general_contacts(self.kb, program):
            prog = self.kb.programs.get(contact.program)
            head = f"（{prog.short}について）\n" if prog is not None and program is None else ""
            status = line_status(contact, now)
            blocks.append(f"{head}{contact_block(contact)}\n現在：{status.text}")
        return "\n\n".join(blocks)


def _notice_item(item: dict[str, Any]) -> Work:
    def work(unit: UpdateUnit) -> None:
        unit.send(item)

    return work


def _notice(text: str, markup: InlineKeyboardMarkup | None = None) -> Work:
    """Work that only sends `text` (no conversation read or written)."""
    return _notice_item(_message(escape(text), markup))


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# -- building and running ------------------------------------------------------------------


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
    clock: Callable[[], datetime] | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """A PTB Application for its bot (requests, rate limiter, defaults and lifecycle) with the
    adapter in `bot_data["adapter"]`.  Updates do not go through PTB's handlers: the webhook and
    `poll` give them to `TelegramAdapter.process`, which reports whether they were made durable.
    `polling` only selects the request used for getUpdates."""
    token = settings.require_token()
    _durations_as_timedelta()
    adapter = TelegramAdapter(service, clock, settings.telegram_send_rate)
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
