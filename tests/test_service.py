"""The conversation service: commands, FAQ routing, dialogs, persistence and the turn log.

Most tests use two small flows of their own named like the real ones
("productivity", "withdrawal"), so the routing is tested independently of the
real flows' wording; the tests at the end use dialogs.flows once it exists.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bot.service import (
    HELP,
    NO_DIALOG,
    QUICK_CHOICES,
    RESET,
    STALE_CHOICE,
    WELCOME,
    Conversation,
    ConversationService,
    ServiceTurn,
)
from bot.store import ConcurrentUpdate, Store, UpdateUnit
from dialogs.engine import Flow, Invalid, Step
from dialogs.types import DialogState, Reply, ReplyChoice, UserInput
from faq import KnowledgeBase, Policy, PolicyConfig
from faq.replies import NOT_FOUND, SUGGEST

CHANNEL = "test"
GBIZ_PHONE = "06-6225-7877"
IT2020_PHONE = "0570-002-551"
IT2023_PHONE = "0570-666-376"


def _count(text: str, values: Any) -> int:
    digits = text.removesuffix("人").removesuffix("時間").replace(",", "")
    if not digits.isdigit():
        raise Invalid(f"「{text}」は数として読めませんでした。数字で入力してください（例：10）。")
    return int(digits)


def _event(text: str, values: Any) -> str:
    if text in ("cancel-part", "cancel-all"):
        return text
    raise Invalid("選択肢からお選びください。")


TOY_FLOWS: dict[str, Flow] = {
    "productivity": Flow(
        id="productivity",
        title="労働生産性の試算",
        intro="労働生産性の試算をご案内します。",
        steps=(
            Step("employees", "従業員数は？", _count, "従業員数の説明", labels=("従業員数",)),
            Step("hours", "年間の平均労働時間は？", _count, "労働時間の説明", labels=("労働時間",)),
        ),
        finish=lambda v: [
            Reply(
                f"総労働時間は {v['employees'] * v['hours']} 時間です。",
                (ReplyChoice("人件費に含めるもの", "faq:it2023-input-labor-cost"),),
                result={"total_hours": v["employees"] * v["hours"]},
            )
        ],
    ),
    "withdrawal": Flow(
        id="withdrawal",
        title="辞退の判定",
        intro="辞退の判定をご案内します。",
        steps=(
            Step(
                "event",
                "何がありましたか？",
                _event,
                "出来事の説明",
                choices=(ReplyChoice("一部を解約", "cancel-part"), ReplyChoice("すべて解約", "cancel-all")),
            ),
        ),
        finish=lambda v: [Reply(f"判定：{v['event']}", result={"event": v["event"]})],
    ),
}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'service.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened


@pytest.fixture
def service(kb: KnowledgeBase, policy: Policy, store: Store) -> ConversationService:
    return ConversationService(kb, policy, store, flows=TOY_FLOWS)


def say(service: ConversationService, text: str, user: str = "u1") -> ServiceTurn:
    return service.handle(CHANNEL, user, UserInput(text))


def pick(service: ConversationService, value: str, user: str = "u1") -> ServiceTurn:
    return service.handle(CHANNEL, user, UserInput(choice=value))


def texts(turn: ServiceTurn) -> str:
    return "\n".join(r.text for r in turn.replies)


def details(turn: ServiceTurn) -> str:
    """What 「詳しく」 shows for the turn's replies."""
    return "\n".join(r.details for r in turn.replies)


def values(turn: ServiceTurn) -> list[str]:
    return [c.value for r in turn.replies for c in r.choices]


# -- FAQ ------------------------------------------------------------------------------


def test_a_clear_question_is_answered_and_logged(service: ConversationService, store: Store) -> None:
    turn = say(service, "申請マイページのIDがわからない")
    assert GBIZ_PHONE in texts(turn)
    assert (turn.dialog, turn.step, turn.result) == (None, None, None)
    (row,) = store.recent_queries()
    assert row.status == "answered" and row.entry_id == "it2020-mypage-id-forgotten"
    assert row.score is not None and row.score > 0
    assert row.user_hash == store.user_hash(CHANNEL, "u1")


