"""The adapter: each update becomes one committed unit of effects, then its messages are sent.

See the package's docstring for the delivery guarantees (exactly-once effects over
at-least-once delivery, the outbox, the shared send budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from telegram import BotCommand, CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.handoff import OFFER_LABEL
from bot.store import Handled, StoreError, UpdateUnit
from bot.telegram.render import Outgoing, _chat_key, escape, keyboard, render_turn
from bot.telegram.retries import ChatOrder
from dialogs.types import ReplyChoice, UserInput

if TYPE_CHECKING:
    from bot.service import ConversationService, ServiceTurn

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "telegram"
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
FEEDBACK_THANKS = "ご評価ありがとうございます。今後の改善に使わせていただきます。"
NOT_HELPFUL_OFFER = "お役に立てず申し訳ありません。担当者に相談することもできます。"


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
        send_rate: float = 0.0,
    ) -> None:
        self.service = service
        # One send budget per bot, kept in PostgreSQL and shared by every worker and host; on
        # SQLite (one process) the rate limiter of the process is the budget.
        self.shared_budget = send_rate > 0 and service.store.engine.dialect.name == "postgresql"
        self._budget = (send_rate, max(1.0, send_rate)) if self.shared_budget else None
        self.kb = service.kb
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
            return self._turn(UserInput(choice="go:faq"))  # the service's よくある質問
        if name == "contact":
            return self._turn(UserInput(choice="go:contacts"))  # the service's 問い合わせ先
        # help, cancel, program <id>: the service's own commands
        return self._turn(UserInput(" ".join([f"/{name}", *args])))

    def _plan_callback(self, query: CallbackQuery) -> Work:
        data = query.data or ""
        message = query.message
        if not data:
            return lambda _unit: None
        if data.startswith("fb:"):
            return self._feedback(data, message if isinstance(message, Message) else None)
        if data.startswith("cat:"):
            # A category button sent before the lists came from the service: the same list now.
            category = data.removeprefix("cat:")
            return self._turn(
                UserInput(choice=f"go:faq.{category}" if category in self.kb.categories else "go:faq")
            )
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
