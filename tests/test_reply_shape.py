"""The shape of every reply of both flows, and of the quick replies: what a person reads on a phone.

Each flow is walked through its branches (every verdict, bad input, a confirmation,
back, a correction, a change from the recap) and every reply is held to the same
rules: no internal identifier in the text or the details, a headline of at most
three lines that opens the text, a first message that fits a phone screen, statute
article numbers and sources in the details only, each document once.  Values typed
are read back in the one money format, a loss with ▲; the recap's buttons ask one
value again and recompute the result.  /start is short and offers the quick replies,
and each quick reply answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from test_flows import converse

from bot.service import QUICK_CHOICES, STALE_CHOICE, WELCOME, ConversationService, ServiceTurn, program_reader
from bot.store import Store
from dialogs.choices import PROGRAM_BUTTONS
from dialogs.engine import EDIT, Context, Turn
from dialogs.types import Reply, UserInput
from faq import KnowledgeBase, Policy, load_kb
from rules import TOKYO
from tests.reply_checks import FIRST_MESSAGE_MAX, HEADLINE_MAX_LINES, internal_tokens

KB = load_kb()
OPEN = datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO)  # a Friday morning: the lines are open
CONTEXT = Context(today=date(2026, 11, 28), read_program=program_reader(KB), now=OPEN)
TITLES = tuple(doc.title for doc in KB.documents.values())
ARTICLE = re.compile(r"第\d+条")
BASIC = ["3000万", "2500万", "500万", "10人", "1800時間"]

WALKS: dict[str, tuple[str, list[str]]] = {
    "p-meets": ("productivity", [*BASIC, "はい", "3000", "1", "いいえ"]),
    "p-misses-6": ("productivity", [*BASIC, "はい", "3150", "1", "はい"]),
    "p-two-years": ("productivity", [*BASIC, "はい", "2000", "2", "いいえ"]),
    "p-no-growth": ("productivity", [*BASIC, "いいえ"]),
    "p-negative": ("productivity", ["▲9000万", "2500万", "500万", "10", "1800", "はい", "3000", "1", "いいえ"]),
    "p-zero-base": ("productivity", [*BASIC, "はい", "0", "1", "いいえ"]),
    "p-breakdown": ("productivity", ["赤字", "500万", "はい", "内訳", "2000万", "100万", "なし", "0", "十人", "1800", "いいえ"]),
    "p-errors": ("productivity", ["たくさん", "3000万", "2500", "いいえ", "2500万", "戻る", "2500万", "500万", "0人", "10人", "月150時間", "はい", "いいえ"]),
    "p-correction": ("productivity", [*BASIC[:3], "人件費を2000万に修正", "10", "1800", "いいえ"]),
    "w-2020-within-year": ("withdrawal", ["2020", "全部解約", "2021/4/1、2021/6/1", "2021/12/1", "2021/9/30"]),
    "w-2020-window-part": ("withdrawal", ["2020", "一部解約", "2021/4/1", "2023/5/1", "2021/9/30"]),
    "w-2020-after": ("withdrawal", ["2020", "全部解約", "2021/4/1", "2028/5/1", "2021/9/30"]),
    "w-2020-closure": ("withdrawal", ["2020", "廃業", "2021/4/1", "2024/1/31", "2021/9/30"]),
    "w-2020-boundary-early": ("withdrawal", ["2020", "一部解約", "2021/4/1", "2022/4/2", "2022/5/1"]),
    "w-2023-part": ("withdrawal", ["複数社連携", "一部解約"]),
    "w-2023-closure": ("withdrawal", ["複数社連携", "廃業"]),
    "w-both-part": ("withdrawal", ["両方", "一部解約", "2021/4/1", "2022/4/2", "2022/5/1"]),
    "w-both-closure": ("withdrawal", ["その他", "わからない", "廃業", "2021/4/1", "2024/1/31", "2021/9/30"]),
    "w-bad-dates": ("withdrawal", ["2020", "全部", "2021/2/30", "2021/4/1", "2020/12/1", "2021/12/1", "2021/9/30"]),
}  # fmt: skip


def walk(flow_id: str, messages: list[str]) -> list[Turn]:
    """A flow walked through its JSON state, at a time when the lines are open."""
    return converse(flow_id, messages, CONTEXT)


def check_shape(reply: Reply, where: str) -> None:
    shown = f"{reply.text}\n{reply.details}"
    assert not internal_tokens(shown), (where, internal_tokens(shown), shown)
    assert len(reply.text) <= FIRST_MESSAGE_MAX, (where, len(reply.text), reply.text)
    if reply.headline:
        assert reply.text.startswith(reply.headline), (where, reply.headline)
        assert len(reply.headline.splitlines()) <= HEADLINE_MAX_LINES, (where, reply.headline)
    assert not ARTICLE.search(reply.text), (where, "a statute article in the first message", reply.text)
    for title in TITLES:
        assert shown.count(title) <= 1, (where, title)
    for choice in reply.choices:
        assert choice.value.isascii() and len(choice.value.encode()) <= 64, (where, choice)


@pytest.mark.parametrize("name", sorted(WALKS))
def test_every_reply_of_every_flow_has_the_reply_shape(name: str) -> None:
    flow_id, messages = WALKS[name]
    turns = walk(flow_id, messages)
    for message, turn in zip(["(start)", *messages], turns, strict=True):
        for reply in turn.replies:
            check_shape(reply, f"{name}: {message}")
    last = turns[-1]
    assert last.state is None, (name, [r.text for r in last.replies])
    result = next(r for r in last.replies if r.result is not None)
    assert result.headline and result.details, name
    assert "出典：" in result.details and "出典" not in result.text
    assert re.search(r"受付中|時間外", result.text) and re.search(r"0570-\d{3}-\d{3}", result.text)
    assert last.replies[-1].choices and all(c.value.startswith(EDIT) for c in last.replies[-1].choices)


def test_statute_articles_and_the_date_rules_are_in_the_details() -> None:
    result = next(r for r in walk("withdrawal", ["複数社連携", "一部解約"])[-1].replies if r.result)
    assert ARTICLE.search(result.details) and not ARTICLE.search(result.text)
    assert result.headline.startswith("辞退届の提出が必要です")
    result = next(r for r in walk(*WALKS["w-2020-within-year"])[-1].replies if r.result)
    assert "日付の数え方：" in result.details and "1年未満の期限：2022年6月1日" in result.text
    assert "全額返還" in result.headline


def test_the_productivity_verdict_and_its_figure_come_first() -> None:
    result = next(r for r in walk(*WALKS["p-meets"])[-1].replies if r.result)
    assert result.headline == "伸び率は年率11.11%で、公表の基準（年率平均5%以上）に達しています。"
    assert "3,333.33円/時間" in result.text and "付加価値額 = 営業利益 3,000万円" in result.details
    assert "端数処理：" in result.details and "受付中" in result.text  # the line is open on a Friday morning
    assert len(result.text) <= FIRST_MESSAGE_MAX


def _both_result(messages: list[str]) -> Reply:
    reply = next(r for r in walk("withdrawal", ["両方", *messages])[-1].replies if r.result)
    check_shape(reply, " ".join(messages))
    return reply


def test_two_programs_keep_the_date_warnings_in_the_first_message() -> None:
    # The cancellation is before the completion and on the day after the one-year limit.
    text = _both_result(["一部解約", "2021/4/1", "2022/4/2", "2022/5/1"]).text
    assert "解約日が補助事業の完了日より前です。" in text and "解約日が期限の境目の日にあたります。" in text
    # Both programs require withdrawal: that a partial cancellation counts is said once.
    assert text.count("一部の解約でも、補助事業の辞退とみなされます。") == 1
    text = _both_result(["全部解約", "2021/4/1", "2022/4/2", "2022/5/1"]).text
    assert "解約日が補助事業の完了日より前です。" in text and "一部の解約" not in text


def test_the_partial_cancellation_line_sits_only_with_a_program_that_requires_withdrawal() -> None:
    text = _both_result(["一部解約", "2021/4/1", "2028/5/1", "2021/9/30"]).text
    it2020, it2023 = text.split("【IT導入補助金2023 複数社連携】")
    assert "一部の解約" not in it2020 and "辞退届の提出が必要です" in it2023
    assert it2023.count("一部の解約でも、補助事業の辞退とみなされます。") == 1


def test_values_are_read_back_in_the_one_money_format() -> None:
    turns = walk("productivity", ["3000万", "▲500万"])
    assert turns[1].replies[0].text.startswith("営業利益：3,000万円\n\n人件費")
    turns = walk("productivity", ["赤字500万", "2,000万円"])
    assert turns[1].replies[0].text.startswith("営業利益：▲500万円\n")
    assert turns[2].replies[0].text.startswith("人件費：2,000万円\n")


def test_the_recap_lists_every_value_with_a_change_button() -> None:
    last = walk(*WALKS["p-meets"])[-1]
    recap = last.replies[-1]
    assert "営業利益：3,000万円" in recap.text and "報告年度：1年度目" in recap.text
    assert [c.label for c in recap.choices][:2] == ["営業利益を変更", "人件費を変更"]
    assert len(recap.choices) == 9 and all(len(c.label) <= 12 for c in recap.choices)


# ---------------------------------------------------------------- through the service


@pytest.fixture
def service(kb: KnowledgeBase, policy: Policy, tmp_path: Path) -> Iterator[ConversationService]:
    with Store.open(f"sqlite:///{tmp_path / 'shape.db'}") as store:
        yield ConversationService(kb, policy, store, clock=lambda: date(2026, 11, 28))


def say(service: ConversationService, message: str) -> ServiceTurn:
    if message.startswith("@"):
        return service.handle("phone", "u", UserInput(choice=message[1:]))
    return service.handle("phone", "u", UserInput(message))


def test_a_change_button_asks_that_value_again_and_recomputes(service: ConversationService) -> None:
    for message in ["労働生産性を計算したい", *BASIC, "いいえ"]:
        turn = say(service, message)
    assert turn.result is not None and turn.result["value_added"] == 60_000_000
    recap = turn.replies[-1]
    change = next(c for c in recap.choices if c.label == "営業利益を変更")
    asked = say(service, f"@{change.value}")
    assert asked.step == "operating_profit" and "いまの値：3,000万円" in asked.replies[0].text
    redone = say(service, "▲500万")
    assert redone.result is not None and redone.result["value_added"] == 25_000_000
    assert "営業利益を 3,000万円 から ▲500万円 に修正しました。" in redone.replies[0].text
    assert "営業利益：▲500万円" in redone.replies[-1].text  # the recap again, with the new value
    # A change that opens a branch asks what the branch needs, then recomputes.
    say(service, "@cmd:edit.has_baseline")
    for message in ["はい", "3000", "1"]:
        say(service, message)
    final = say(service, "いいえ")
    assert final.result is not None and final.result["growth_rate"] is not None
    for reply in [*asked.replies, *redone.replies, *final.replies]:
        check_shape(reply, "change")


def test_back_or_cancel_during_a_change_gives_the_result_back_unchanged(service: ConversationService) -> None:
    for message in ["辞退にあたるか確認したい", "2020", "全部解約", "2021/4/1", "2021/12/1"]:
        say(service, message)
    result = say(service, "2021/9/30")
    assert result.result is not None
    for leave in ["@cmd:back", "戻る", "@cmd:cancel", "やめる"]:
        asked = say(service, "@cmd:edit.cancelled")
        assert asked.step == "cancelled" and "いまの値：2021年12月1日" in asked.replies[0].text
        kept = say(service, leave)
        assert kept.dialog is None and kept.result == result.result, leave
        assert kept.replies[0].text == "変更をやめました。結果はそのままです。"
        assert kept.replies[-1].text == result.replies[-1].text  # the recap, every value kept
        for reply in kept.replies:
            check_shape(reply, leave)
    # The change can still be made afterwards, and 戻る after the result still reopens the last step.
    say(service, "@cmd:edit.cancelled")
    redone = say(service, "2022/6/1")
    assert "解約日を 2021年12月1日 から 2022年6月1日 に修正しました。" in redone.replies[0].text
    assert say(service, "戻る").step is not None


def test_a_withdrawal_change_of_program_asks_the_dates_it_needs(service: ConversationService) -> None:
    for message in ["辞退になるか確認したい", "複数社連携", "全部解約"]:
        turn = say(service, message)
    assert turn.result is not None and turn.result["program"] == "it2023-multi"
    say(service, "@cmd:edit.program")
    assert say(service, "2020").step == "delivered"
    for message in ["2021/4/1", "2021/12/1"]:
        turn = say(service, message)
    turn = say(service, "2021/9/30")
    assert turn.result is not None and turn.result["program"] == "it2020" and turn.result["refund"] == "full"


def test_start_is_short_with_the_quick_replies(service: ConversationService) -> None:
    turn = say(service, "/start")
    assert len(turn.replies[0].text) <= 200 and turn.replies[0].text == WELCOME
    assert turn.replies[0].choices == QUICK_CHOICES
    assert not internal_tokens(WELCOME) and "it2023" not in WELCOME
    assert [c.label for c in QUICK_CHOICES] == ["よくある質問", "計算する", "問い合わせ先", "最初から"]


def test_each_quick_reply_answers(service: ConversationService) -> None:
    for choice in QUICK_CHOICES:
        turn = say(service, f"@{choice.value}")
        assert turn.replies and turn.replies[0].text != STALE_CHOICE, choice
        for reply in turn.replies:
            check_shape(reply, choice.value)
    calc = say(service, "@go:calc")
    assert [c.value for c in calc.replies[0].choices] == ["flow:productivity", "flow:withdrawal"]
    contacts = say(service, "@go:contacts").replies[0].text
    assert "0570-002-551" in contacts and "0570-666-376" in contacts
    assert len(re.findall(r"受付中|時間外", contacts)) == 2
    shown = say(service, "@go:contacts").replies[0]
    assert shown.headline and shown.text.startswith(shown.headline)
    assert [c.value for c in shown.choices] == ["go:faq", "go:calc", "go:reset"]  # not a dead end
    categories = say(service, "@go:faq").replies[0].choices
    assert categories and all(c.value.startswith("go:faq.") for c in categories)
    entries = say(service, f"@{categories[0].value}").replies[0].choices
    assert entries and all(c.value.startswith("faq:") for c in entries)
    answer = say(service, f"@{entries[0].value}")
    assert answer.entry_id == entries[0].value.removeprefix("faq:")
    say(service, "労働生産性を計算したい")
    reset = say(service, "@go:reset")
    assert reset.dialog is None and reset.replies[0].choices == QUICK_CHOICES


def test_the_program_buttons_are_the_same_wherever_the_program_is_asked(service: ConversationService) -> None:
    labels = [label for label, _ in PROGRAM_BUTTONS]
    assert labels == ["2020", "2023複数社連携", "それ以外", "わからない"]
    flow_step = say(service, "辞退になるか確認したい").replies[-1]
    assert [c.label for c in flow_step.choices][:4] == labels
    both = say(service, "/program").replies[0]
    assert [c.label for c in both.choices] == labels
    say(service, "/reset")
    faq = say(service, "問い合わせの電話番号を教えて").replies[0]
    assert [c.label for c in faq.choices][:4] == labels  # then 詳しく for each program
    say(service, "/reset")
    hand = say(service, "担当者と話したい")
    assert [c.label for c in hand.replies[-1].choices][:4] == labels


def test_a_question_the_flows_program_does_not_cover_is_short_with_that_programs_line(
    service: ConversationService,
) -> None:
    say(service, "辞退になるか確認したい")
    say(service, "@prog:it2020")
    turn = say(service, "省エネ補助金の申請の締め切りはいつですか")
    silent, again = turn.replies[0], turn.replies[-1]
    assert silent.headline and silent.text.startswith(silent.headline)
    assert len(silent.text) <= FIRST_MESSAGE_MAX and not internal_tokens(silent.text)
    assert "0570-002-551" in silent.text and "0570-666-376" not in silent.text  # the 2020 line only
    assert turn.dialog == "withdrawal" and again.choices  # the same step is asked again


def test_the_question_that_started_a_flow_is_answered_in_the_same_shape(service: ConversationService) -> None:
    asked = say(service, "ツールを半年で解約したら辞退にあたるか判定したい")
    assert asked.dialog == "withdrawal" and asked.step == "program"
    button = next(c for c in asked.replies[-1].choices if c.label == "2020")
    turn = say(service, f"@{button.value}")
    answers = [r for r in turn.replies if r.details]
    assert answers, [r.text for r in turn.replies]
    first = answers[0]
    assert first.text.startswith(first.headline) and len(first.text) <= FIRST_MESSAGE_MAX
    assert "最初のご質問" in first.text and "出典：" in first.details and "出典：" not in first.text


def test_an_older_answers_program_button_answers_the_flows_program_question(
    service: ConversationService,
) -> None:
    asked = say(service, "ツールを半年で解約したら辞退にあたるか判定したい")
    assert asked.step == "program"
    turn = say(service, "@prog:it2020")  # a button under an earlier two-program answer
    assert (turn.dialog, turn.step) == ("withdrawal", "event")
    assert "ご質問を入力してください" not in "".join(r.text for r in turn.replies)