def test_an_answer_linked_to_a_flow_offers_it_and_the_choice_starts_it(service: ConversationService) -> None:
    turn = say(service, "複数社連携で一部のツールだけ解約したら辞退ですか")
    assert "flow:withdrawal" in values(turn)
    started = pick(service, "flow:withdrawal")
    assert (started.dialog, started.step) == ("withdrawal", "event")
    assert texts(started).startswith("辞退の判定をご案内します。")


def test_both_programs_side_by_side_then_a_program_choice_is_remembered(
    service: ConversationService, store: Store
) -> None:
    turn = say(service, "問い合わせの電話番号を教えて")
    # The program is unknown and both answer differently: both answers, each with its own line.
    assert IT2023_PHONE in texts(turn) and IT2020_PHONE in texts(turn)
    assert {v for v in values(turn) if not v.startswith("more:")} == {
        "prog:it2020",
        "prog:it2023-multi",
        "prog:other",
        "prog:unknown",
    }
    # 「詳しく」 for each program's answer, shown again from the knowledge base when pressed.
    assert {v for v in values(turn) if v.startswith("more:")} == {
        "more:it2020-contact",
        "more:it2023-contact",
    }
    assert "1." not in texts(turn)  # the channel numbers the choices, not the text
    answer = pick(service, "prog:it2023-multi")
    assert IT2023_PHONE in texts(answer)
    assert IT2020_PHONE not in texts(answer)
    assert [r.status for r in store.recent_queries()] == ["answered", "answered"]
    assert store.load(CHANNEL, "u1").program == "it2023-multi"  # picked: remembered
    # The question was answered once: the other program's button now just switches.
    again = pick(service, "prog:it2020")
    assert IT2020_PHONE not in texts(again) and "ご質問を入力してください" in texts(again)
    assert store.load(CHANNEL, "u1").program == "it2020"


@pytest.mark.parametrize(
    ("reply", "program"),
    [("2020です", "it2020"), ("2023の複数社連携", "it2023-multi"), ("2023", "it2023-multi")],
)
def test_a_typed_program_reply_answers_the_question_within_it(
    service: ConversationService, store: Store, reply: str, program: str
) -> None:
    say(service, "問い合わせの電話番号を教えて")
    answer = say(service, reply)
    phone, other = (IT2020_PHONE, IT2023_PHONE) if program == "it2020" else (IT2023_PHONE, IT2020_PHONE)
    assert phone in texts(answer) and other not in texts(answer)
    assert store.load(CHANNEL, "u1").program == program


def test_dont_know_tells_how_to_tell_and_answers_for_both(
    service: ConversationService, kb: KnowledgeBase
) -> None:
    both = say(service, "問い合わせの電話番号を教えて")
    assert IT2020_PHONE in texts(both) and IT2023_PHONE in texts(both)  # both answers are on screen
    answer = say(service, "わからない")
    assert "画面左上" in texts(answer) and "交付決定" in texts(answer)
    # Not the same two answers again: the program buttons, with the question kept for the pick.
    assert IT2020_PHONE not in texts(answer) and "prog:it2020" in values(answer)
    picked = pick(service, "prog:it2020")
    assert IT2020_PHONE in texts(picked) and IT2023_PHONE not in texts(picked)


def test_another_frame_gets_its_guide(service: ConversationService, kb: KnowledgeBase) -> None:
    say(service, "問い合わせの電話番号を教えて")
    answer = say(service, "通常枠です")
    assert "共通の「事業実施効果報告の手引き」" in texts(answer)


