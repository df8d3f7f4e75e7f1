"""Personal data is masked, or not kept, everywhere it is stored: every table and the log output.

Each format a user may type (phone numbers in digits, full width or kanji numerals, e-mail
addresses with ASCII or internationalised domains, 法人番号 and マイナンバー, plain or in groups)
goes through the service as a question, as a question waiting for a program choice (kept in
the conversation state), as a feedback comment and through the outbox of a Telegram update;
then every row of every table and everything logged at DEBUG is searched for it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.service import Conversation, ConversationService
from bot.store import Base, Store
from dialogs.types import UserInput
from faq import KnowledgeBase, Policy

# (what the user types, the part that must never be stored)
FORMATS = [
    ("03-1234-5678", "1234-5678"),
    ("０３－１２３４－５６７８", "１２３４－５６７８"),
    ("090 1234 5678", "1234 5678"),
    ("09012345678", "12345678"),
    ("(03)1234-5678", "1234-5678"),
    ("+81-3-1234-5678", "1234-5678"),
    ("０３ー１２３４ー５６７８", "１２３４ー５６７８"),
    ("〇三ー一二三四ー五六七八", "一二三四ー五六七八"),
    ("taro.yamada@example.co.jp", "taro.yamada"),
    ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｃｏｍ", "ｔａｒｏ"),
    ("hanako@例え.jp", "hanako"),
    ("1234567890123", "4567890123"),
    ("１２３４５６７８９０１２３", "４５６７８９０１２３"),
    ("1-2345-6789-0123", "2345-6789-0123"),
    ("1234 5678 9012", "5678 9012"),
    ("１２３４－５６７８－９０１２", "５６７８－９０１２"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'pii.db'}") as opened:
        yield opened


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def everything_stored(store: Store) -> str:
    with store.engine.connect() as connection:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in connection.execute(select(table))
        )


def test_every_format_is_masked_in_every_table_and_in_the_logs(
    kb: KnowledgeBase, policy: Policy, store: Store, log_output: io.StringIO
) -> None:
    service = ConversationService(kb, policy, store)
    pending = 0
    for number, (typed, _secret) in enumerate(FORMATS):
        user = f"u{number}"
        service.handle("cli", user, UserInput(f"申請マイページのIDがわからない。連絡先は{typed}です"))
        # A question that needs the program: it waits in the conversation state.
        service.handle("cli", user, UserInput(f"問い合わせの電話番号を教えて {typed}"))
        state = store.load("cli", user).state
        pending += bool(state and state.get("pending_query"))
        # Whatever the matcher made of that one: a waiting question as the service stores it.
        waiting = Conversation(pending_query=f"問い合わせの電話番号を教えて {typed}")
        store.save("waiting", user, waiting.to_json(), None, 0)
        service.feedback("cli", user, "it2020-mypage-id-forgotten", False, f"{typed}に連絡ください")
        # An update whose reply quotes the user's text, queued and then sent.
        store.run_update(
            "telegram",
            user,
            lambda unit, typed=typed: unit.send({"method": "sendMessage", "text": f"「{typed}」"}),
            source="telegram:1",
            update_id=number,
        )
        batch = store.outbox("telegram:1", user)
        batch.finish({unsent.update_id: (1, True) for unsent in batch.take()})
    assert pending  # the service kept some of these questions waiting for a program
    stored, logged = everything_stored(store), log_output.getvalue()
    for typed, secret in FORMATS:
        assert secret not in stored, (typed, [line for line in stored.splitlines() if secret in line][:2])
        assert secret not in logged, typed
