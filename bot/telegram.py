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

Order and duplicates: `ChatOrderedProcessor` handles the updates of one chat one
after the other while different chats run concurrently; each service turn runs under
the store's conversation lock (PostgreSQL advisory lock, shared by every worker); every
update id is claimed in the store first, so an update delivered twice — to one process
or to two — is answered once (at most once: a turn that fails is not retried; the user
is told to send again).
Bot API calls go through `RetryingRateLimiter`: AIORateLimiter (flood limits and
retries on 429) plus retries with exponential backoff on network errors and 5xx.
An error while handling an update is logged (secrets redacted by
bot.settings.configure_logging) and the user is told something went wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.settings import Settings
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
LOCK_TIMEOUT = 30.0  # seconds a worker waits for another worker's turn in the same chat
SERVICE_THREADS = 6  # threads running service turns and store calls (see TelegramAdapter)

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "はじめに（できること・制度の選択）"),
    ("help", "使い方"),
    ("faq", "よくある質問をカテゴリから探す"),
    ("calc", "労働生産性・伸び率を計算する"),
    ("jitai", "辞退・返還にあたるか確認する"),
    ("program", "制度を指定・変更する"),
    ("contact", "問い合わせ先と、いま受付中か"),
    ("cancel", "案内を中止する"),
)
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


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Updates of one chat one at a time, in arrival order; different chats concurrently.

    (Across processes the conversation lock taken around each service turn keeps one chat's
    turns apart; see `TelegramAdapter.handle_sync`.)
    """

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = _chat_key(update)
        if key is None:
            await coroutine
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._locks[key]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class RetryingRateLimiter(AIORateLimiter):
    """AIORateLimiter (flood limits, up to `max_retries` retries after a 429) plus retries with
    exponential backoff on network errors and server errors (5xx), for every Bot API call
    except getUpdates (the updater retries that one itself)."""

    def __init__(self, *, max_retries: int = 3, network_retries: int = 3, backoff: float = 0.5) -> None:
        super().__init__(max_retries=max_retries)
        self.network_retries = network_retries
        self.backoff = backoff

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
        for attempt in range(self.network_retries + 1):
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
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


Context = ContextTypes.DEFAULT_TYPE


class TelegramAdapter:
    """Handlers that turn updates into service turns and turns into messages."""

    def __init__(self, service: ConversationService, clock: Callable[[], datetime] | None = None) -> None:
        self.service = service
        self.kb = service.kb
        self._clock = clock or (lambda: datetime.now(TOKYO))
        # The store's blocking calls run here, off the event loop.  A bounded pool: each thread
        # holds at most two database connections (a conversation lock and a session), so the
        # store's connection pool (5 + 10 overflow) can never run dry and wait on itself.
        self._executor = ThreadPoolExecutor(SERVICE_THREADS, thread_name_prefix="kounen-service")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _blocking(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def handle_sync(self, chat: str, user_input: UserInput) -> ServiceTurn:
        """One service turn under the conversation lock (PostgreSQL: shared by every worker, so
        two workers never interleave one chat's turns; SQLite: no lock needed)."""
        lock = self.service.store.conversation_lock(CHANNEL, chat)
        lock.acquire(LOCK_TIMEOUT)
        try:
            return self.service.handle(CHANNEL, chat, user_input)
        finally:
            lock.release()

    # -- set-up ---------------------------------------------------------------------

    def install(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        application.add_handler(TypeHandler(Update, self.on_any_update), group=-1)
        for name, _description in COMMANDS:
            application.add_handler(CommandHandler(name, self.on_command))
        application.add_handler(CallbackQueryHandler(self.on_callback))
        application.add_handler(MessageHandler(filters.UpdateType.EDITED, self.on_edited))
        application.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT, self.on_text))
        application.add_handler(
            MessageHandler(filters.UpdateType.MESSAGE & filters.ATTACHMENT, self.on_attachment)
        )
        application.add_error_handler(self.on_error)

    @staticmethod
    def bot_commands() -> list[BotCommand]:
        return [BotCommand(name, description) for name, description in COMMANDS]

    # -- the service, off the event loop --------------------------------------------

    async def _turn(self, chat: str, user_input: UserInput) -> ServiceTurn:
        return await self._blocking(self.handle_sync, chat, user_input)

    async def _send(self, context: Context, chat_id: int, messages: Iterable[Outgoing]) -> list[Message]:
        sent = []
        for message in messages:
            sent.append(await context.bot.send_message(chat_id, message.html, reply_markup=message.markup))
        return sent

    async def _converse(self, update: Update, context: Context, user_input: UserInput) -> ServiceTurn | None:
        chat = update.effective_chat
        if chat is None:
            return None
        turn = await self._turn(str(chat.id), user_input)
        await self._send(context, chat.id, render_turn(turn))
        return turn

    # -- handlers -------------------------------------------------------------------

    async def on_any_update(self, update: object, context: Context) -> None:
        """Group -1: an update already claimed (by this or another worker) goes no further."""
        if not isinstance(update, Update):
            return
        source = f"{CHANNEL}:{context.bot.id}"
        fresh = await self._blocking(self.service.store.claim_update, source, update.update_id)
        if not fresh:
            log.info("update %d seen before: dropped", update.update_id)
            raise ApplicationHandlerStop

    async def on_command(self, update: Update, context: Context) -> None:
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None or not message.text:
            return
        name = message.text.split()[0][1:].split("@", 1)[0].lower()
        args = context.args or []
        if name in FLOW_COMMANDS:
            await self._converse(update, context, UserInput(choice=FLOW_COMMANDS[name]))
        elif name == "faq":
            if args:  # /faq 質問文: answered like typed text
                await self._converse(update, context, UserInput(" ".join(args)))
            else:
                await context.bot.send_message(
                    chat.id, escape(FAQ_PROMPT), reply_markup=self.category_keyboard()
                )
        elif name == "contact":
            await self._send(
                context,
                chat.id,
                [Outgoing(escape(text)) for text in split_text(await self._contacts(chat.id))],
            )
        elif name == "program" and not args:
            await self._converse(update, context, UserInput("/program"))
            await context.bot.send_message(
                chat.id, escape(PROGRAM_PROMPT), reply_markup=self.program_keyboard()
            )
        elif name == "start":
            turn = await self._converse(update, context, UserInput("/start"))
            if turn is not None and turn.dialog is None:
                await context.bot.send_message(
                    chat.id, escape(PROGRAM_PROMPT), reply_markup=self.program_keyboard()
                )
        else:  # help, cancel, program <id>: the service's own commands
            await self._converse(update, context, UserInput(" ".join([f"/{name}", *args])))

    async def on_text(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None or message.text is None:
            return
        text = message.text
        first, _, rest = text.strip().partition(" ")
        if first.startswith("/") and "@" in first:
            command, _, addressee = first.partition("@")
            if context.bot.username and addressee.lower() != context.bot.username.lower():
                return  # a command for another bot in a group
            text = f"{command} {rest}".strip()  # /reset@this_bot → /reset
        await self._converse(update, context, UserInput(text))

    async def on_callback(self, update: Update, context: Context) -> None:
        query = update.callback_query
        chat = update.effective_chat
        if query is None:
            return
        data = query.data or ""
        if chat is None or not data:
            await self._answer_query(query)
            return
        if data.startswith("fb:"):
            await self._feedback(update, context, data)
            return
        await self._answer_query(query)  # stops the client's spinner before the work
        if data.startswith("cat:"):
            await self._browse(update, context, data.removeprefix("cat:"))
        elif data.startswith("/"):
            await self._converse(update, context, UserInput(data))
        else:
            await self._converse(update, context, UserInput(choice=data))

    async def on_edited(self, update: Update, context: Context) -> None:
        chat = update.effective_chat
        if chat is not None:
            await context.bot.send_message(chat.id, escape(EDITED))

    async def on_attachment(self, update: Update, context: Context) -> None:
        chat = update.effective_chat
        if chat is not None:
            await context.bot.send_message(chat.id, escape(UNSUPPORTED))

    async def on_error(self, update: object, context: Context) -> None:
        error = context.error
        update_id = update.update_id if isinstance(update, Update) else None
        log.error(
            "error while handling update %s: %s: %s",
            update_id,
            type(error).__name__,
            error,
            exc_info=error if not isinstance(error, TelegramError) else None,
        )
        if isinstance(update, Update) and update.effective_chat is not None:
            if update.callback_query is not None:
                await self._answer_query(update.callback_query)
            try:
                await context.bot.send_message(update.effective_chat.id, escape(ERROR_TEXT))
            except TelegramError as exc:
                log.warning("could not tell chat %s about the error: %s", update.effective_chat.id, exc)
        raise ApplicationHandlerStop  # no further handlers for this update

    # -- callbacks ------------------------------------------------------------------

    @staticmethod
    async def _answer_query(query: Any, text: str | None = None) -> None:
        try:
            await query.answer(text)
        except TelegramError as exc:  # too old, or already answered
            log.info("callback query not answered: %s", exc)

    async def _feedback(self, update: Update, context: Context, data: str) -> None:
        query = update.callback_query
        chat = update.effective_chat
        assert query is not None and chat is not None
        _, helpful, entry_id = [*data.split(":", 2), "", ""][:3]
        flow = entry_id.removeprefix("flow:") if entry_id.startswith("flow:") else None
        known = entry_id in self.kb.by_id or (flow is not None and flow in self.service.flows)
        if helpful not in ("0", "1") or not known:  # only what this bot offered is stored
            await self._answer_query(query)
            return
        await self._blocking(self.service.feedback, CHANNEL, str(chat.id), entry_id, helpful == "1")
        await self._answer_query(query, FEEDBACK_THANKS)
        message = query.message
        markup = message.reply_markup if isinstance(message, Message) else None
        if isinstance(message, Message) and markup is not None:
            rows = [
                list(row)
                for row in markup.inline_keyboard
                if not any(str(b.callback_data or "").startswith("fb:") for b in row)
            ]
            try:
                await message.edit_reply_markup(InlineKeyboardMarkup(rows) if rows else None)
            except TelegramError as exc:
                log.info("could not remove the feedback buttons: %s", exc)

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

    async def _browse(self, update: Update, context: Context, category_id: str) -> None:
        chat = update.effective_chat
        query = update.callback_query
        assert chat is not None and query is not None
        category = self.kb.categories.get(category_id)
        if category is None:
            text, markup = FAQ_PROMPT, self.category_keyboard()
        else:
            text, markup = (
                f"「{category.name}」のよくある質問です。お選びください。",
                self.entries_keyboard(category.id),
            )
        message = query.message
        if isinstance(message, Message):
            try:
                await message.edit_text(escape(text), reply_markup=markup)
                return
            except BadRequest as exc:
                if "not modified" in exc.message:
                    return  # already showing it
                log.info("browse message not edited (%s): sending a new one", exc)
        await context.bot.send_message(chat.id, escape(text), reply_markup=markup)

    async def _contacts(self, chat_id: int) -> str:
        record = await self._blocking(self.service.store.load, CHANNEL, str(chat_id))
        program = record.program if record.program in self.kb.programs else None
        now = self._clock()
        blocks = [CONTACT_HEAD + f"（{now:%m月%d日 %H:%M} 現在）"]
        for contact in general_contacts(self.kb, program):
            prog = self.kb.programs.get(contact.program)
            head = f"（{prog.short}について）\n" if prog is not None and program is None else ""
            status = line_status(contact, now)
            blocks.append(f"{head}{contact_block(contact)}\n現在：{status.text}")
        return "\n\n".join(blocks)


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
    concurrency: int = 64,
    clock: Callable[[], datetime] | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """A PTB Application wired to the service (no updater in webhook mode)."""
    token = settings.require_token()
    _durations_as_timedelta()
    adapter = TelegramAdapter(service, clock)
    processor = ChatOrderedProcessor(concurrency)
    builder = (
        Application.builder()
        .token(token)
        .base_url(settings.telegram_api_base_url)
        .base_file_url(file_base_url(settings.telegram_api_base_url))
        .request(HTTPXRequest(connection_pool_size=32, connect_timeout=5.0, read_timeout=15.0))
        .get_updates_request(HTTPXRequest(connect_timeout=5.0, read_timeout=15.0))
        .rate_limiter(RetryingRateLimiter(max_retries=3))
        .concurrent_updates(processor)
        .defaults(
            Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True))
        )
    )
    if not polling:
        builder = builder.updater(None)
    application = builder.build()
    adapter.install(application)
    application.bot_data["adapter"] = adapter
    return application


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
    """Long polling until `stop` is set (deleteWebhook first, done by PTB's bootstrap)."""
    await start_application(application, settings)
    updater = application.updater
    assert updater is not None, "build the application with polling=True"
    try:
        try:
            await updater.start_polling(
                timeout=timedelta(seconds=poll_timeout),
                allowed_updates=list(ALLOWED_UPDATES),
                bootstrap_retries=3,
                error_callback=_polling_error,
            )
        except TelegramError as exc:
            raise BotStartError(describe_start_error(exc, settings)) from None
        await application.start()
        if on_ready is not None:
            on_ready()
        await stop.wait()
    finally:
        if updater.running:
            await updater.stop()
        if application.running:
            await application.stop()
        await _quiet_shutdown(application)


def _polling_error(exc: TelegramError) -> None:
    log.warning("polling failed, retrying with backoff: %s: %s", type(exc).__name__, exc)


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
