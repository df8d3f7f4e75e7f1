"""Handoff to a person: recognising a request, case numbers, the conversation side (service)
and the store contract of cases (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import handoff
from bot.cases import CASE_SOURCE, CaseError, Cases, CaseSettings, reply_problem
from bot.service import ConversationService, ServiceTurn
from bot.store import ProcessedUpdate, Store
from dialogs.types import Reply, UserInput
from faq import KnowledgeBase, Policy

NONSENSE = ("ほげほげふがふが", "ぴよぴよぱやぱや")


@pytest.mark.parametrize(
    "text",
    [
        "オペレーターにつないで",
        "人と話したい",
        "スタッフに相談したい",
        "/human",
        "担当の方と話せますか",
        "人間に代わって",
    ],
)
def test_requests_for_a_person_are_recognised(text: str) -> None:
    assert handoff.is_request(text)


@pytest.mark.parametrize(
    "text",
    [
        "担当者を変更したい",
        "登録している担当者が変わった",
        "法人に相談した内容",
        "申請マイページのIDがわからない",
    ],
)
def test_questions_about_the_registered_contact_person_stay_questions(text: str) -> None:
    assert not handoff.is_request(text)


def test_case_numbers_are_short_and_unambiguous() -> None:
    numbers = {handoff.new_case_number() for _ in range(200)}
    assert len(numbers) > 190
    for number in numbers:
        assert len(number) == 7 and number[3] == "-"
        assert not set(number.replace("-", "")) & set("0O1IL2Z5S8BUV6G")
    assert handoff.normal_case_number(" kx4 7ta ") == "KX4-7TA"


def test_reply_length_counts_utf16_units_with_the_prefix() -> None:
    room = 4096 - len(handoff.STAFF_PREFIX)
    assert reply_problem("あ" * room) is None
    assert reply_problem("あ" * (room + 1)) is not None
    assert reply_problem("😀" * (room // 2 + 1)) is not None  # two units each
    assert reply_problem("   ") == "返信が空です。"


# -- the conversation side ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kounen.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    with Store.open(url) as opened:
        yield opened


@pytest.fixture
def service(kb: KnowledgeBase, policy: Policy, store: Store) -> ConversationService:
    svc = ConversationService(kb, policy, store)
    svc._case_settings = CaseSettings(case_expire_hours=1, case_retention_days=1)
    return svc


def say(service: ConversationService, text: str, user: str = "u1", channel: str = "chat") -> ServiceTurn:
    return service.handle(channel, user, UserInput(text))


def pick(service: ConversationService, value: str, user: str = "u1", channel: str = "chat") -> ServiceTurn:
    return service.handle(channel, user, UserInput(choice=value))


def values(turn: ServiceTurn) -> list[str]:
    return [c.value for r in turn.replies for c in r.choices]


def text(turn: ServiceTurn) -> str:
    return "\n".join(r.text for r in turn.replies)


def open_case(service: ConversationService, user: str = "u1", channel: str = "chat") -> str:
    first = say(service, NONSENSE[0], user, channel)
    assert "hand:not_found" not in values(first)  # one not-found is not yet a reason
    second = say(service, NONSENSE[1], user, channel)
    assert "hand:not_found" in values(second)
    confirm = pick(service, "hand:not_found", user, channel)
    assert "担当者におつなぎします" in text(confirm) and "hand:go" in values(confirm)
    opened = pick(service, "hand:p-it2020", user, channel)
    found = [w for w in text(opened).split() if len(w) == 7 and w[3] == "-"]
    assert found, text(opened)
    assert "受付時間" in text(opened) and "0570-002-551" in text(opened)
    return found[0]


def test_second_not_found_offers_a_person_and_the_case_carries_a_summary(
    service: ConversationService, store: Store
) -> None:
    number = open_case(service)
    case = Cases(store).get(number)
    assert case is not None and case.is_open and case.program == "it2020" and case.reason == "not_found"
    assert [t["text"] for t in case.summary["turns"]] == list(NONSENSE)
    assert case.summary["reason_text"] and case.summary["opened_at"]
    # A second request while it is open opens nothing new.
    again = say(service, "オペレーターにつないで")
    assert number in text(again) and "すでに" in text(again)
    assert len(Cases(store).list("open")) == 1
    # The bot keeps answering, and the turn is attached to the case.
    answered = say(service, "申請マイページのIDがわからない")
    assert "申請番号" in text(answered) or "ID" in text(answered)
    events = Cases(store).get(number)
    assert events is not None and any(e.kind == "user" and "ID" in (e.text or "") for e in events.events)


def test_staff_reply_shows_at_the_next_turn_once_and_closing_tells_the_user(
    service: ConversationService, store: Store
) -> None:
    number = open_case(service)
    cases = Cases(store)
    cases.assign(number, "sato")
    cases.reply(number, "sato", "お調べしました。<b>申請番号</b>を教えてください。")
    shown = say(service, "こんにちは")
    assert (
        shown.replies[0].text.startswith(handoff.STAFF_PREFIX) and "<b>申請番号</b>" in shown.replies[0].text
    )
    assert handoff.STAFF_PREFIX not in text(say(service, "こんにちは"))  # once
    cases.close(number, "sato", "申請番号を案内して解決")
    closed = say(service, "申請マイページのIDがわからない")
    assert "終了しました" in closed.replies[0].text
    case = cases.get(number)
    assert case is not None and case.status == "closed" and case.resolution == "申請番号を案内して解決"
    kinds = [(e.kind, e.actor) for e in case.events if e.kind in ("assigned", "closed", "staff")]
    assert kinds == [("assigned", "sato"), ("staff", "sato"), ("closed", "sato")]
    assert "hand:" not in " ".join(values(say(service, "ほげ")))  # the bot answers as before
    assert say(service, "人と話したい").replies[0].text.startswith("担当者におつなぎします")


def test_details_given_for_the_case_stay_in_the_case_only(service: ConversationService, store: Store) -> None:
    say(service, "スタッフに相談したい")
    details = "山田商事 申請番号 1234567890123 taro@example.com"
    opened = say(service, details)
    assert "受付番号" in text(opened)
    case = Cases(store).list("open")[0]
    assert case.personal == details
    logged = " ".join(q.text for q in store.recent_queries(20))
    assert "taro@example.com" not in logged and "1234567890123" not in logged
    full = Cases(store).get(case.number)
    assert full is not None
    assert all("taro@example.com" not in (e.text or "") for e in full.events)
    # Erased after the retention.
    assert Cases(store).purge_personal() == 0
    later = full.opened_at + timedelta(days=2)
    assert Cases(store).purge_personal(later) == 1
    again = Cases(store).get(case.number)
    assert again is not None and again.personal is None


def test_cancel_ends_a_dialog_first_then_the_request(service: ConversationService, store: Store) -> None:
    number = open_case(service)
    say(service, "労働生産性を計算したい")
    assert "中止しました" in text(say(service, "/cancel"))
    assert Cases(store).get(number).is_open  # type: ignore[union-attr]
    assert number in text(say(service, "/cancel"))
    assert Cases(store).get(number).status == "cancelled"  # type: ignore[union-attr]


def test_gbizid_goes_to_its_own_line_instead_of_a_case(service: ConversationService, store: Store) -> None:
    turn = say(service, "gBizIDのことでオペレーターにつないで")
    assert "06-6225-7877" in text(turn) and "事務局では管理していない" in text(turn)
    assert Cases(store).list("open") == []


def test_a_case_nobody_takes_expires_with_a_message(service: ConversationService, store: Store) -> None:
    number = open_case(service)
    cases = Cases(store, CaseSettings(case_expire_hours=1))
    case = cases.get(number)
    assert case is not None
    assert cases.expire_due(case.opened_at + timedelta(minutes=30)) == 0
    assert cases.expire_due(case.opened_at + timedelta(hours=2)) == 1
    assert "受付期限" in say(service, "こんにちは").replies[0].text


def test_telegram_cases_send_through_the_outbox_exactly_once(
    service: ConversationService, store: Store
) -> None:
    number = open_case(service, "4242", "telegram")
    cases = Cases(store)
    event = cases.reply(number, "sato", "確認します")
    with store._sessions() as session:
        row = session.scalars(select(ProcessedUpdate).where(ProcessedUpdate.source == CASE_SOURCE)).one()
    assert (row.update_id, row.chat, row.pending) == (event, "4242", True)
    assert row.outbox is not None and row.outbox[0]["case_event"] == event
    assert store.chats_with_unsent(CASE_SOURCE) == ["4242"]
    # Telegram users get nothing at their next turn: the bot sends it.
    assert handoff.STAFF_PREFIX not in text(say(service, "こんにちは", "4242", "telegram"))


def test_staff_actions_refuse_what_cannot_be_done(service: ConversationService, store: Store) -> None:
    number = open_case(service)
    cases = Cases(store)
    with pytest.raises(CaseError):
        cases.reply(number, "sato", "")
    with pytest.raises(CaseError):
        cases.close(number, "sato", " ")
    cases.close(number, "sato", "done")
    with pytest.raises(CaseError):
        cases.reply(number, "sato", "hello")
    with pytest.raises(CaseError):
        cases.assign("XXX-XXX", "sato")


def test_queues_views_and_stats(service: ConversationService, store: Store) -> None:
    first = open_case(service, "u1")
    second = open_case(service, "u2")
    cases = Cases(store)
    cases.assign(first, "sato")
    assert {c.number for c in cases.list("open")} == {first, second}
    assert [c.number for c in cases.list("mine", "sato")] == [first]
    assert [c.number for c in cases.list(number=second.lower().replace("-", ""))] == [second]
    viewed = cases.get(first, viewer="sato")
    assert viewed is not None and viewed.events[-1].kind == "viewed" and viewed.events[-1].actor == "sato"
    cases.reply(first, "sato", "ok")
    cases.close(first, "sato", "done")
    assert [c.number for c in cases.list("closed")] == [first]
    start = viewed.opened_at - timedelta(hours=1)
    stats = cases.stats(start, start + timedelta(days=1))
    assert stats.total == 2 and stats.open == 1 and stats.by_reason == {"not_found": 2}
    assert stats.first_reply_minutes is not None and stats.gaps == [(first, NONSENSE[0])]


def test_a_user_cannot_reach_another_users_case(service: ConversationService, store: Store) -> None:
    number = open_case(service, "u1")
    Cases(store).reply(number, "sato", "u1 だけへのお返事")
    other = say(service, number, "u2")  # the number typed by someone else is only a question
    assert "u1 だけへのお返事" not in text(other)
    assert "取り消し" not in text(say(service, "/cancel", "u2"))
    case = Cases(store).get(number)
    assert case is not None and case.is_open
    assert all(e.kind != "user" or "u2" not in (e.text or "") for e in case.events)
    assert "u1 だけへのお返事" in text(say(service, "こんにちは", "u1"))


def test_staff_chat_notice_has_no_personal_data(kb: KnowledgeBase, policy: Policy, store: Store) -> None:
    service = ConversationService(kb, policy, store)
    service._case_settings = CaseSettings(staff_chat_id=-100123)
    say(service, "人と話したい")
    pick(service, "hand:p-it2020")
    with store._sessions() as session:
        rows = session.scalars(select(ProcessedUpdate).where(ProcessedUpdate.chat == "-100123")).all()
    assert len(rows) == 1 and rows[0].outbox is not None
    notice = rows[0].outbox[0]["text"]
    assert "新しいお問い合わせ" in notice and "taro" not in notice and "1234567890123" not in notice
    assert "ご本人の希望" in notice and "IT導入補助金2020" in notice and "it2020" not in notice
    say(service, "人と話したい", "u2")
    say(service, "山田商事 taro@example.com 1234567890123", "u2")
    with store._sessions() as session:
        texts = [r.outbox[0]["text"] for r in session.scalars(select(ProcessedUpdate)).all() if r.outbox]
    assert len(texts) == 2 and not any("taro" in t or "1234567890123" in t for t in texts)


def test_another_button_drops_the_pending_request(service: ConversationService, store: Store) -> None:
    say(service, "人と話したい")
    say(service, "/help")
    answered = say(service, "申請マイページのIDがわからない")
    assert "受付番号" not in text(answered)
    assert Cases(store).list("open") == []


def test_a_result_left_to_the_office_offers_a_person(kb: KnowledgeBase, policy: Policy, store: Store) -> None:
    from dialogs.engine import Flow, Step

    refunds = iter(["decided_by_office", "unknown", "full"])
    flows = {
        "withdrawal": Flow(
            id="withdrawal",
            title="辞退の判定",
            intro="辞退の判定をご案内します。",
            steps=(Step("event", "何がありましたか？", lambda text, _values: text, "説明"),),
            finish=lambda v: [Reply("判定しました。", result={"refund": next(refunds), "inputs": {}})],
        )
    }
    service = ConversationService(kb, policy, store, flows)
    offers = []
    for _ in range(3):
        pick(service, "flow:withdrawal")
        offers.append([v for v in values(say(service, "解約")) if v.startswith("hand:")])
    assert offers == [["hand:office"], ["hand:unknown"], []]
    assert handoff.outcome_reason({"withdrawal_required": None, "refund": "none"}) == "unknown"


def test_the_terminal_chat_sees_its_case_expire_at_the_next_turn(
    service: ConversationService, store: Store
) -> None:
    number = open_case(service)
    service._case_settings = CaseSettings(case_expire_hours=0.0001)  # 0.36 s
    time.sleep(0.5)
    told = say(service, "こんにちは")
    assert "受付期限" in told.replies[0].text
    case = Cases(store).get(number)
    assert case is not None and case.status == "expired"
    assert "受付期限" not in text(say(service, "こんにちは"))


def test_a_request_inside_a_calculation_keeps_the_calculation(
    service: ConversationService, store: Store
) -> None:
    started = pick(service, "flow:productivity")
    assert started.dialog == "productivity"
    asked = say(service, "オペレーターにつないで")  # not an answer the step can read
    assert "担当者におつなぎします" in text(asked) and asked.dialog == "productivity"
    opened = say(service, "山田商事の山田です")
    assert "受付番号" in text(opened) and opened.dialog == "productivity"
    assert len(Cases(store).list("open")) == 1
    assert say(service, "3000万").dialog == "productivity"  # the calculation goes on


def test_neither_program_opens_a_case_without_a_guessed_program(
    service: ConversationService, store: Store
) -> None:
    say(service, "申請マイページのIDがわからない")  # a 2020 answer: a guess would say 2020
    confirm = pick(service, "hand:requested")
    assert "hand:p-other" in values(confirm)
    opened = pick(service, "hand:p-other")
    found = [w for w in text(opened).split() if len(w) == 7 and w[3] == "-"]
    assert found, text(opened)
    case = Cases(store).get(found[0])
    assert case is not None and case.program is None
