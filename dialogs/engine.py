"""The dialog engine: a pure function from (flow, state, input) to (state, replies).

Flows are data (dialogs/flows.py): steps with stable string ids, prompts and
parsers.  The engine owns what every flow shares, so each flow gets it for
free and behaves the same way:
  * 「戻る」 goes back one step, 「やめる」/「キャンセル」 ends, 「最初から」 restarts,
    「ヘルプ」 explains the current question;
  * 「人件費を3000万に修正」 corrects an earlier answer without leaving the step;
  * an answer that does not parse is re-asked with what was understood, and the
    turn is marked not understood so the service can try it as a FAQ question.
No I/O and no clock: the state is plain JSON, so it can be stored anywhere and
resumed next week.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dialogs.types import DialogState, Reply, ReplyChoice, UserInput

Values = Mapping[str, Any]


class Invalid(Exception):
    """Raised by a step's parser: `message` says what was understood and what is expected."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FlowError(Exception):
    """A flow definition or a stored state does not fit together (a bug or stale data, not user input)."""


@dataclass(frozen=True)
class Step:
    id: str
    prompt: str | Callable[[Values], str]
    parse: Callable[[str, Values], Any]
    help: str
    choices: tuple[ReplyChoice, ...] = ()
    # Words that name this step's value in a correction (「人件費を3000万に修正」).
    labels: tuple[str, ...] = ()
    # The step is asked only when this holds for the values so far (branches);
    # `condition` says the same in words, for the flow diagram.
    when: Callable[[Values], bool] | None = None
    condition: str = ""
    # How a stored value is shown back to the user.
    show: Callable[[Any], str] = str

    def applies(self, values: Values) -> bool:
        return self.when is None or self.when(values)

    def prompt_text(self, values: Values) -> str:
        return self.prompt(values) if callable(self.prompt) else self.prompt


@dataclass(frozen=True)
class Flow:
    id: str
    title: str
    intro: str
    steps: tuple[Step, ...]
    # Turns the collected values into the closing replies (summary, result, next steps).
    finish: Callable[[Values], list[Reply]]
    by_id: dict[str, Step] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise FlowError(f"flow {self.id!r} has duplicate step ids")
        object.__setattr__(self, "by_id", {s.id: s for s in self.steps})

    def step(self, step_id: str) -> Step:
        try:
            return self.by_id[step_id]
        except KeyError:
            raise FlowError(f"flow {self.id!r} has no step {step_id!r}") from None

    def next_step(self, after: str | None, values: Values) -> Step | None:
        start = 0 if after is None else [s.id for s in self.steps].index(after) + 1
        return next((s for s in self.steps[start:] if s.applies(values)), None)


@dataclass(frozen=True)
class Turn:
    state: DialogState | None  # None once the dialog has ended (finished or cancelled)
    replies: list[Reply]
    understood: bool = True


BACK = frozenset({"戻る", "もどる", "前へ", "ひとつ前", "back"})
CANCEL = frozenset(
    {"やめる", "止める", "キャンセル", "中止", "終了", "おわり", "終わり", "cancel", "quit", "exit"}
)
RESTART = frozenset({"最初から", "さいしょから", "やり直し", "やりなおし", "restart"})
HELP = frozenset({"ヘルプ", "help", "?", "使い方", "説明"})
COMMAND_CHOICES = (
    ReplyChoice("戻る", "cmd:back"),
    ReplyChoice("ヘルプ", "cmd:help"),
    ReplyChoice("やめる", "cmd:cancel"),
)
_CHOICE_COMMANDS = {
    "cmd:back": "戻る",
    "cmd:help": "ヘルプ",
    "cmd:cancel": "やめる",
    "cmd:restart": "最初から",
}
_CORRECTION = re.compile(
    r"^(?P<label>.+?)\s*(?:を|は|の値を|:|＝|=)\s*(?P<value>.+?)\s*(?:に|へ)?\s*(?:修正|訂正|変更|直して|直す)"
)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip()
    return text.rstrip("。.!！")


def _prompt(flow: Flow, state: DialogState) -> Reply:
    step = flow.step(state.step)
    choices = step.choices + (COMMAND_CHOICES if state.history else COMMAND_CHOICES[1:])
    return Reply(step.prompt_text(state.values), choices)