def test_a_side_by_span_has_one_details_button_showing_each_span(service: ConversationService) -> None:
    """Without a duration the 2020 side holds 1年未満 and 1年以上: one 「詳しく（2020）」 shows both
    spans' details, each headed by its span, so the buttons stay within one phone screen."""
    answer = say(service, "辞退したら補助金返すの？")
    more = [v for v in values(answer) if v.startswith("more:") and "it2020" in v]
    assert len(more) == 1, values(answer)
    details = pick(service, more[0])
    assert "【1年未満】" in texts(details) and "【1年以上】" in texts(details)
    assert texts(details).index("【1年未満】") < texts(details).index("【1年以上】")


def test_another_year_given_as_the_program_gets_its_pointer(
    service: ConversationService, store: Store
) -> None:
    say(service, "問い合わせの電話番号を教えて")
    answer = say(service, "2022年度です")
    assert "その年度の IT導入補助金ホームページ" in texts(answer)
    assert "見つかりませんでした" not in texts(answer)  # not taken as a new question
    assert store.load(CHANNEL, "u1").program is None  # nothing covered to remember


def test_a_program_named_in_a_question_is_remembered_and_shown(
    service: ConversationService, store: Store
) -> None:
    turn = say(service, "IT導入補助金2020の問い合わせ先")
    assert IT2020_PHONE in texts(turn) and "/program" in texts(turn)
    assert store.load(CHANNEL, "u1").program == "it2020"
    # A bare year in a date is no program: the remembered one stays.
    say(service, "2023年4月に解約した")
    assert store.load(CHANNEL, "u1").program == "it2020"


def test_clarify_between_entries_offers_faq_choices(kb: KnowledgeBase, policy: Policy, store: Store) -> None:
    # A policy that never answers outright: every match becomes a choice between entries.
    unsure = Policy(
        kb, matcher=policy.matcher, config=PolicyConfig.load().model_copy(update={"lead_min": 99.0})
    )
    service = ConversationService(kb, unsure, store, flows=TOY_FLOWS)
    turn = say(service, "ログインIDを忘れた")
    assert values(turn) and all(v.startswith("faq:") for v in values(turn))
    choice = values(turn)[0]
    answer = pick(service, choice)
    entry = kb.by_id[choice.removeprefix("faq:")]
    program = kb.programs[entry.program]
    assert entry.question and answer.replies[0].text.startswith(f"【{program.short}】")
    assert answer.replies[0].details.startswith(f"【{program.name}")
    assert store.recent_queries()[0].entry_id == entry.id


def test_a_typed_choice_value_counts_as_picking_it(service: ConversationService) -> None:
    assert GBIZ_PHONE in texts(say(service, "faq:it2020-mypage-id-forgotten"))


def test_smalltalk_and_no_match(service: ConversationService, store: Store) -> None:
    hello = say(service, "こんにちは")
    assert "ご質問をどうぞ" in texts(hello)
    nothing = say(service, "今日の天気は？")
    assert texts(nothing).startswith(NOT_FOUND)
    assert SUGGEST not in texts(nothing)  # nothing comes near: nothing is offered
    assert values(nothing) == [c.value for c in QUICK_CHOICES]
    assert [r.status for r in store.recent_queries()] == ["no_match", "smalltalk"]


LONG_SAVE_QUESTION = (
    "社長から今日中に効果報告を終わらせろと言われて慌てて入力を始めたのですが、入力画面の途中で"
    "電話対応が入ってしまい、一旦保存して後から続きができるのか知りたいです"
)


def test_a_not_found_offers_near_entries_and_picking_one_answers(
    service: ConversationService, store: Store, kb: KnowledgeBase
) -> None:
    # Too chatty for the bot to be sure: "not found" and the lines, with the near entries to pick.
    turn = say(service, LONG_SAVE_QUESTION)
    assert texts(turn).startswith(NOT_FOUND)
    assert SUGGEST in texts(turn)
    offered = [v for v in values(turn) if v.startswith("faq:")]
    assert "faq:it2023-report-temporary-save" in offered
    assert values(turn)[len(offered) :] == [c.value for c in QUICK_CHOICES]  # the quick replies stay
    labels = [c.label for r in turn.replies for c in r.choices][: len(offered)]
    for label, value in zip(labels, offered, strict=True):
        entry = kb.by_id[value.removeprefix("faq:")]
        # The program is not known yet: each offered question says which program it is for.
        tag = kb.programs[entry.program].short.removeprefix("IT導入補助金").strip()
        assert label == f"【{tag}】{entry.question}"
    answer = pick(service, "faq:it2023-report-temporary-save")
    assert answer.replies[0].text.startswith("【IT導入補助金2023")
    assert [r.status for r in store.recent_queries()][1] == "no_match"


