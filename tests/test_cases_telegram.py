"""Handoff over Telegram with the fake Bot API: the offer, the case number, a staff reply
delivered once by the bot's sweeper, a reply to a user who blocked the bot, and 👎."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_telegram import FakeTelegram
from test_telegram_bot import CHAT, BotThread, Chat, bot_settings, last_with_buttons, texts

import bot.telegram.adapter
from bot.cases import Cases
from bot.handoff import STAFF_PREFIX
from bot.service import ConversationService
from bot.store import Store
from faq import KnowledgeBase, Policy


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened


@pytest.fixture
def running(
    fake: FakeTelegram,
    db_url: str,
    kb: KnowledgeBase,
    policy: Policy,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[BotThread]:
    monkeypatch.setattr(bot.telegram.adapter, "SWEEP_INTERVAL", 0.3)
    runner = BotThread(bot_settings(fake, db_url), ConversationService(kb, policy, store)).start()
    try:
        yield runner
    finally:
        runner.stop()


def open_case(fake: FakeTelegram) -> tuple[Chat, str]:
    chat = Chat(fake)
    chat.say("ほげほげふがふが")
    second = chat.say("ぴよぴよぱやぱや")
    offer = last_with_buttons(second)
    confirm = chat.press(offer, offer.data_for("担当者に相談"))
    assert "担当者におつなぎします" in texts(confirm)
    opened = chat.press(last_with_buttons(confirm), "hand:p-it2020")
    number = next(w for w in texts(opened).split() if len(w) == 7 and w[3] == "-")
    return chat, number


def test_a_staff_reply_reaches_the_chat_once(fake: FakeTelegram, running: BotThread, store: Store) -> None:
    chat, number = open_case(fake)
    Cases(store).reply(number, "sato", "お調べします。<少々>お待ちください")
    message = fake.wait_for(
        lambda: next(
            (m for m in fake.chat_messages(CHAT)[chat.seen :] if STAFF_PREFIX.strip() in m.text), None
        ),
        what="the staff reply",
    )
    assert "<少々>" in message.text  # escaped like every other text
    case = Cases(store).get(number)
    fake.wait_for(
        lambda: ((c := Cases(store).get(number)) is not None and c.events[-1].delivery == "sent") or None
    )
    assert case is not None

    time.sleep(1.0)  # a few more sweeps: nothing is sent again
    assert sum(STAFF_PREFIX.strip() in m.text for m in fake.chat_messages(CHAT)) == 1
    Cases(store).close(number, "sato", "解決")
    fake.wait_for(
        lambda: any("終了しました" in m.text for m in fake.chat_messages(CHAT)[chat.seen :]) or None,
        what="the closing notice",
    )


def test_a_reply_to_a_user_who_blocked_the_bot_is_marked_undeliverable(
    fake: FakeTelegram, running: BotThread, store: Store
) -> None:
    _chat, number = open_case(fake)
    fake.fail_next("sendMessage", 403)
    event = Cases(store).reply(number, "sato", "こんにちは")

    def state() -> str | None:
        case = Cases(store).get(number)
        found = next((e for e in case.events if e.id == event), None) if case else None
        return found.delivery if found is not None and found.delivery != "pending" else None

    assert fake.wait_for(state, what="the delivery state") == "undeliverable"
    # The refusal is recorded on the case as soon as it happens; the outbox batch is finished just
    # after, in its own transaction.  Not retried forever: the outbox empties, and stays empty
    # over a few more sweeps.
    fake.wait_for(lambda: store.chats_with_unsent("telegram:cases") == [] or None, what="an empty outbox")
    time.sleep(1.0)
    assert store.chats_with_unsent("telegram:cases") == []


def test_thumbs_down_offers_a_person(fake: FakeTelegram, running: BotThread) -> None:
    chat = Chat(fake)
    answer = chat.say("申請マイページのIDがわからない")
    rated = last_with_buttons(answer)
    offer = chat.press(rated, rated.data_for("👎"), count=1)
    button = last_with_buttons(offer)
    assert button.data_for("担当者に相談") == "hand:not_helpful"
