"""Property: whatever a user types at any step of any flow, no stored value is lost.

A value leaves the state only by an explicit correction (the turn says it changed
that value), 「戻る」 (the step gone back to), 「最初から」 or ending the flow
(「やめる」); a finished flow keeps every value for later corrections.  Inputs are
arbitrary text, and text built from the words that matter (labels, values,
commands, correction phrasings, questions) so that the interesting paths are hit.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.service import program_reader
from dialogs.engine import BACK, CANCEL, RESTART, Context, Turn, _bare, _clean, advance, revise, start
from dialogs.flows import FLOWS
from dialogs.types import DialogState, UserInput
from faq import load_kb

KB = load_kb()


CONTEXT = Context(today=date(2026, 11, 28), read_program=program_reader(KB))

PATHS: dict[str, list[list[str]]] = {
    "productivity": [
        ["3000万", "2500万", "500万", "10", "1800", "はい", "3000", "1", "いいえ"],
        ["▲500万", "内訳", "2000万", "100万", "0", "300万", "5", "1900", "いいえ"],
    ],
    "withdrawal": [
        ["it2020", "一部解約", "2021/4/1、2021/6/1", "2022/3/1", "2021/7/31"],
        ["both", "廃業", "2021/4/1", "2024/1/31", "2021/9/30"],
        ["it2023-multi", "全部解約"],
    ],
}
WORDS = [
    "3000万", "▲200万", "赤字500万", "0", "ゼロ", "-1", "10人", "0人", "月150時間", "1800時間", "0時間",
    "はい", "いいえ", "わからない", "覚えてない", "そうです", "2021/4/1", "2020/1/1", "今日", "先月末",
    "去年の4月", "初年度", "2", "2020", "2023", "両方", "通常枠", "内訳", "戻る", "最初から", "やめる",
    "ヘルプ", "続きから", "人件費を3000万に修正", "やっぱり営業利益は100万", "従業員は12人の間違いでした",
    "営業利益2800万、減価償却300万", "解約日は2030/1/1", "納品日を2022/1/1に修正", "完了日じゃなくて2021/1/1",
    "実績値は4,100です", "人件費に賞与は含まれますか？", "こんにちは", "時間", "人件費", "営業利益は",
]  # fmt: skip


def _roundtrip(state: DialogState) -> DialogState:
    return DialogState.from_json(json.loads(json.dumps(state.to_json())))


def _walk(flow_id: str, path: list[str], steps: int) -> tuple[DialogState | None, DialogState | None]:
    """The state after `steps` answers of a path, and the finished state when the path ran out."""
    flow = FLOWS[flow_id]
    turn = start(flow, context=CONTEXT)
    finished = None
    for answer in path[:steps]:
        assert turn.state is not None
        turn = advance(flow, _roundtrip(turn.state), UserInput(answer), CONTEXT)
        finished = turn.finished or finished
    return turn.state, finished


def _changed_by_correction(turn: Turn, step_title: str) -> bool:
    said = "\n".join(r.text for r in turn.replies)
    return (f"{step_title}を " in said and "修正しました" in said) or (
        f"{step_title} " in said and "→" in said
    )


def _assert_kept(flow_id: str, before: dict[str, Any], turn: Turn, text: str, history: list[str]) -> None:
    word = _bare(_clean(text))
    if word in RESTART or word in CANCEL:
        return
    after_state = turn.state or turn.finished
    assert after_state is not None, (text, [r.text for r in turn.replies])
    after = after_state.values
    flow = FLOWS[flow_id]
    for key, value in before.items():
        if word in BACK and history and key == history[-1]:
            continue
        if after.get(key) == value:
            continue
        assert _changed_by_correction(turn, flow.step(key).title), (text, key, value, after.get(key))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flow_id=st.sampled_from(sorted(PATHS)),
    which=st.integers(0, 2),
    steps=st.integers(0, 9),
    text=st.one_of(
        st.sampled_from(WORDS),
        st.text(max_size=40),
        st.tuples(st.sampled_from(WORDS), st.sampled_from(WORDS)).map(lambda p: "、".join(p)),
    ),
)
def test_no_value_is_lost_at_any_step(flow_id: str, which: int, steps: int, text: str) -> None:
    paths = PATHS[flow_id]
    path = paths[which % len(paths)]
    state, finished = _walk(flow_id, path, min(steps, len(path)))
    flow = FLOWS[flow_id]
    if state is not None:
        turn = advance(flow, _roundtrip(state), UserInput(text), CONTEXT)
        assert turn.replies
        _assert_kept(flow_id, dict(state.values), turn, text, state.history)
    else:
        assert finished is not None
        revised = revise(flow, _roundtrip(finished), UserInput(text), CONTEXT)
        if revised is not None:
            assert revised.replies
            _assert_kept(flow_id, dict(finished.values), revised, text, finished.history)