def test_stale_choices_are_explained(service: ConversationService) -> None:
    assert texts(pick(service, "faq:no-such-entry")) == STALE_CHOICE
    assert texts(pick(service, "flow:no-such-flow")) == STALE_CHOICE
    assert texts(pick(service, "prog:common")) == STALE_CHOICE
    assert texts(pick(service, "cmd:back")) == NO_DIALOG


def test_every_choice_value_is_short_ascii(kb: KnowledgeBase, service: ConversationService) -> None:
    assert all(len(f"faq:{e.id}".encode()) <= 64 for e in kb.entries)
    seen: list[str] = []
    for text in (
        "問い合わせの電話番号を教えて",
        "ツールを一部解約したら辞退届いる？",
        "複数社連携で一部のツールだけ解約したら辞退ですか",
        "労働生産性を計算したい",
    ):
        seen += values(say(service, text, user=f"v-{text}"))
    assert seen
    assert all(v.isascii() and len(v.encode()) <= 64 for v in seen), seen


def test_logged_text_is_masked(service: ConversationService, store: Store) -> None:
    say(service, "03-1234-5678 から電話しても繋がらない、連絡先は taro@example.com")
    row = store.recent_queries()[0]
    assert "1234" not in row.text and "taro@" not in row.text
    assert "[電話番号]" in row.text and "[メール]" in row.text


def test_feedback_goes_to_the_store(service: ConversationService, store: Store) -> None:
    service.feedback(CHANNEL, "u1", "it2020-contact", False, "090-1111-2222 がつながらない")
    (row,) = store.recent_feedback()
    assert (row.entry_id, row.helpful, row.comment) == ("it2020-contact", False, "[電話番号] がつながらない")


# -- commands -------------------------------------------------------------------------


def test_start_and_help(service: ConversationService) -> None:
    assert texts(say(service, "/start")) == WELCOME
    assert texts(say(service, "/help")) == HELP
    assert texts(say(service, "ヘルプ")) == HELP
    assert "というコマンドはありません" in texts(say(service, "/nope"))


def test_program_command_is_remembered_and_narrows_questions(
    service: ConversationService, store: Store
) -> None:
    assert "IT導入補助金2020" in texts(say(service, "／program IT2020"))
    assert store.load(CHANNEL, "u1").program == "it2020"
    turn = say(service, "問い合わせの電話番号を教えて")
    assert IT2020_PHONE in texts(turn) and values(turn) == ["more:it2020-contact"]  # no program buttons
    assert "ありません" in texts(say(service, "/program it2099"))
    assert "現在の制度" in texts(say(service, "/program"))
    say(service, "/program any")
    assert store.load(CHANNEL, "u1").program is None


def test_cancel_and_reset(service: ConversationService, store: Store) -> None:
    assert texts(say(service, "/cancel")) == NO_DIALOG
    say(service, "/program it2023-multi")
    say(service, "労働生産性を計算したい")
    cancelled = say(service, "/cancel")
    assert cancelled.dialog is None and "中止しました" in texts(cancelled)
    assert store.load(CHANNEL, "u1").program == "it2023-multi"  # /cancel keeps the program
    say(service, "労働生産性を計算したい")
    reset = say(service, "/reset")
    assert reset.dialog is None and texts(reset) == RESET
    record = store.load(CHANNEL, "u1")
    assert (record.state, record.program) == (None, None)
    say(service, "問い合わせの電話番号を教えて")
    assert texts(say(service, "最初から")) == RESET
    assert store.load(CHANNEL, "u1").state is None


