"""The dialog engine on a small flow of its own: commands, corrections, branches, finish."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from dialogs.engine import (
    Confirm,
    Context,
    Flow,
    FlowError,
    Invalid,
    Reask,
    Step,
    Turn,
    advance,
    context_of,
    reprompt,
    revise,
    start,
)
from dialogs.types import DialogState, Reply, ReplyChoice, UserInput


def _number(text: str, values: Any) -> int:
    digits = text.replace("人", "").replace(",", "")
    if not digits.isdigit():
        raise Invalid(f"「{text}」は数として読めませんでした。数字で入力してください（例：10）。")
    return int(digits)


def _yes_no(text: str, values: Any) -> bool:
    if text in ("はい", "yes"):
        return True
    if text in ("いいえ", "no"):
        return False
    raise Invalid("「はい」か「いいえ」でお答えください。")


FLOW = Flow(
    id="toy",
    title="テスト計算",
    intro="テストの計算をご案内します。",
    steps=(
        Step("a", "Aの人数は？", _number, "Aの説明", labels=("A", "Aの人数")),
        Step(
            "more",
            "Bも入力しますか？",
            _yes_no,
            "Bの説明",
            choices=(ReplyChoice("はい", "はい"), ReplyChoice("いいえ", "いいえ")),
        ),
        Step(
            "b",
            "Bの人数は？",
            _number,
            "Bの説明",
            labels=("B",),
            when=lambda v: bool(v.get("more")),
            condition="Bあり",
        ),
        Step("c", "Cの人数は？", _number, "Cの説明", labels=("C",)),
    ),
    finish=lambda v: [
        Reply(
            f"合計 {sum(x for x in v.values() if type(x) is int)}",
            result={"total": sum(x for x in v.values() if type(x) is int)},
        )
    ],
)


def say(state: DialogState, text: str) -> Turn:
    return advance(FLOW, state, UserInput(text))


def test_start_asks_the_first_question() -> None:
    turn = start(FLOW)
    assert turn.state is not None and turn.state.step == "a"
    assert [r.text for r in turn.replies] == ["テストの計算をご案内します。", "Aの人数は？"]


def test_valid_answers_walk_the_steps_and_finish_with_a_result() -> None:
    state = start(FLOW).state
    assert state is not None
    for text, expected in (("3人", "more"), ("はい", "b"), ("4", "c")):
        turn = say(state, text)
        assert turn.state is not None and turn.state.step == expected
        state = turn.state
    final = say(state, "5")
    assert final.state is None
    assert final.replies[-2].result == {"total": 12}  # then the recap of the values
    assert [c.value for c in final.replies[-1].choices] == [
        "cmd:edit.a",
        "cmd:edit.more",
        "cmd:edit.b",
        "cmd:edit.c",
    ]


def test_branch_is_skipped_when_it_does_not_apply() -> None:
    state = start(FLOW).state
    assert state is not None
    state = say(state, "3").state
    assert state is not None
    turn = say(state, "いいえ")
    assert turn.state is not None and turn.state.step == "c"


def test_invalid_input_is_reprompted_and_marked_not_understood() -> None:
    state = start(FLOW).state
    assert state is not None
    turn = say(state, "たくさん")
    assert not turn.understood
    assert turn.state == state
    assert "数字で入力してください" in turn.replies[0].text
    assert turn.replies[-1].text == "Aの人数は？"


def test_back_cancel_restart_help() -> None:
    state = start(FLOW).state
    assert state is not None
    state2 = say(state, "3").state
    assert state2 is not None
    back = say(state2, "戻る")
    assert back.state is not None and back.state.step == "a" and "a" not in back.state.values
    assert "3" in back.replies[0].text
    helped = say(state2, "ヘルプ")
    assert helped.state == state2 and helped.replies[0].text == "Bの説明"
    restarted = say(state2, "最初から")
    assert restarted.state is not None and restarted.state.step == "a" and not restarted.state.values
    cancelled = say(state2, "キャンセル")
    assert cancelled.state is None and "終了" in cancelled.replies[0].text
    by_button = advance(FLOW, state2, UserInput(choice="cmd:back"))
    assert by_button.state is not None and by_button.state.step == "a"


def test_back_at_the_first_step_stays() -> None:
    state = start(FLOW).state
    assert state is not None
    turn = say(state, "戻る")
    assert turn.state == state


def test_correction_changes_an_earlier_answer_and_stays_on_the_step() -> None:
    state = start(FLOW).state
    assert state is not None
    for text in ("3", "はい"):
        nxt = say(state, text).state
        assert nxt is not None
        state = nxt
    turn = say(state, "Aを7に修正")
    assert turn.state is not None and turn.state.step == "b" and turn.state.values["a"] == 7
    assert "修正しました" in turn.replies[0].text


def test_correction_that_switches_branch_drops_answers_that_no_longer_apply() -> None:
    state = start(FLOW).state
    assert state is not None
    for text in ("3", "はい", "4"):
        nxt = say(state, text).state
        assert nxt is not None
        state = nxt
    assert state.step == "c"


def test_state_survives_json() -> None:
    state = start(FLOW).state
    assert state is not None
    state = say(state, "3").state
    assert state is not None
    again = DialogState.from_json(json.loads(json.dumps(state.to_json())))
    assert again == state
    assert reprompt(FLOW, again)[0].text == "Bも入力しますか？"


def test_state_of_another_flow_is_refused() -> None:
    with pytest.raises(FlowError):
        advance(FLOW, DialogState("other", "a"), UserInput("1"))


# -- sentences, corrections in any wording, checks at the step, confirmations, after the result ----


def _amount(text: str, values: Any) -> int:
    found = text.replace(",", "").removesuffix("円").removesuffix("万")
    if not found.isdigit():
        raise Invalid(f"「{text}」は金額として読めませんでした。")
    return int(found) * (10_000 if text.endswith("万") else 1)


def _at_least_a(value: Any, values: Any) -> None:
    if "a" in values and value < values["a"]:
        raise Invalid(f"Cは A（{values['a']}）以上です。")


def _monthly(text: str, values: Any) -> int:
    if text.startswith("月"):
        raise Confirm(int(text[1:]) * 12, f"年{int(text[1:]) * 12}として入力しますか？")
    return _amount(text, values)


RICH = Flow(
    id="rich",
    title="文の計算",
    intro="文で答えられる計算です。",
    steps=(
        Step("a", "Aは？", _amount, "Aの説明", labels=("売上",), unsure="Aは帳簿で確認できます。"),
        Step("b", "Bは？", _amount, "Bの説明", labels=("経費",)),
        Step("c", "Cは？", _monthly, "Cの説明", labels=("在庫",), check=_at_least_a),
    ),
    finish=lambda v: [Reply(f"合計 {sum(v.values())}", result={"total": sum(v.values())})],
)


def talk(messages: list[str]) -> list[Turn]:
    turn = start(RICH)
    turns = [turn]
    for message in messages:
        assert turn.state is not None
        turn = advance(RICH, turn.state, UserInput(message))
        turns.append(turn)
    return turns


def test_a_value_in_a_sentence_is_read_and_said_back() -> None:
    turn = talk(["えーと、売上は300万です"])[-1]
    assert turn.state is not None and turn.state.values == {"a": 3_000_000} and turn.state.step == "b"
    assert turn.replies[0].text == "売上：3000000\n\nBは？"


def test_several_named_values_fill_their_steps_and_are_not_asked_again() -> None:
    turn = talk(["売上300万、経費100万"])[-1]
    assert turn.state is not None and turn.state.values == {"a": 3_000_000, "b": 1_000_000}
    assert turn.state.step == "c"


@pytest.mark.parametrize(
    "wording",
    [
        "やっぱり売上は500万",
        "売上は500万の間違いでした",
        "売上は300万じゃなくて500万",
        "さっきの売上を500万に",
        "売上を500万に修正",
    ],
)
def test_corrections_in_ordinary_wording(wording: str) -> None:
    turn = talk(["300万", wording])[-1]
    assert turn.state is not None and turn.state.values == {"a": 5_000_000} and turn.state.step == "b"
    assert "修正しました" in turn.replies[0].text


def test_a_value_inside_a_sentence_without_a_label() -> None:
    turn = talk(["たしか 300万 くらい"])[-1]
    assert turn.state is not None and turn.state.values == {"a": 3_000_000}


def test_two_different_values_are_not_guessed() -> None:
    turn = talk(["100万と200万"])[-1]
    assert not turn.understood and turn.state is not None and turn.state.values == {}


def test_not_knowing_gets_the_steps_own_help_and_a_question_is_marked_for_the_faq() -> None:
    unsure = talk(["わからない"])[-1]
    assert unsure.understood and unsure.replies[0].text == "Aは帳簿で確認できます。"
    question = talk(["経費には何が入りますか？"])[-1]
    assert not question.understood and question.question
    statement = talk(["そうです"])[-1]
    assert not statement.understood and not statement.question


def test_a_combination_is_checked_when_the_value_is_given() -> None:
    turns = talk(["300万", "100万", "200万"])
    assert not turns[-1].understood and turns[-1].state is not None and turns[-1].state.step == "c"
    assert "以上" in turns[-1].replies[0].text
    # A correction that breaks the combination is refused, and nothing is lost.
    turns = talk(["100万", "100万", "在庫300万"])
    assert turns[-1].state is None and turns[-1].finished is not None
    bad = revise(RICH, turns[-1].finished, UserInput("売上を400万に修正"))
    assert bad is not None and bad.finished == turns[-1].finished and "合いません" in bad.replies[0].text


def test_a_reading_to_confirm_waits_for_yes_or_no() -> None:
    turns = talk(["1", "2", "月10"])
    assert turns[-1].state is not None and turns[-1].state.pending is not None
    assert [c.value for c in turns[-1].replies[0].choices] == ["cmd:yes", "cmd:no"]
    done = advance(RICH, turns[-1].state, UserInput("はい"))
    assert done.replies[-2].result == {"total": 123}
    again = advance(RICH, turns[-1].state, UserInput("いいえ"))
    assert again.state is not None and again.state.step == "c" and again.state.pending is None


def test_after_the_result_a_correction_recomputes_and_back_reopens_the_last_step() -> None:
    final = talk(["1", "2", "3"])[-1]
    assert final.finished is not None
    fixed = revise(RICH, final.finished, UserInput("やっぱり経費は5"))
    assert fixed is not None and fixed.replies[-2].result == {"total": 9}
    assert "2 → 5" in fixed.replies[0].text and fixed.finished is not None
    reopened = revise(RICH, final.finished, UserInput("戻る"))
    assert reopened is not None and reopened.state is not None and reopened.state.step == "c"
    assert reopened.state.values == {"a": 1, "b": 2}
    assert revise(RICH, final.finished, UserInput("経費とは何ですか？")) is None


def test_finish_can_send_the_user_back_to_the_step_whose_value_it_cannot_use() -> None:
    def finish(values: Any) -> list[Reply]:
        raise Reask("b", "Bが大きすぎます。")

    flow = Flow("reask", "再質問", "説明", RICH.steps[:2], finish)
    turn = start(flow)
    assert turn.state is not None
    turn = advance(flow, turn.state, UserInput("1"))
    assert turn.state is not None
    turn = advance(flow, turn.state, UserInput("2"))
    assert turn.state is not None and turn.state.step == "b" and turn.state.values == {"a": 1, "b": 2}
    assert "大きすぎます" in "\n".join(r.text for r in turn.replies)


def test_the_clock_comes_from_the_context() -> None:
    def day(text: str, values: Any) -> str:
        today = context_of(values).today
        assert today is not None
        return today.isoformat() if text == "今日" else text

    flow = Flow(
        "clock",
        "日付",
        "説明",
        (Step("d", "日付は？", day, "説明"),),
        lambda v: [Reply(v["d"], result=dict(v))],
    )
    state = start(flow).state
    assert state is not None
    turn = advance(flow, state, UserInput("今日"), Context(today=date(2026, 11, 28)))
    assert turn.replies[-2].result == {"d": "2026-11-28"}