def reprompt(flow: Flow, state: DialogState) -> list[Reply]:
    """Ask the current question again (after a side question, or on resume)."""
    return [_prompt(flow, state)]


def start(flow: Flow) -> Turn:
    first = flow.next_step(None, {})
    if first is None:
        raise FlowError(f"flow {flow.id!r} has no applicable first step")
    state = DialogState(flow=flow.id, step=first.id)
    return Turn(state, [Reply(flow.intro), _prompt(flow, state)])


def advance(flow: Flow, state: DialogState, user_input: UserInput) -> Turn:
    """One user message within a flow."""
    if state.flow != flow.id:
        raise FlowError(f"state belongs to flow {state.flow!r}, not {flow.id!r}")
    raw = _CHOICE_COMMANDS.get(user_input.choice or "", user_input.choice or user_input.text)
    text = _clean(raw)
    word = text.lower()
    if word in CANCEL:
        return Turn(None, [Reply(f"「{flow.title}」を終了しました。ほかにご質問があればどうぞ。")])
    if word in RESTART:
        turn = start(flow)
        return Turn(turn.state, [Reply("最初からやり直します。"), *turn.replies[1:]])
    if word in HELP:
        return Turn(state, [Reply(flow.step(state.step).help), _prompt(flow, state)])
    if word in BACK:
        return _back(flow, state)
    step = flow.step(state.step)
    if not text:
        return Turn(state, [Reply("入力が空でした。"), _prompt(flow, state)], understood=False)
    try:
        value = step.parse(text, state.values)
    except Invalid as exc:
        corrected = _correction(flow, state, text)
        if corrected is not None:
            return corrected
        return Turn(state, [Reply(exc.message), _prompt(flow, state)], understood=False)
    values = {**state.values, step.id: value}
    return _forward(flow, DialogState(flow.id, step.id, values, [*state.history, step.id]))


def _forward(flow: Flow, state: DialogState) -> Turn:
    """Move past `state.step` to the next step that applies, or finish."""
    nxt = flow.next_step(state.step, state.values)
    if nxt is None:
        return Turn(None, flow.finish(state.values))
    moved = DialogState(flow.id, nxt.id, state.values, state.history)
    return Turn(moved, [_prompt(flow, moved)])


def _back(flow: Flow, state: DialogState) -> Turn:
    if not state.history:
        return Turn(state, [Reply("これが最初の質問です。"), _prompt(flow, state)])
    previous = state.history[-1]
    values = {k: v for k, v in state.values.items() if k != previous}
    back = DialogState(flow.id, previous, values, state.history[:-1])
    step = flow.step(previous)
    note = (
        f"ひとつ前に戻ります（入力済み：{step.show(state.values[previous])}）。"
        if previous in state.values
        else ""
    )
    return Turn(back, [Reply(note or "ひとつ前に戻ります。"), _prompt(flow, back)])


def _correction(flow: Flow, state: DialogState, text: str) -> Turn | None:
    """「人件費を3000万に修正」: change an earlier answer, then carry on where we were."""
    match = _CORRECTION.match(text)
    if not match:
        return None
    label, raw_value = match.group("label").strip(), match.group("value").strip()
    target = next((s for s in flow.steps if s.id in state.values and label in s.labels), None)
    if target is None:
        return None
    try:
        value = target.parse(raw_value, state.values)
    except Invalid as exc:
        return Turn(state, [Reply(f"{label}の修正：{exc.message}"), _prompt(flow, state)])
    values = {**state.values, target.id: value}
    # Answers that no longer apply after the change (another branch) are dropped.
    kept = {k: v for k, v in values.items() if k not in flow.by_id or flow.by_id[k].applies(values)}
    history = [s for s in state.history if s in kept]
    fixed = DialogState(flow.id, state.step, kept, history)
    note = Reply(f"{label}を {target.show(value)} に修正しました。")
    if not flow.step(state.step).applies(kept):
        # The change switched branches: continue at the first unanswered step that applies.
        nxt = next((s for s in flow.steps if s.applies(kept) and s.id not in kept), None)
        if nxt is None:
            return Turn(None, [note, *flow.finish(kept)])
        moved = DialogState(flow.id, nxt.id, kept, history)
        return Turn(moved, [note, _prompt(flow, moved)])
    return Turn(fixed, [note, _prompt(flow, fixed)])