# -- dialogs --------------------------------------------------------------------------


def test_a_dialog_request_starts_the_flow_and_walks_it_to_a_result(service: ConversationService) -> None:
    turn = say(service, "労働生産性を計算したい")
    assert (turn.dialog, turn.step) == ("productivity", "employees")
    assert texts(turn) == "労働生産性の試算をご案内します。\n従業員数は？"
    assert "cmd:help" in values(turn)
    turn = say(service, "10人")
    assert (turn.dialog, turn.step) == ("productivity", "hours")
    final = say(service, "1,800")
    assert (final.dialog, final.step) == (None, None)
    assert final.result == {"total_hours": 18000}
    # The summary's FAQ choice is answered by the service once the dialog is over.
    assert "faq:it2023-input-labor-cost" in values(final)
    assert "人件費" in details(pick(service, "faq:it2023-input-labor-cost"))


def test_engine_commands_work_through_the_service(service: ConversationService) -> None:
    say(service, "労働生産性を計算したい")
    say(service, "10")
    back = say(service, "戻る")
    assert back.step == "employees"
    assert pick(service, "cmd:help").replies[0].text == "従業員数の説明"
    say(service, "12")
    fixed = say(service, "従業員数を20に修正")
    assert fixed.step == "hours" and "修正しました" in texts(fixed)
    assert say(service, "1000").result == {"total_hours": 20000}
    say(service, "労働生産性を計算したい")
    cancelled = say(service, "やめる")
    assert cancelled.dialog is None


def test_choices_of_a_step_go_to_the_engine(service: ConversationService) -> None:
    turn = pick(service, "flow:withdrawal")
    assert "cancel-part" in values(turn)
    done = pick(service, "cancel-part")
    assert done.result == {"event": "cancel-part"} and done.dialog is None


def test_a_question_mid_flow_is_answered_and_the_flow_resumes_at_the_same_step(
    service: ConversationService, store: Store
) -> None:
    say(service, "労働生産性を計算したい")
    say(service, "10")
    side = say(service, "申請マイページのIDがわからない")
    assert GBIZ_PHONE in side.replies[0].text
    assert side.replies[-1].text == "年間の平均労働時間は？"
    assert (side.dialog, side.step) == ("productivity", "hours")
    assert "flow:" not in " ".join(values(side))  # no offer to start another flow mid-flow
    assert store.recent_queries()[0].status == "answered"
    assert say(service, "2000").result == {"total_hours": 20000}


def test_unparsable_text_mid_flow_is_reprompted(service: ConversationService, store: Store) -> None:
    say(service, "労働生産性を計算したい")
    turn = say(service, "たくさん")
    assert (turn.dialog, turn.step) == ("productivity", "employees")
    assert "数字で入力してください" in turn.replies[0].text
    assert store.recent_queries()[0].status == "dialog"


def test_a_program_choice_mid_flow_keeps_the_flow(service: ConversationService) -> None:
    say(service, "問い合わせの電話番号を教えて")
    say(service, "労働生産性を計算したい")
    turn = pick(service, "faq:it2020-contact")
    assert IT2020_PHONE in turn.replies[0].text
    assert (turn.dialog, turn.step) == ("productivity", "employees")


def test_restart_and_resume_on_the_same_database_file(kb: KnowledgeBase, policy: Policy, db_url: str) -> None:
    with Store.open(db_url) as first_store:
        first = ConversationService(kb, policy, first_store, flows=TOY_FLOWS)
        say(first, "労働生産性を計算したい", user="resumer")
        turn = say(first, "7", user="resumer")
        assert turn.step == "hours"
    # A new process: new engine, new store, new service on the same file.
    with Store.open(db_url) as second_store:
        second = ConversationService(kb, policy, second_store, flows=TOY_FLOWS)
        resumed = second.resume(CHANNEL, "resumer")
        assert "続きから" in resumed[0].text and resumed[-1].text == "年間の平均労働時間は？"
        assert second.resume(CHANNEL, "someone-else") == []
        final = say(second, "100", user="resumer")
        assert final.result == {"total_hours": 700}


