"""The dialog engine on a small flow of its own: commands, corrections, branches, finish."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dialogs.engine import Flow, FlowError, Invalid, Step, Turn, advance, reprompt, start
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
    assert final.replies[-1].result == {"total": 12}


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
