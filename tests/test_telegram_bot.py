"""The Telegram bot in polling mode: the real PTB Application against the fake Bot API server.

Each test starts the fake server (tests/fake_telegram.py) on 127.0.0.1 and the bot in a
thread of its own, exactly as `kounen bot` runs it (`bot.telegram.poll`), over the real
conversation service, flows and knowledge base and a SQLite store in tmp_path.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fake_telegram import FakeTelegram, SentMessage
from sqlalchemy import text

from bot.service import ConversationService, ServiceTurn
from bot.settings import Settings, load_settings, redact_in_logs
from bot.store import Store, UpdateUnit
from bot.telegram import (
    COMMANDS,
    EDITED,
    ERROR_TEXT,
    FEEDBACK_THANKS,
    UNSUPPORTED,
    build_application,
    poll,
)
from dialogs.types import Reply, ReplyChoice, UserInput
from faq import KnowledgeBase, Policy
from rules.contact_hours import TOKYO

GBIZ_PHONE = "06-6225-7877"
IT2020_PHONE = "0570-002-551"
CHAT = 501


class BotThread:
    """`bot.telegram.poll` in a thread with its own event loop, as `kounen bot` runs it."""

    def __init__(self, settings: Settings, service: ConversationService) -> None:
        self.settings, self.service = settings, service
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            application = build_application(self.settings, self.service, polling=True)
            await poll(application, self.settings, self._stop, poll_timeout=2, on_ready=self._ready.set)

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def start(self) -> BotThread:
        self._thread.start()
        assert self._ready.wait(20), "the bot did not start"
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=20)
        assert not self._thread.is_alive(), "the bot did not stop"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.db'}"


def bot_settings(fake: FakeTelegram, db_url: str) -> Settings:
    return load_settings(telegram_token=fake.token, telegram_api_base_url=fake.base_url, database_url=db_url)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened


@pytest.fixture
def service(kb: KnowledgeBase, policy: Policy, store: Store, clock: Clock) -> ConversationService:
    return ConversationService(kb, policy, store, now=clock)  # whether a line is open: by this clock


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 10, 10, 0, tzinfo=TOKYO)  # a Tuesday morning

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bot(fake: FakeTelegram, db_url: str, service: ConversationService) -> Iterator[BotThread]:
    runner = BotThread(bot_settings(fake, db_url), service).start()
    try:
        yield runner
    finally:
        runner.stop()


class Chat:
    """One user's side of the conversation: send, press, and wait for the bot's messages."""

    def __init__(self, fake: FakeTelegram, chat_id: int = CHAT) -> None:
        self.fake, self.chat_id = fake, chat_id
        self.seen = len(fake.chat_messages(chat_id))

    def _new(self, count: int) -> list[SentMessage]:
        messages = self.fake.wait_messages(self.chat_id, self.seen + count)
        new = messages[self.seen :]
        self.seen = len(messages)
        return new

    def say(self, text: str, count: int = 1) -> list[SentMessage]:
        """Send `text`; wait for `count` new messages and a quiet moment; return all new ones."""
        self.fake.message(self.chat_id, text)
        return self._settle(count)

    def press(self, message: SentMessage, data: str, count: int = 1) -> list[SentMessage]:
        self.fake.press(self.chat_id, message, data)
        return self._settle(count)

    def _settle(self, count: int) -> list[SentMessage]:
        new = self._new(count)
        # The service's replies to one update come in one go: wait for the last of them.
        time.sleep(0.15)
        more = self.fake.chat_messages(self.chat_id)[self.seen :]
        self.seen += len(more)
        return new + more

    def sync(self) -> None:
        """Wait until every update sent so far has been handled (updates of a chat are in order)."""
        marker = self.fake.message(self.chat_id, "/help")
        self.fake.wait_for(
            lambda: any("コマンド" in m.text for m in self.fake.chat_messages(self.chat_id)[self.seen :]),
            what=f"the reply to update {marker}",
        )
        self.seen = len(self.fake.chat_messages(self.chat_id))


def texts(messages: list[SentMessage]) -> str:
    return "\n".join(m.text for m in messages)


def last_with_buttons(messages: list[SentMessage]) -> SentMessage:
    return next(m for m in reversed(messages) if m.buttons)


# -- start-up ---------------------------------------------------------------------------


def test_start_up_registers_japanese_commands_and_drops_any_webhook(
    fake: FakeTelegram, bot: BotThread
) -> None:
    assert fake.commands is not None
    assert [c["command"] for c in fake.commands] == [name for name, _ in COMMANDS]
    assert {"start", "help", "faq", "calc", "jitai", "program", "contact", "human", "cancel"} == {
        c["command"] for c in fake.commands
    }
    assert all(any("\u3040" <= ch <= "\u9fff" for ch in c["description"]) for c in fake.commands)
    assert fake.method_calls("getMe") and fake.method_calls("deleteWebhook")


def test_start_greets_and_offers_the_program(fake: FakeTelegram, bot: BotThread, store: Store) -> None:
    chat = Chat(fake)
    messages = chat.say("/start")
    assert "kounen" in messages[0].text and "/program" in messages[0].text
    assert [label for label, _ in messages[0].buttons] == [
        "よくある質問",
        "計算する",
        "問い合わせ先",
        "最初から",
    ]
    choice = last_with_buttons(chat.say("/program"))
    assert choice.buttons[:2] == [("2020", "prog:it2020"), ("2023複数社連携", "prog:it2023-multi")]
    reply = chat.press(choice, "prog:it2020")
    assert "2020" in reply[0].text and "ご質問を入力してください" in reply[0].text
    assert store.load("telegram", str(CHAT)).program == "it2020"
    # The program now narrows questions: the 2020 line only.
    answer = chat.say("問い合わせの電話番号を教えて")
    assert IT2020_PHONE in texts(answer)


# -- FAQ ---------------------------------------------------------------------------------


def test_a_question_is_answered_with_feedback_buttons_stored_as_feedback(
    fake: FakeTelegram, bot: BotThread, store: Store
) -> None:
    chat = Chat(fake)
    [answer] = chat.say("申請マイページのIDがわからない")
    assert GBIZ_PHONE in answer.text and answer.parse_mode == "HTML"
    up = answer.data_for("👍")
    assert up.startswith("fb:1:") and answer.data_for("👎") == "fb:0:" + up.removeprefix("fb:1:")
    fake.press(CHAT, answer, up)
    fake.wait_for(lambda: store.recent_feedback(), what="the feedback row")
    feedback = store.recent_feedback()
    assert [(f.entry_id, f.helpful, f.channel) for f in feedback] == [
        (up.removeprefix("fb:1:"), True, "telegram")
    ]
    fake.wait_for(lambda: any(a.get("text") == FEEDBACK_THANKS for a in fake.answers), what="the thanks")
    # The buttons are gone, so the same answer is not rated twice.
    fake.wait_for(lambda: not any(d.startswith("fb:") for _, d in fake.chat_messages(CHAT)[0].buttons))


def test_faq_browsing_by_category_lists_the_services_questions_and_answers_every_press(
    fake: FakeTelegram, bot: BotThread, kb: KnowledgeBase
) -> None:
    chat = Chat(fake)
    [menu] = chat.say("/faq")
    assert menu.buttons and all(d.startswith("go:faq.") for _, d in menu.buttons)
    assert ("ログイン・ID", "go:faq.login") in menu.buttons
    [listed] = chat.press(menu, "go:faq.login")
    assert "ログイン・ID" in listed.text
    entries = [d for _, d in listed.buttons if d.startswith("faq:")]
    assert entries and all(kb.by_id[d.removeprefix("faq:")].category == "login" for d in entries)
    assert all(len(d.encode()) <= 64 and d.isascii() for _, d in listed.buttons)
    answer = chat.press(listed, entries[0])
    assert answer[0].text.startswith("【") and answer[0].data_for("👍")
    # A category button sent before (cat:…) still opens the same list.
    [again] = chat.press(menu, "cat:login")
    assert [d for _, d in again.buttons if d.startswith("faq:")] == entries
    fake.wait_for(lambda: len(fake.answers) == 3, what="three answered callback queries")


def test_contact_shows_numbers_and_whether_the_line_is_open(
    fake: FakeTelegram, bot: BotThread, clock: Clock
) -> None:
    chat = Chat(fake)
    [open_now] = chat.say("/contact")
    assert IT2020_PHONE in open_now.text and "受付中" in open_now.text
    clock.now = datetime(2025, 6, 8, 12, 0, tzinfo=TOKYO)  # a Sunday
    [closed] = chat.say("/contact")
    assert "時間外・次は月曜" in closed.text


# -- the two dialogs ----------------------------------------------------------------------


def test_productivity_dialog_with_buttons_and_typed_input_to_its_summary(
    fake: FakeTelegram, bot: BotThread, store: Store
) -> None:
    chat = Chat(fake)
    first = chat.say("/calc", count=2)
    assert "営業利益" in first[-1].text and ("やめる", "cmd:cancel") in first[-1].buttons
    labor = chat.say("3000万")
    breakdown = chat.press(labor[-1], labor[-1].data_for("内訳"))
    assert "給与手当" in breakdown[-1].text
    for value in ("1500万", "300万", "200万", "500万", "10"):
        chat.say(value)
    has_baseline = chat.say("1,800時間")
    baseline = chat.press(has_baseline[-1], "yes")
    assert "実績値" in baseline[-1].text
    year = chat.say("4,000")
    group = chat.press(year[-1], "1")
    summary = chat.press(group[-1], "no", count=2)
    assert summary[0].text.startswith("伸び率は年率") and "3,055.56" in summary[0].text
    assert summary[0].data_for("👍") == "fb:1:flow:productivity"
    assert any(d.startswith("faq:") for m in summary for _, d in m.buttons)
    stored = store.load("telegram", str(CHAT)).state
    assert stored is not None and stored["dialog"] is None  # only the finished flow, for corrections
    assert len(fake.answers) == 4  # every press answered


def test_withdrawal_dialog_with_buttons_and_typed_dates_to_its_summary(
    fake: FakeTelegram, bot: BotThread
) -> None:
    chat = Chat(fake)
    first = chat.say("/jitai")
    program = last_with_buttons(first)
    event = chat.press(program, program.buttons[0][1])
    delivered = chat.press(event[-1], event[-1].buttons[0][1])
    chat.say("2021/4/1、2021/6/1")
    chat.say("2022/3/1")
    summary = chat.say("2021/7/31", count=2)
    assert "辞退" in summary[0].text and summary[0].data_for("👎") == "fb:0:flow:withdrawal"
    assert "ITツールの納品日" in delivered[-1].text


# -- restarts, duplicates, order ------------------------------------------------------------


def test_a_restarted_bot_resumes_the_dialog_at_the_same_step(
    fake: FakeTelegram, db_url: str, kb: KnowledgeBase, policy: Policy
) -> None:
    settings = bot_settings(fake, db_url)
    with Store.open(db_url) as first_store:
        first = BotThread(settings, ConversationService(kb, policy, first_store)).start()
        chat = Chat(fake)
        chat.say("/calc", count=2)
        asked = chat.say("3000万")
        assert "人件費" in asked[-1].text
        first.stop()
    # A new process: new store, new service, new Application; the same database and chat.
    with Store.open(db_url) as second_store:
        assert second_store.load("telegram", str(CHAT)).state["dialog"]["step"] == "labor_cost"
        second = BotThread(settings, ConversationService(kb, policy, second_store)).start()
        try:
            chat = Chat(fake)
            resumed = chat.say("/start", count=2)
            assert any("人件費" in m.text for m in resumed)  # /start repeats the pending question
            nxt = chat.say("2000万")
            assert "減価償却費" in nxt[-1].text
            assert second_store.load("telegram", str(CHAT)).state["dialog"]["step"] == "depreciation"
        finally:
            second.stop()


def test_an_update_delivered_twice_is_answered_once(fake: FakeTelegram, bot: BotThread, store: Store) -> None:
    chat = Chat(fake)
    update = fake.make_message(CHAT, "申請マイページのIDがわからない")
    fake.queue(update)
    fake.queue(dict(update))  # the same update_id again, e.g. after a crash before confirming
    chat.sync()
    answers = [m for m in fake.chat_messages(CHAT) if GBIZ_PHONE in m.text]
    assert len(answers) == 1
    press = fake.make_press(CHAT, answers[0], answers[0].data_for("👎"))
    fake.queue(press)
    fake.queue(dict(press))
    chat.sync()
    assert [f.helpful for f in store.recent_feedback()] == [False]
    assert len(fake.answers) == 1


def test_forged_or_stale_button_data_is_answered_and_ignored(
    fake: FakeTelegram, bot: BotThread, store: Store
) -> None:
    chat = Chat(fake)
    [menu] = chat.say("/faq")
    for data in ("fb:1:no-such-entry", "fb:1:productivity", "fb:9:flow:productivity"):
        fake.press(CHAT, menu, data)
    [relisted] = chat.press(menu, "cat:nope")  # an unknown category: the category list again
    assert relisted.buttons == menu.buttons
    stale = chat.press(menu, "faq:no-such-entry")
    assert "使えません" in stale[0].text  # the service's answer to a stale choice
    fake.wait_for(lambda: len(fake.answers) == 5, what="five answered callback queries")
    assert store.recent_feedback() == []
    [reset] = chat.say(f"/reset@{fake.username}")  # a command addressed to this bot by name
    assert "最初から" in reset.text
    fake.message(CHAT, "/reset@some_other_bot")  # addressed to another bot in a group: ignored
    chat.sync()
    assert not any("コマンドはありません" in m.text for m in fake.chat_messages(CHAT))


def test_updates_of_one_chat_in_order_and_of_different_chats_concurrently(
    fake: FakeTelegram, db_url: str, kb: KnowledgeBase, policy: Policy
) -> None:
    class Slow(ConversationService):
        def handle_in(
            self, unit: UpdateUnit, channel: str, user_id: str, user_input: UserInput
        ) -> ServiceTurn:
            if user_input.text.startswith("slow"):
                time.sleep(1.0)
            return ServiceTurn([Reply(f"echo {user_input.text}")], None, None, None)

    with Store.open(db_url) as store:
        # Queued before polling starts, so the three come in one getUpdates batch: polling takes
        # the next batch only once this one is committed (README, "Delivery"), so a message
        # arriving in a later batch would wait for "slow 1" whatever its chat.
        fake.message(1, "slow 1")
        fake.message(1, "fast 1")  # same chat: waits for "slow 1"
        fake.message(2, "fast 2")  # another chat: does not wait
        runner = BotThread(bot_settings(fake, db_url), Slow(kb, policy, store)).start()
        try:
            fake.wait_messages(1, 2)
            order = [m.text for m in fake.messages]
            assert order.index("echo fast 2") < order.index("echo slow 1") < order.index("echo fast 1")
        finally:
            runner.stop()


# -- rendering ------------------------------------------------------------------------------


def test_markup_typed_by_the_user_is_shown_literally(fake: FakeTelegram, bot: BotThread) -> None:
    chat = Chat(fake)
    chat.say("/calc", count=2)
    [complaint, *_] = chat.say("<b>たくさん</b> & co")
    assert "「<b>たくさん</b> & co」" in complaint.text  # what the user sees
    assert "&lt;b&gt;たくさん&lt;/b&gt; &amp; co" in complaint.html  # what was sent


def test_a_long_reply_is_split_at_line_ends_with_the_buttons_on_the_last_part(
    fake: FakeTelegram, db_url: str, kb: KnowledgeBase, policy: Policy
) -> None:
    lines = [f"{i:04d} 行目：<説明> & 補足" + "あ" * 60 for i in range(200)]

    class Long(ConversationService):
        def handle_in(
            self, unit: UpdateUnit, channel: str, user_id: str, user_input: UserInput
        ) -> ServiceTurn:
            choice = ReplyChoice("次へ", "flow:productivity")
            return ServiceTurn([Reply("\n".join(lines), (choice,))], None, None, None)

    with Store.open(db_url) as store:
        runner = BotThread(bot_settings(fake, db_url), Long(kb, policy, store)).start()
        try:
            fake.message(CHAT, "長い説明")
            time.sleep(0.2)
            parts = fake.wait_messages(CHAT, 3)
            fake.wait_for(lambda: any(m.buttons for m in fake.chat_messages(CHAT)))
            parts = fake.chat_messages(CHAT)
        finally:
            runner.stop()
    assert len(parts) >= 4 and all(len(p.text) <= 4096 for p in parts)
    assert "\n".join(p.text for p in parts).splitlines() == lines  # cut only between lines
    assert [bool(p.buttons) for p in parts] == [False] * (len(parts) - 1) + [True]


def test_stickers_photos_voice_files_and_edits_get_a_polite_reply(fake: FakeTelegram, bot: BotThread) -> None:
    for send in (fake.sticker, fake.photo, fake.voice, fake.document):
        send(CHAT)
    fake.edited(CHAT, "訂正です")
    messages = fake.wait_messages(CHAT, 5)
    assert [m.text for m in messages] == [UNSUPPORTED] * 4 + [EDITED]


# -- failures -------------------------------------------------------------------------------


def test_429_and_server_errors_are_retried(fake: FakeTelegram, bot: BotThread) -> None:
    fake.fail_next("sendMessage", 429, retry_after=1)
    fake.fail_next("sendMessage", 500)
    started = time.monotonic()
    fake.message(CHAT, "申請マイページのIDがわからない")
    [answer] = fake.wait_messages(CHAT, 1)
    assert GBIZ_PHONE in answer.text
    assert time.monotonic() - started >= 1.0  # waited retry_after
    assert len(fake.method_calls("sendMessage")) == 3  # 429, 500, then delivered once


def test_a_send_the_bot_api_accepted_and_then_failed_is_shown_twice_and_nothing_else_doubles(
    fake: FakeTelegram, bot: BotThread, store: Store
) -> None:
    """The at-least-once that remains (README, "Delivery"): the retry of an accepted send."""
    fake.accept_then_fail("sendMessage", 502)
    fake.message(CHAT, "申請マイページのIDがわからない")
    first, second = fake.wait_messages(CHAT, 2)
    assert first.text == second.text and GBIZ_PHONE in first.text
    Chat(fake).sync()
    assert len([m for m in fake.chat_messages(CHAT) if GBIZ_PHONE in m.text]) == 2
    assert len(store.recent_queries()) == 2  # the question and the /help of sync: logged once each


def test_on_postgresql_the_send_budget_paces_the_replies_and_waiting_users_see_typing(
    fake: FakeTelegram, pg_url: str, kb: KnowledgeBase, policy: Policy
) -> None:
    settings = load_settings(
        telegram_token=fake.token,
        telegram_api_base_url=fake.base_url,
        database_url=pg_url,
        telegram_send_rate=4,
    )
    with Store.open(pg_url) as store:
        runner = BotThread(settings, ConversationService(kb, policy, store)).start()
        try:
            for chat in range(801, 809):
                fake.message(chat, "申請マイページのIDがわからない")
            started = time.monotonic()
            for chat in range(801, 809):
                fake.wait_messages(chat, 1)
            took = time.monotonic() - started
        finally:
            runner.stop()
    assert took >= (8 - 4) / 4 - 0.2  # 8 replies at 4/s after a burst of 4: about a second at least
    assert fake.method_calls("sendChatAction")  # the ones kept waiting were shown "typing…"


def test_on_postgresql_a_429_pauses_the_shared_budget(
    fake: FakeTelegram, pg_url: str, kb: KnowledgeBase, policy: Policy
) -> None:
    settings = load_settings(
        telegram_token=fake.token, telegram_api_base_url=fake.base_url, database_url=pg_url
    )
    with Store.open(pg_url) as store:
        runner = BotThread(settings, ConversationService(kb, policy, store)).start()
        try:
            fake.fail_next("sendMessage", 429, retry_after=3)
            fake.message(CHAT, "申請マイページのIDがわからない")
            fake.wait_for(lambda: fake.method_calls("sendMessage"), what="the send that gets a 429")
            time.sleep(0.5)
            with store.engine.connect() as connection:
                ahead = connection.execute(
                    text("SELECT max(next_at) - extract(epoch FROM clock_timestamp()) FROM send_budget")
                ).scalar_one()
            fake.wait_messages(CHAT, 1)
        finally:
            runner.stop()
    assert 1.5 <= float(ahead) <= 3.1  # every worker now waits for the retry_after too


def test_an_error_is_logged_without_the_token_and_the_user_is_told(
    fake: FakeTelegram, db_url: str, kb: KnowledgeBase, policy: Policy
) -> None:
    class Broken(ConversationService):
        def handle_in(self, unit: UpdateUnit, channel: str, user_id: str, user_input: UserInput) -> Any:
            raise RuntimeError(f"database exploded while calling {fake.base_url}{fake.token}/sendMessage")

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        redact_in_logs([fake.token])
        with Store.open(db_url) as store:
            runner = BotThread(bot_settings(fake, db_url), Broken(kb, policy, store)).start()
            try:
                fake.message(CHAT, "こんにちは")
                [told] = fake.wait_messages(CHAT, 1)
            finally:
                runner.stop()
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    assert told.text == ERROR_TEXT
    logged = stream.getvalue()
    assert "database exploded" in logged and "<redacted>" in logged
    assert fake.token not in logged