def test_users_do_not_share_dialogs(service: ConversationService) -> None:
    say(service, "労働生産性を計算したい", user="a")
    other = say(service, "7", user="b")
    assert other.dialog is None
    assert say(service, "7", user="a").step == "hours"


def test_missing_flows_are_reported_not_started(kb: KnowledgeBase, policy: Policy, store: Store) -> None:
    service = ConversationService(kb, policy, store, flows={})
    turn = say(service, "労働生産性を計算したい")
    assert turn.dialog is None and "ご利用いただけません" in texts(turn)
    assert store.load(CHANNEL, "u1").state is None


def test_a_stored_dialog_whose_flow_changed_is_dropped_politely(
    kb: KnowledgeBase, policy: Policy, store: Store
) -> None:
    state = {
        "format": 1,
        "dialog": {"flow": "productivity", "step": "renamed-step", "values": {}, "history": []},
    }
    store.save(CHANNEL, "u1", state, None, 0)
    service = ConversationService(kb, policy, store, flows=TOY_FLOWS)
    turn = say(service, "申請マイページのIDがわからない")
    assert "続けられなくなりました" in turn.replies[0].text and GBIZ_PHONE in texts(turn)
    assert turn.dialog is None and store.load(CHANNEL, "u1").state is None


def test_unreadable_state_is_ignored(kb: KnowledgeBase, policy: Policy, store: Store) -> None:
    store.save(CHANNEL, "u1", {"dialog": "garbage"}, None, 0)
    service = ConversationService(kb, policy, store, flows=TOY_FLOWS)
    assert say(service, "労働生産性を計算したい").step == "employees"


# -- concurrency ----------------------------------------------------------------------


def test_a_concurrent_change_waits_for_the_turn_and_both_are_kept(
    kb: KnowledgeBase, policy: Policy, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process changes the conversation while a turn holds it: the change waits for the
    turn's commit (the row, on SQLite the database, is locked from the turn's read) and is made
    on the turn's result, so neither is lost."""
    with Store.open(db_url) as base, Store.open(db_url) as rival:
        base.save(CHANNEL, "u1", None, None, 0)
        threads: list[threading.Thread] = []
        original = UpdateUnit.save

        def rival_change() -> None:  # as another worker's turn would
            rival.run_update(CHANNEL, "u1", lambda unit: unit.save(unit.conversation().state, "it2023-multi"))

        def racing_save(unit: UpdateUnit, state: Any, program: Any) -> None:
            if not threads:
                threads.append(threading.Thread(target=rival_change))
                threads[0].start()
                time.sleep(0.2)  # the rival is now waiting for this turn
            original(unit, state, program)

        monkeypatch.setattr(UpdateUnit, "save", racing_save)
        service = ConversationService(kb, policy, base, flows=TOY_FLOWS)
        turn = say(service, "労働生産性を計算したい")
        threads[0].join(timeout=30)
        assert turn.step == "employees"
        record = base.load(CHANNEL, "u1")
        assert record.program == "it2023-multi"  # the rival's change survived
        assert record.state and record.state["dialog"]["step"] == "employees"  # and so did ours
        assert len(base.recent_queries()) == 1  # one turn, one log line


def test_conflicts_in_a_row_give_a_retry_message(
    kb: KnowledgeBase, policy: Policy, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_conflict(*_args: Any, **_kwargs: Any) -> int:
        raise ConcurrentUpdate("busy")

    monkeypatch.setattr(UpdateUnit, "save", always_conflict)
    service = ConversationService(kb, policy, store, flows=TOY_FLOWS)
    turn = say(service, "労働生産性を計算したい")
    assert turn.dialog is None and "もう一度" in texts(turn)
    assert store.recent_queries() == []


def test_arbitrary_text_never_breaks_a_turn(service: ConversationService) -> None:
    for text in ("", "   ", "\x00", "\ud800壊れた", "😀" * 100, "/", "faq:", "prog:", "あ" * 3000):
        turn = say(service, text)
        assert turn.replies


# -- the real flows (dialogs/flows.py), once they exist ----------------------------------


@pytest.fixture
def real_flows() -> Mapping[str, Flow]:
    module = pytest.importorskip("dialogs.flows")
    flows: Mapping[str, Flow] = module.FLOWS
    return flows


def test_real_flows_start_from_a_request(
    kb: KnowledgeBase, policy: Policy, store: Store, real_flows: Mapping[str, Flow]
) -> None:
    service = ConversationService(kb, policy, store)  # flows loaded from dialogs.flows
    assert set(service.flows) >= {"productivity", "withdrawal"}
    for user, request, flow in (
        ("p", "労働生産性を計算したい", "productivity"),
        ("w", "うちが辞退にあたるかチェックしたい", "withdrawal"),
    ):
        turn = say(service, request, user=user)
        assert turn.dialog == flow and turn.step is not None
        assert all(v.isascii() and len(v.encode()) <= 64 for v in values(turn)), values(turn)


def test_real_flow_resumes_after_a_restart_with_a_side_question(
    kb: KnowledgeBase, policy: Policy, db_url: str, real_flows: Mapping[str, Flow]
) -> None:
    with Store.open(db_url) as first_store:
        first = ConversationService(kb, policy, first_store)
        started = say(first, "労働生産性を計算したい")
        step = started.step
        # The productivity flow is IT導入補助金2023 複数社連携's: a side question is answered for that program.
        side = say(first, "問い合わせ先の電話番号は？")
        assert IT2023_PHONE in side.replies[0].text and IT2020_PHONE not in side.replies[0].text
        assert side.step == step
    with Store.open(db_url) as second_store:
        second = ConversationService(kb, policy, second_store)
        resumed = second.resume(CHANNEL, "u1")
        assert resumed and resumed[-1].text == started.replies[-1].text
        helped = say(second, "ヘルプ")
        assert (helped.dialog, helped.step) == ("productivity", step)


def test_a_not_found_mid_flow_offers_the_flows_programs_entries_and_a_pick_resumes_the_step(
    kb: KnowledgeBase, policy: Policy, store: Store, real_flows: Mapping[str, Flow]
) -> None:
    service = ConversationService(kb, policy, store)
    started = say(service, "労働生産性を計算したい")
    side = say(service, "効果報告の入力、一回で全部入力しきれないんだけど途中で保存できる？")
    assert side.replies[0].text.startswith(NOT_FOUND) and SUGGEST in side.replies[0].text
    offered = [c for c in side.replies[0].choices if c.value.startswith("faq:")]
    assert "faq:it2023-report-temporary-save" in [c.value for c in offered]
    assert all(not c.label.startswith("【") for c in offered)  # the flow's program is known
    assert side.replies[-1].text == started.replies[-1].text and side.step == started.step
    picked = pick(service, "faq:it2023-report-temporary-save")
    assert picked.replies[0].text.startswith("【IT導入補助金2023")
    assert picked.replies[-1].text == started.replies[-1].text and picked.step == started.step


def test_real_withdrawal_flow_finishes_with_a_result_and_related_answers(
    kb: KnowledgeBase, policy: Policy, store: Store, real_flows: Mapping[str, Flow]
) -> None:
    service = ConversationService(kb, policy, store)
    turn = say(service, "うちが辞退にあたるかチェックしたい")
    assert turn.dialog == "withdrawal"
    turn = pick(service, values(turn)[0])  # the first program offered
    for answer in (values(turn)[0], "2021/4/1、2021/6/1", "2022/3/1", "2021/7/31"):
        assert turn.dialog == "withdrawal", texts(turn)
        turn = say(service, answer)
    assert (turn.dialog, turn.step) == (None, None)
    assert turn.result is not None and {"withdrawal_required", "refund", "base_date"} <= set(turn.result)
    stored = store.load(CHANNEL, "u1").state
    assert stored is not None and stored["dialog"] is None  # only the finished flow, for corrections
    assert stored["finished"]["values"]["program"] == store.load(CHANNEL, "u1").program
    related = [v for v in values(turn) if v.startswith("faq:")]
    assert related and all(v.removeprefix("faq:") in kb.by_id for v in related)
    assert pick(service, related[0]).replies[0].text.startswith("【")


def test_picking_a_program_answers_with_the_entry_shown_for_it(service: ConversationService) -> None:
    # The 2023 guide's withdrawal rule was shown beside the 2020 answer: picking 2023 keeps it,
    # even though the question's detail (半年) is in the 2020 document only.
    both = say(service, "ツールを半年で解約したらどうなる？")
    assert "【IT導入補助金2020" in texts(both) and "【IT導入補助金2023" in texts(both)
    picked = pick(service, "prog:it2023-multi")
    assert "辞退手続き" in details(picked) and "記載がありません" not in texts(picked) + details(picked)
    assert "【IT導入補助金2020" not in texts(picked)


def test_a_restated_program_at_a_figure_step_is_acknowledged_not_read_as_an_amount(
    kb: KnowledgeBase, policy: Policy, store: Store
) -> None:
    real = ConversationService(kb, policy, store)  # the shipped flows
    say(real, "生産性の計算をお願いしたい")
    turn = say(real, "2023の複数社連携です")
    text = texts(turn)
    assert "2,023" not in text and "IT導入補助金2023 複数社連携" in text
    assert turn.dialog == "productivity" and turn.step is not None
    after = say(real, "2800万")
    assert "2,800万円" in texts(after)


def test_an_older_program_button_mid_flow_leaves_the_flows_program_and_the_remembered_one_alike(
    kb: KnowledgeBase, policy: Policy, store: Store
) -> None:
    real = ConversationService(kb, policy, store)  # the shipped flows
    say(real, "辞退にあたるか確認したい")
    turn = say(real, "2023の複数社連携")
    assert (turn.dialog, turn.step) == ("withdrawal", "event")
    pressed = pick(real, "prog:it2020")
    assert (pressed.dialog, pressed.step) == ("withdrawal", "event")  # asked again
    assert "2023 複数社連携で進めています" in texts(pressed)
    assert store.load(CHANNEL, "u1").program == "it2023-multi"


def test_quick_replies_mid_flow_ask_the_step_again(kb: KnowledgeBase, policy: Policy, store: Store) -> None:
    real = ConversationService(kb, policy, store)
    say(real, "労働生産性を計算したい")
    for value in ("go:contacts", "go:faq"):
        turn = pick(real, value)
        assert (turn.dialog, turn.step) == ("productivity", "operating_profit"), value
        assert "営業利益" in turn.replies[-1].text, value
    switch = pick(real, "go:calc")  # the other flow is offered with what it costs, not started
    assert switch.dialog == "productivity" and "入力は残りません" in texts(switch)


def test_a_malformed_kept_detail_does_not_lose_the_conversation() -> None:
    state = Conversation(
        dialog=DialogState("productivity", "hours", {"employees": 3}), details=[["rabc", "x"]]
    ).to_json()
    assert state is not None
    state["details"] = [None, ["r1"], ["r2", "ok"], [1, 2]]
    restored = Conversation.from_json(state, None)
    assert restored.dialog is not None and restored.dialog.values == {"employees": 3}
    assert restored.details == [["r2", "ok"]]


def test_offered_questions_are_tagged_only_while_the_program_is_unknown(
    kb: KnowledgeBase, policy: Policy
) -> None:
    from dataclasses import replace as changed

    from faq.replies import offer_labels

    outcome = policy.decide(LONG_SAVE_QUESTION)
    assert outcome.suggestions
    assert all(label.startswith("【") for label in offer_labels(kb, outcome))
    known = changed(outcome, program="it2023-multi")
    assert offer_labels(kb, known) == tuple(c.label for c in outcome.suggestions)
