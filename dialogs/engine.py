"""The dialog engine: a pure function from (flow, state, input, context) to (state, replies).

Flows are data (dialogs/flows.py): steps with stable string ids, prompts,
readers and the words that name each value.  The engine owns what every flow
shares, so each flow gets it for free and behaves the same way:
  * 「戻る」 goes back one step, 「やめる」/「キャンセル」 ends, 「最初から」 restarts,
    「ヘルプ」 explains the current question, 「続きから」 asks it again;
  * at a step, the step's own reading comes first: the whole text, then values
    named in it (「営業利益2800万、減価償却300万」 fills both steps; a value named for an
    earlier step is a correction, in any ordinary wording: 「やっぱり人件費は2500万」,
    「…の間違いでした」, 「…じゃなくて…」), then a single value inside a sentence
    (「社長と専務の2人」);
  * a value is checked against the others when it is given, never only at the end;
  * statements that are not values (「わからない」) get the step's own help; only a
    clear question is marked for the service to try as a FAQ question;
  * after the result, a recap lists every value with a 「〇〇を変更」 button; a button or
    a correction in words recomputes it, and 「戻る」 reopens the last step.
No I/O: the clock comes in through `Context`, and the state is plain JSON, so it
can be stored anywhere and resumed next week.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from dialogs.types import DialogState, Reply, ReplyChoice, UserInput

Values = Mapping[str, Any]


class Invalid(Exception):
    """Raised by a step's reader: `message` says what was understood and what is expected.

    `remember` is a note for the step's next reading (「赤字です」 then 「500万」 is a loss).
    """

    def __init__(self, message: str, remember: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remember = remember


class Confirm(Exception):
    """Raised by a step's reader that read a value by an interpretation the user should confirm."""

    def __init__(self, value: Any, message: str) -> None:
        super().__init__(message)
        self.value = value
        self.message = message


class Assume(Invalid):
    """Raised by a step's reader for an answer the person cannot give (「わからない」): `value` is
    taken in its place and `message` says so and how to find out.

    A reader that meets it where no value can be taken reads it as Invalid: the message, and
    the question again.
    """

    def __init__(self, value: Any, message: str) -> None:
        super().__init__(message)
        self.value = value


class Reask(Exception):
    """Raised by a flow's finish: the value of `step` cannot be used; ask it again with `message`."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step
        self.message = message


class FlowError(Exception):
    """A flow definition or a stored state does not fit together (a bug or stale data, not user input)."""


@dataclass(frozen=True)
class Context:
    """What a turn may depend on besides the state and the input, injected by the caller.

    `today` is the clock; `now` the time of day too, for whether a contact line is open when
    a result names it; `read_program` reads a reply to "which program?" (a program id,
    "both", "unknown", "other:<guide>" or None), given by the service so that the engine
    and the flows need no knowledge base.
    """

    today: date | None = None
    read_program: Callable[[str], str | None] | None = None
    now: datetime | None = None


class Known(dict[str, Any]):
    """The values so far as a step's reader sees them, with the turn's context (the clock) and
    what the step's previous, refused reading asked to remember."""

    def __init__(self, values: Values, context: Context, remembered: str | None = None) -> None:
        super().__init__(values)
        self.context = context
        self.remembered = remembered


def remembered_of(values: Values) -> str | None:
    found = getattr(values, "remembered", None)
    return found if isinstance(found, str) else None


def context_of(values: Values) -> Context:
    found = getattr(values, "context", None)
    return found if isinstance(found, Context) else Context()


Text = str | Callable[[Values], str]


def _text(value: Text, values: Values) -> str:
    return value(values) if callable(value) else value


@dataclass(frozen=True)
class Step:
    id: str
    prompt: Text
    parse: Callable[[str, Values], Any]
    help: Text
    choices: tuple[ReplyChoice, ...] = ()
    # Words that name this step's value in a sentence or a correction (「人件費を3000万に修正」).
    labels: tuple[str, ...] = ()
    # The step is asked only when this holds for the values so far (branches);
    # `condition` says the same in words, for the flow diagram.
    when: Callable[[Values], bool] | None = None
    condition: str = ""
    # How a stored value is shown back to the user.
    show: Callable[[Any], str] = str
    # How the value is named when read back; the first label when empty.
    name: str = ""
    # The name on the recap's change button (「〇〇を変更」) when `title` is too long for a button.
    brief: str = ""
    # Checks a value against the other values (a cancellation before the delivery); raises Invalid.
    check: Callable[[Any, Values], None] | None = None
    # The reply to 「わからない」「覚えてない」 at this step; the help when empty.
    unsure: Text = ""
    # Kept by 「最初から」 (the program, which is asked at most once).
    sticky: bool = False
    # Steps whose answers may carry this value too, without a label (「2020で、全部解約しました」 at
    # the program step also says what happened); only one clear reading counts.
    read_from: tuple[str, ...] = ()
    # Units that name this step when a value carries them (「年間1800時間」 is the hours, 「10名」 the staff).
    units: tuple[str, ...] = ()
    # The value worked out from other steps' answers (人件費 from its breakdown), None until they
    # are all given: shown in the recap, and read back when the last of them is answered or changed.
    worked_out: Callable[[Values], str | None] | None = None

    def shown(self, values: Values) -> str:
        """The value as the recap shows it: worked out where it can be, else as stored."""
        worked = self.worked_out(values) if self.worked_out is not None else None
        return worked or self.show(values[self.id])

    def applies(self, values: Values) -> bool:
        return self.when is None or self.when(values)

    def prompt_text(self, values: Values) -> str:
        return _text(self.prompt, values)

    def help_text(self, values: Values) -> str:
        return _text(self.help, values)

    def unsure_text(self, values: Values) -> str:
        return _text(self.unsure, values) or self.help_text(values)

    @property
    def title(self) -> str:
        return self.name or (self.labels[0] if self.labels else self.id)

    @property
    def button(self) -> str:
        return f"{self.brief or self.title}を変更"


@dataclass(frozen=True)
class Flow:
    id: str
    title: str
    intro: str
    steps: tuple[Step, ...]
    # Turns the collected values into the closing replies (verdict, figures, next steps); the
    # values it gets carry the turn's context (`context_of`), for the clock.
    finish: Callable[[Values], list[Reply]]
    # Programs whose sources define this flow (empty: any); `not_covered` says why not, per program.
    programs: tuple[str, ...] = ()
    not_covered: Mapping[str, str] = field(default_factory=dict)
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
        """The next step that applies and has no value yet (values given early are not asked again)."""
        start = 0 if after is None else [s.id for s in self.steps].index(after) + 1
        return next((s for s in self.steps[start:] if s.applies(values) and s.id not in values), None)

    def applicable(self, values: Values) -> dict[str, Any]:
        """The values of the steps that apply: what the result is computed from."""
        return {s.id: values[s.id] for s in self.steps if s.id in values and s.applies(values)}


@dataclass(frozen=True)
class Turn:
    state: DialogState | None  # None once the dialog has ended (finished or cancelled)
    replies: list[Reply]
    understood: bool = True
    # Not understood and clearly a question: the service may answer it from the FAQ.
    question: bool = False
    # When the flow has just finished: the final state, so that a later correction can recompute.
    finished: DialogState | None = None


BACK = frozenset(
    {
        "戻る",
        "もどる",
        "戻って",
        "前へ",
        "前に戻る",
        "前に戻って",
        "ひとつ前",
        "一つ前",
        "一つ戻る",
        "ひとつ戻る",
        "back",
    }
)
CANCEL = frozenset(
    {
        "やめる",
        "止める",
        "やめます",
        "キャンセル",
        "中止",
        "終了",
        "おわり",
        "終わり",
        "cancel",
        "quit",
        "exit",
    }
)
RESTART = frozenset(
    {
        "最初から",
        "さいしょから",
        "やり直し",
        "やりなおし",
        "やり直したい",
        "最初からやり直す",
        "最初からやり直したい",
        "restart",
    }
)
HELP = frozenset({"ヘルプ", "help", "?", "使い方", "説明"})
RESUME = frozenset({"続きから", "つづきから", "続き", "続ける", "つづける"})
COMMAND_CHOICES = (
    ReplyChoice("戻る", "cmd:back"),
    ReplyChoice("ヘルプ", "cmd:help"),
    ReplyChoice("やめる", "cmd:cancel"),
)
# The navigation every step offers: channels keep it apart from the step's own choices (a row of
# its own on Telegram, a hint line in a terminal, where numbers stay answers to the step).
NAVIGATION = frozenset(c.value for c in COMMAND_CHOICES)
RESUME_CHOICES = (ReplyChoice("続きから", "cmd:resume"), ReplyChoice("最初から", "cmd:restart"))
# 「〇〇を変更」 on the recap: cmd:edit.<step id> (step ids are short ASCII, so the value fits 64 bytes).
EDIT = "cmd:edit."
YES_NO_CHOICES = (ReplyChoice("はい", "cmd:yes"), ReplyChoice("いいえ", "cmd:no"))
_CHOICE_COMMANDS = {
    "cmd:back": "戻る",
    "cmd:help": "ヘルプ",
    "cmd:cancel": "やめる",
    "cmd:restart": "最初から",
    "cmd:resume": "続きから",
    "cmd:yes": "はい",
    "cmd:no": "いいえ",
}
_YES = frozenset(
    {
        "はい",
        "うん",
        "ええ",
        "yes",
        "ok",
        "そう",
        "そうです",
        "お願いします",
        "それで",
        "それでいい",
        "大丈夫",
    }
)
_NO = frozenset({"いいえ", "いや", "ちがう", "違う", "違います", "ちがいます", "no", "ううん"})
_UNSURE = (
    "わかりません",
    "分かりません",
    "わから",
    "分から",
    "判らない",
    "わかんない",
    "覚えてない",
    "覚えていない",
    "おぼえてない",
    "不明",
    "知らない",
    "忘れ",
    "未定",
    "決めてない",
    "決めていない",
    "決まってない",
    "決まっていない",
    "どっちだろう",
    "どちらだろう",
    "どっちかな",
    "どちらかな",
)
_QUESTION_END = re.compile(r"(?:[?？]|(?:です|ます|でしょう|ません|の|ん)か|かな|かね|っけ|の\?)$")
_QUESTION_WORDS = (
    "どう",
    "何",
    "なに",
    "なぜ",
    "どこ",
    "いつ",
    "どれ",
    "どちら",
    "どっち",
    "誰",
    "教えて",
    "とは",
    "知りたい",
    "って何",
    "いくら",
    "なんで",
)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip()
    return text.rstrip("。.!！")


def _bare(text: str) -> str:
    """A command word as typed: 「戻ります」「やめます。」 count as 戻る / やめる."""
    s = text.lower().strip().rstrip("。.!！ ")
    s = re.sub(r"(?:してください|して|します|でお願いします|をお願いします|お願いします)$", "", s)
    return {"戻ります": "戻る", "もどります": "戻る"}.get(s, s)


def is_question(text: str) -> bool:
    """Clearly a question: ends like one or asks with a question word."""
    s = unicodedata.normalize("NFKC", text).strip()
    return bool(_QUESTION_END.search(s)) or any(w in s for w in _QUESTION_WORDS)


def is_unsure(text: str) -> bool:
    """A short statement of not knowing (「わからない」「覚えてないです」), not a question about something."""
    found = [w for w in _UNSURE if w in text]
    if not found:
        return False
    rest = text
    for word in sorted(found, key=len, reverse=True):
        rest = rest.replace(word, "")
    rest = re.sub(
        r"(?:ない|ません|です|かな|ちょっと|まだ|よく|今|いま|すぐ|には|は|が|[、。,.!！\s])", "", rest
    )
    return len(rest) <= 4


def _about_something(text: str) -> bool:
    """Not knowing something named (「申請マイページのIDがわからない」): a question for the FAQ."""
    return any(w in text for w in _UNSURE) and not is_unsure(text)


def _prompt(flow: Flow, state: DialogState) -> Reply:
    step = flow.step(state.step)
    choices = step.choices + (COMMAND_CHOICES if state.history else COMMAND_CHOICES[1:])
    return Reply(step.prompt_text(state.values), choices)


def reprompt(flow: Flow, state: DialogState) -> list[Reply]:
    """Ask the current question again (after a side question, or on resume)."""
    if state.pending is not None:
        return [Reply(str(state.pending.get("message", "")), YES_NO_CHOICES)]
    return [_prompt(flow, state)]


def where(flow: Flow, state: DialogState) -> str:
    """Where the user is, in words: for a returning user."""
    answered = [s for s in flow.steps if s.id in state.values and s.applies(state.values)]
    done = "、".join(f"{s.title} {s.show(state.values[s.id])}" for s in answered[-3:])
    head = f"「{flow.title}」の途中です"
    return f"{head}（入力済み：{done}）。" if done else f"{head}。"


def start(
    flow: Flow,
    *,
    values: Values | None = None,
    question: str | None = None,
    context: Context | None = None,
) -> Turn:
    """The flow's first question; `values` already known (the program) are not asked."""
    known = {k: v for k, v in (values or {}).items() if k in flow.by_id}
    first = flow.next_step(None, known)
    if first is None:
        raise FlowError(f"flow {flow.id!r} has no applicable first step")
    state = DialogState(flow=flow.id, step=first.id, values=known, question=question)
    if question:
        # 「労働生産性を計算したい。営業利益は3000万」: values named in the request are not asked again.
        named = _named(flow, state, question, context or Context())
        if named.values:
            turn = _accept(flow, state, named.values, False, context or Context())
            if turn.understood:
                return Turn(turn.state, [Reply(flow.intro), *turn.replies], finished=turn.finished)
    return Turn(state, [Reply(flow.intro), _prompt(flow, state)])


def advance(flow: Flow, state: DialogState, user_input: UserInput, context: Context | None = None) -> Turn:
    """One user message within a flow."""
    if state.flow != flow.id:
        raise FlowError(f"state belongs to flow {state.flow!r}, not {flow.id!r}")
    context = context or Context()
    if user_input.choice is not None and user_input.choice.startswith(EDIT):
        edited = _edit(flow, state, user_input.choice.removeprefix(EDIT))
        if edited is not None:
            return edited
        return Turn(
            state, [Reply("この値はいまの計算では使っていません。"), *reprompt(flow, state)], understood=False
        )
    command = _CHOICE_COMMANDS.get(user_input.choice or "")
    raw = command or user_input.choice or user_input.text
    text = _clean(raw)
    word = _bare(text)
    if word in CANCEL:
        return Turn(None, [Reply(f"「{flow.title}」を終了しました。ほかにご質問があればどうぞ。")])
    if word in RESTART:
        kept = {s.id: state.values[s.id] for s in flow.steps if s.sticky and s.id in state.values}
        turn = start(flow, values=kept, question=state.question, context=context)
        return Turn(turn.state, [Reply("最初からやり直します。"), *turn.replies[1:]])
    if word in HELP:
        return Turn(state, [Reply(flow.step(state.step).help_text(state.values)), *reprompt(flow, state)])
    if word in RESUME:
        return Turn(state, reprompt(flow, state))
    if word in BACK:
        return _back(flow, state)
    remembered: str | None = None
    if state.pending is not None:
        if "value" in state.pending:
            confirmed = _confirm(flow, state, word, context)
            if confirmed is not None:
                return confirmed
        elif state.pending.get("step") == state.step:
            remembered = str(state.pending.get("remember", "")) or None
        state = DialogState(state.flow, state.step, state.values, state.history, None, state.question)
    step = flow.step(state.step)
    if not text:
        return Turn(state, [Reply("入力が空でした。"), _prompt(flow, state)], understood=False)
    known = Known(state.values, context, remembered)
    if user_input.choice is not None and command is None:
        try:
            return _accept(flow, state, {step.id: step.parse(user_input.choice, known)}, True, context)
        except Assume as taken:
            return _accept(flow, state, {step.id: taken.value}, True, context, [taken.message])
        except Confirm as ask:
            return _ask_confirm(flow, state, step, ask)
        except Invalid as exc:
            return Turn(state, [Reply(exc.message), _prompt(flow, state)], understood=False)
    return _read_text(flow, state, step, text, context, remembered)


def _read_text(
    flow: Flow, state: DialogState, step: Step, text: str, context: Context, remembered: str | None = None
) -> Turn:
    known = Known(state.values, context, remembered)
    # 1. The step's own reading of the whole text.
    first_error: Invalid | None = None
    try:
        value = _checked(step, step.parse(text, known), known)
    except Assume as taken:
        return _accept(flow, state, {step.id: taken.value}, True, context, [taken.message])
    except Confirm as ask:
        return _ask_confirm(flow, state, step, ask)
    except Invalid as exc:
        first_error = exc
    else:
        answered = DialogState(state.flow, state.step, {**state.values, step.id: value}, state.history)
        others = _named(flow, answered, text, context, skip=step.id)
        eager = _eager(flow, step, {**answered.values, **others.values}, text, context)
        return _accept(flow, state, {step.id: value, **others.values, **eager}, True, context)
    # 2. Values named in the text: answers, corrections and values given early.
    named = _named(flow, state, text, context)
    if named.confirm is not None:
        # The other values of the message are kept while one of them waits for its confirmation.
        held, notes = state, []
        if (
            named.values
            and _cross_check(flow, {**state.values, **named.values}, named.values, context) is None
        ):
            notes = _read_back(flow, state.values, named.values)
            values = {**state.values, **named.values}
            held = DialogState(flow.id, state.step, values, state.history, None, state.question)
        return _ask_confirm(flow, held, named.confirm[0], named.confirm[1], notes)
    if named.values:
        return _accept(flow, state, named.values, step.id in named.values, context, named.errors)
    if named.errors:
        return Turn(state, [Reply(named.errors[0]), _prompt(flow, state)], understood=False)
    by_old = _by_old_value(flow, state, text, context)
    if by_old:
        return _accept(flow, state, by_old, False, context)
    question = is_question(text) or _about_something(text)
    # 3. One value inside a sentence (「社長と専務の2人」), unless the text asks something;
    #    a hedged answer (「3000万かな」) is an answer, not a question.
    plain = _value_part(text)
    if plain and plain != text:
        try:
            return _accept(
                flow, state, {step.id: _checked(step, step.parse(plain, known), known)}, True, context
            )
        except Confirm as ask:
            return _ask_confirm(flow, state, step, ask)
        except Invalid:
            pass
    if not question:
        found = _in_sentence(step, _value_part(text), known)
        if isinstance(found, Confirm):
            return _ask_confirm(flow, state, step, found)
        if isinstance(found, Invalid):
            return Turn(state, [Reply(found.message), _prompt(flow, state)], understood=False)
        if found is not None:
            return _accept(flow, state, {step.id: found[0]}, True, context)
    # 4. Not a value: the step's own help for a statement, or a question for the service.
    if is_unsure(text):
        return Turn(state, [Reply(step.unsure_text(state.values)), _prompt(flow, state)])
    message = first_error.message if first_error else "読み取れませんでした。"
    if first_error is not None and first_error.remember:
        note = {"step": step.id, "remember": first_error.remember}
        state = DialogState(state.flow, state.step, state.values, state.history, note, state.question)
        return Turn(state, [Reply(message), _prompt(flow, state)], understood=False)
    if not question and not re.search(r"[0-9０-９]", text):
        # A statement, not a value (「そうです」「含まれてない」): what the step wants, in its own words.
        message = f"{message}\n{step.help_text(state.values)}"
    return Turn(state, [Reply(message), _prompt(flow, state)], understood=False, question=question)


def _checked(step: Step, value: Any, values: Values) -> Any:
    if step.check is not None:
        step.check(value, values)
    return value


# ---------------------------------------------------------------- values in sentences

_SPAN = re.compile(
    r"(?:マイナス|▲|△|▼|[-−]|(?:赤字|損失)(?:で|が|は|の)?)?(?:約|だいたい|およそ)?"
    r"(?:(?:令和|平成|[RH])(?:元|\d{1,2})[年./-]\d{1,2}[月./-]\d{1,2}日?"
    r"|\d{4}[年./-]\d{1,2}[月./-]\d{1,2}日?"
    r"|[0-9][0-9〇零一二三四五六七八九十百千万億兆,.]*(?:円|人|名|時間|h|年度目|年目|回目)?"
    r"|[〇零一二三四五六七八九十百千万億兆]+(?:円|人|名|時間)"
    r"|[一二三四五六七八九]?[十百千][〇零一二三四五六七八九十百千万億兆]*)"
    r"(?:の?(?:赤字|損失))?"
)
_ARITHMETIC = re.compile(r"[0-9０-９万千百十円間日人]\s*[×xX*＊+＋÷]\s*[0-9０-９]")
_NOT_A_VALUE_AFTER = re.compile(r"^(?:年(?!度目|目)|月|日|度|%|％|社|つ|回(?!目)|件|か月|ヶ月)")
_CORRECTION_TAIL = re.compile(
    r"(?:(?:に|へ)?(?:修正|訂正|変更|直し|直す|直して)(?:して|します|したい|してください|お願いします|です|で)*|に|へ)$"
)
_LEAD = re.compile(r"^(?:の値|の金額|の数字|の人数|の日付)?[\s:：=＝、,はがをもっ]*(?:て|は)?[\s:：=＝、,]*")
_NOT_BUT = re.compile(r"じゃなくて|じゃなく|ではなくて|ではなく|でなくて")
_MISTAKE = re.compile(r"の(?:間違い|まちがい|誤り)(?:でした|です|だった|だ)?")
_FILLERS = (
    "やっぱり",
    "やはり",
    "すみません",
    "すいません",
    "ごめんなさい",
    "失礼しました",
    "えっと",
    "えーと",
    "さっきの",
    "先ほどの",
    "さきほどの",
    "さっき",
)


def _value_part(segment: str) -> str:
    """The value in what follows a label: after 「じゃなくて」, before 「の間違い」, without particles."""
    s = segment
    for filler in _FILLERS:
        s = s.replace(filler, "")
    parts = _NOT_BUT.split(s)
    if len(parts) > 1:
        s = parts[-1]
    found = _MISTAKE.search(s)
    if found:
        s = s[: found.start()]
        if "は" in s:
            s = s.rsplit("は", 1)[1]
    s = _LEAD.sub("", s).strip()
    s = re.sub(
        r"(?:でした|です|だった|だよ|だね|だと思います|だと思う|と思います|かな|ね|よ)[?？]?$", "", s
    ).strip()
    s = _CORRECTION_TAIL.sub("", s).strip()
    return s.strip("、,。 ")


def _spans(text: str) -> list[str]:
    out = []
    for m in _SPAN.finditer(text):
        if _NOT_A_VALUE_AFTER.match(text[m.end() :]):
            continue
        # 「3xx万」 is not 3: a value is not glued to letters or digits it could not read.
        after, before_char = text[m.end() : m.end() + 1], text[m.start() - 1 : m.start()] if m.start() else ""
        if re.match(r"[A-Za-z0-9]", after) or re.match(r"[A-Za-z0-9.,]", before_char):
            continue
        before = text[max(0, m.start() - 2) : m.start()].lower()
        if before.endswith("it"):
            continue
        out.append(m.group(0))
    return out


def _in_sentence(step: Step, text: str, known: Known) -> tuple[Any] | Invalid | Confirm | None:
    """The one value of this step inside a sentence; None when there is none; Invalid when several differ."""
    try:
        return (_checked(step, step.parse(text, known), known),)
    except Confirm as ask:
        return ask
    except Invalid:
        pass
    if _ARITHMETIC.search(text):
        return Invalid(
            f"「{text}」は計算式のようです。{step.title}は、計算した結果の数字で入力してください。"
        )
    found: list[Any] = []
    problem: Invalid | Confirm | None = None
    for span in _spans(text):
        try:
            value = _checked(step, step.parse(span, known), known)
        except Confirm as ask:
            problem = problem or ask
            if ask.value not in found:
                found.append(ask.value)
            continue
        except Invalid as exc:
            problem = problem or exc
            continue
        if value not in found:
            found.append(value)
    if len(found) == 1:
        return problem if isinstance(problem, Confirm) and problem.value == found[0] else (found[0],)
    if len(found) > 1:
        shown = "、".join(step.show(v) for v in found)
        return Invalid(f"{shown} の複数の値が読み取れました。{step.title}を1つだけ入力してください。")
    return problem


@dataclass
class _Named:
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    confirm: tuple[Step, Confirm] | None = None


def _label_hits(flow: Flow, text: str) -> list[tuple[int, int, Step]]:
    hits = []
    low = text.lower()
    for step in flow.steps:
        for label in step.labels:
            for m in re.finditer(re.escape(label.lower()), low):
                hits.append((m.start(), m.end(), step))
    hits.sort(key=lambda h: (h[0], -(h[1] - h[0])))
    chosen: list[tuple[int, int, Step]] = []
    for hit in hits:
        if chosen and hit[0] < chosen[-1][1]:
            continue
        chosen.append(hit)
    return chosen


def _named(flow: Flow, state: DialogState, text: str, context: Context, skip: str | None = None) -> _Named:
    """Values named by their labels: 「営業利益2800万、減価償却300万」, 「やっぱり人件費は2500万」."""
    out = _Named()
    hits = _label_hits(flow, text)
    values = dict(state.values)
    corrective = bool(
        _CORRECTION_TAIL.search(text.rstrip("。.!！ ")) and re.search("修正|訂正|変更|直", text)
    )
    if is_question(text) and not corrective:
        return out  # 「伸び率が5%に届かない場合は？」 asks; it gives no value
    for index, (_start, end, step) in enumerate(hits):
        if step.id == skip or step.id in out.values:
            continue
        stop = hits[index + 1][0] if index + 1 < len(hits) else len(text)
        segment = _value_part(text[end:stop])
        if not segment:
            continue
        if not step.applies(values) and step.id not in values:
            continue
        known = Known(values, context)
        try:
            value = _checked(step, step.parse(segment, known), known)
        except Confirm as ask:
            out.confirm = out.confirm or (step, ask)
            continue
        except Invalid as exc:
            found = _in_sentence(step, segment, known)
            if isinstance(found, tuple):
                value = found[0]
            elif isinstance(found, Confirm):
                out.confirm = out.confirm or (step, found)
                continue
            else:
                if corrective or step.id in state.values or re.search(r"[0-9０-９]", segment):
                    message = found.message if isinstance(found, Invalid) else exc.message
                    out.errors.append(f"{step.title}：{message}")
                continue
        out.values[step.id] = value
        values[step.id] = value
    _by_unit(flow, text, context, skip, out, values)
    return out


def _by_unit(
    flow: Flow, text: str, context: Context, skip: str | None, out: _Named, values: dict[str, Any]
) -> None:
    """Values named by their unit alone: 「従業員10名、年間1800時間」 gives the hours too."""
    for span in _spans(text):
        owners = [s for s in flow.steps if s.units and any(span.endswith(u) for u in s.units)]
        if len(owners) != 1:
            continue
        step = owners[0]
        if step.id == skip or step.id in out.values or not step.applies(values):
            continue
        known = Known(values, context)
        try:
            value = _checked(step, step.parse(span, known), known)
        except Confirm as ask:
            out.confirm = out.confirm or (step, ask)
            continue
        except Invalid:
            continue
        if step.id in values and values[step.id] == value:
            continue
        out.values[step.id] = value
        values[step.id] = value


def _eager(flow: Flow, answered: Step, values: Values, text: str, context: Context) -> dict[str, Any]:
    """Values of later steps said in the same answer (what happened, with the program)."""
    found: dict[str, Any] = {}
    for step in flow.steps:
        merged = {**values, **found}
        if answered.id not in step.read_from or step.id in merged or not step.applies(merged):
            continue
        reading = _in_sentence(step, text, Known(merged, context))
        if isinstance(reading, tuple):
            found[step.id] = reading[0]
    return found


def _by_old_value(flow: Flow, state: DialogState, text: str, context: Context) -> dict[str, Any]:
    """「1800じゃなくて2000」: the old value names the answer to correct, when exactly one answer has it."""
    parts = _NOT_BUT.split(text, maxsplit=1)
    if len(parts) != 2:
        return {}
    old_text, new_text = _value_part(parts[0]), _value_part(parts[1])
    if not old_text or not new_text:
        return {}
    known = Known(state.values, context)
    matches = []
    for step in flow.steps:
        if step.id not in state.values or not step.applies(state.values):
            continue
        try:
            if step.parse(old_text, known) == state.values[step.id]:
                matches.append(step)
        except (Invalid, Confirm):
            continue
    if len(matches) != 1:
        return {}
    step = matches[0]
    try:
        return {step.id: _checked(step, step.parse(new_text, known), known)}
    except (Invalid, Confirm):
        return {}


# ---------------------------------------------------------------- moving on


def _accept(
    flow: Flow,
    state: DialogState,
    updates: dict[str, Any],
    answered: bool,
    context: Context,
    errors: list[str] | None = None,
) -> Turn:
    """Store the values read; move past the step when it was answered; say what was read."""
    values = {**state.values, **updates}
    problem = _cross_check(flow, values, updates, context)
    if problem is not None:
        return Turn(state, [Reply(problem), _prompt(flow, state)], understood=False)
    notes = _read_back(flow, state.values, updates)
    if errors:
        notes.extend(errors)
    history = list(state.history)
    if answered:
        history.append(state.step)
        moved = DialogState(flow.id, state.step, values, history, None, state.question)
        return _forward(flow, moved, notes, context)
    current = flow.step(state.step)
    if current.applies(values) and current.id not in values:
        stay = DialogState(flow.id, state.step, values, history, None, state.question)
        return Turn(stay, [_with_notes(notes, _prompt(flow, stay))])
    # The change switched branches or answered the current step: go on from the first open step.
    moved = DialogState(flow.id, state.step, values, history, None, state.question)
    nxt = flow.next_step(None, values)
    if nxt is None:
        return _finish(flow, moved, notes, context)
    moved = DialogState(flow.id, nxt.id, values, history, None, state.question)
    return Turn(moved, [_with_notes(notes, _prompt(flow, moved))])


def _cross_check(flow: Flow, values: dict[str, Any], updates: Values, context: Context) -> str | None:
    """Every value that applies still fits the others after the change; else why not (nothing is stored)."""
    known = Known(values, context)
    for step in flow.steps:
        if step.id in values and step.check is not None and step.applies(values):
            try:
                step.check(values[step.id], known)
            except Invalid as exc:
                if step.id in updates:
                    return exc.message
                changed = "、".join(flow.step(k).title for k in updates if k in flow.by_id)
                return f"{changed}をこの値にすると、{step.title}と合いません：{exc.message}"
    return None


def _read_back(flow: Flow, before: Values, updates: Values) -> list[str]:
    lines = []
    for step_id, value in updates.items():
        step = flow.step(step_id)
        if step_id in before and before[step_id] != value:
            lines.append(
                f"{step.title}を {step.show(before[step_id])} から {step.show(value)} に修正しました。"
            )
        else:
            lines.append(f"{step.title}：{step.show(value)}")
    after = {**before, **updates}
    for step in flow.steps:
        if step.worked_out is not None and step.applies(after):
            worked = step.worked_out(after)
            if worked is not None and worked != step.worked_out(before):
                lines.append(f"{step.title}：{worked}")
    return lines


def _forward(flow: Flow, state: DialogState, notes: list[str], context: Context) -> Turn:
    """Move past `state.step` to the next open step that applies, or finish."""
    nxt = flow.next_step(state.step, state.values) or flow.next_step(None, state.values)
    if nxt is None:
        return _finish(flow, state, notes, context)
    moved = DialogState(flow.id, nxt.id, state.values, state.history, None, state.question)
    return Turn(moved, [_with_notes(notes, _prompt(flow, moved))])


def _with_notes(notes: list[str], prompt: Reply) -> Reply:
    """What was read, then the next question, in one message (one bubble on a phone)."""
    if not notes:
        return prompt
    return Reply("\n".join(notes) + "\n\n" + prompt.text, prompt.choices, prompt.result)


def _finish(flow: Flow, state: DialogState, notes: list[str], context: Context) -> Turn:
    # The recap shows every value the result used; only a change is said before it.
    changed = [n for n in notes if "修正しました" in n or n.startswith("変更：")]
    head = [Reply("\n".join(changed))] if changed else []
    try:
        replies = flow.finish(Known(flow.applicable(state.values), context))
    except Reask as exc:
        step = flow.step(exc.step)
        again = DialogState(flow.id, step.id, state.values, state.history, None, state.question)
        return Turn(again, [*head, Reply(exc.message), _prompt(flow, again)], understood=False)
    done = DialogState(flow.id, state.step, dict(state.values), list(state.history), None, state.question)
    return Turn(None, [*head, *replies, recap(flow, done.values)], finished=done)


def recap(flow: Flow, values: Values) -> Reply:
    """The values a result was computed from, each with a 「〇〇を変更」 button.

    It comes after the result, not before: the person came for the verdict, every value was
    already read back when it was typed, and a confirmation screen first would cost every
    conversation a turn to catch the rare slip.  A change from here recomputes the result at
    once (the finished state is kept for it), so nothing is lost by showing the verdict first.
    """
    steps = [s for s in flow.steps if s.id in values and s.applies(values)]
    lines = [f"{s.title}：{s.shown(values)}" for s in steps]
    choices = tuple(ReplyChoice(s.button, EDIT + s.id) for s in steps)
    return Reply(
        "入力した値（ボタンで1つずつ変更できます）\n" + "\n".join(lines),
        choices,
    )


def _edit(flow: Flow, state: DialogState, step_id: str) -> Turn | None:
    """A recap's change button: that value asked again, the others kept; answering recomputes.

    The old value stays stored while it is asked, so the answer reads back as a change
    (「営業利益を 3,000万円 から 5,000万円 に修正しました。」) and the next open step is the
    result, or the steps a new branch needs.  None when the step does not apply (a stale button).
    """
    step = flow.by_id.get(step_id)
    if step is None or not step.applies(state.values):
        return None
    history = [s for s in state.history if s != step_id]
    reopened = DialogState(flow.id, step_id, dict(state.values), history, None, state.question)
    shown = step.show(state.values[step_id]) if step_id in state.values else ""
    note = f"{step.title}を変更します（いまの値：{shown}）。" if shown else f"{step.title}を入力します。"
    return Turn(reopened, [_with_notes([note], _prompt(flow, reopened))])


def _back(flow: Flow, state: DialogState) -> Turn:
    if not state.history:
        return Turn(state, [Reply("これが最初の質問です。"), _prompt(flow, state)])
    previous = state.history[-1]
    values = {k: v for k, v in state.values.items() if k != previous}
    back = DialogState(flow.id, previous, values, state.history[:-1], None, state.question)
    step = flow.step(previous)
    note = (
        f"ひとつ前に戻ります（入力済み：{step.show(state.values[previous])}）。"
        if previous in state.values
        else "ひとつ前に戻ります。"
    )
    return Turn(back, [Reply(note), _prompt(flow, back)])


def _ask_confirm(
    flow: Flow, state: DialogState, step: Step, ask: Confirm, notes: list[str] | None = None
) -> Turn:
    pending = {"step": step.id, "value": ask.value, "message": ask.message}
    held = DialogState(flow.id, state.step, state.values, state.history, pending, state.question)
    head = "\n".join(notes) + "\n\n" if notes else ""
    return Turn(held, [Reply(head + ask.message, YES_NO_CHOICES)])


def _confirm(flow: Flow, state: DialogState, word: str, context: Context) -> Turn | None:
    """The answer to a confirmation: yes stores the value, no asks again; anything else is read as usual."""
    pending = state.pending or {}
    step_id = str(pending.get("step", ""))
    plain = DialogState(state.flow, state.step, state.values, state.history, None, state.question)
    head = re.split(r"[、,。\s]", word, maxsplit=1)[0]
    if head in _YES and step_id in flow.by_id:
        return _accept(flow, plain, {step_id: pending.get("value")}, step_id == state.step, context)
    if head in _NO:
        step = flow.step(step_id) if step_id in flow.by_id else flow.step(state.step)
        return Turn(plain, [Reply(f"では、{step.title}をもう一度入力してください。"), _prompt(flow, plain)])
    return None


# ---------------------------------------------------------------- after the result


def leave_change(
    flow: Flow, finished: DialogState, user_input: UserInput, context: Context | None = None
) -> Turn | None:
    """While a recap change is open: 「戻る」 or 「やめる」 drops the change, not a step.

    The person left the result to change one value; stepping back through the questions from
    there would reopen a later step and lose its answer.  So both end the change and show the
    result and the recap again, from the values it was computed on.  None: any other input.
    """
    command = _CHOICE_COMMANDS.get(user_input.choice or "")
    if user_input.choice is not None and command is None:
        return None
    word = _bare(_clean(command or user_input.text))
    if word not in BACK and word not in CANCEL:
        return None
    turn = _finish(flow, finished, [], context or Context())
    if turn.finished is None:
        return None
    return Turn(
        None, [Reply("変更をやめました。結果はそのままです。"), *turn.replies], finished=turn.finished
    )


def revise(
    flow: Flow, finished: DialogState, user_input: UserInput, context: Context | None = None
) -> Turn | None:
    """After the result: a correction recomputes it; 「戻る」 reopens the last step.  None: neither."""
    context = context or Context()
    if user_input.choice is not None and user_input.choice.startswith(EDIT):
        return _edit(flow, finished, user_input.choice.removeprefix(EDIT))
    text = _clean(
        _CHOICE_COMMANDS.get(user_input.choice or "", user_input.text if user_input.choice is None else "")
    )
    if not text:
        return None
    if _bare(text) in RESTART:
        kept = {s.id: finished.values[s.id] for s in flow.steps if s.sticky and s.id in finished.values}
        turn = start(flow, values=kept, question=finished.question, context=context)
        return Turn(turn.state, [Reply("最初からやり直します。"), *turn.replies[1:]])
    if _bare(text) in BACK:
        last = finished.history[-1] if finished.history else finished.step
        values = {k: v for k, v in finished.values.items() if k != last}
        history = [s for s in finished.history if s != last]
        reopened = DialogState(flow.id, last, values, history, None, finished.question)
        step = flow.step(last)
        shown = step.show(finished.values[last]) if last in finished.values else ""
        note = f"結果の前の質問に戻ります（入力済み：{shown}）。" if shown else "結果の前の質問に戻ります。"
        return Turn(reopened, [Reply(note), _prompt(flow, reopened)])
    if is_question(text) and not re.search("修正|訂正|変更|間違", text):
        return None
    named = _named(flow, finished, text, context)
    if not named.values:
        named.values = _by_old_value(flow, finished, text, context)
    if not named.values:
        if named.errors:
            return Turn(
                None, [Reply(named.errors[0] + "（結果はそのままです）")], understood=False, finished=finished
            )
        return None
    values = {**finished.values, **named.values}
    problem = _cross_check(flow, values, named.values, context)
    if problem is not None:
        return Turn(None, [Reply(problem + "（結果はそのままです）")], understood=False, finished=finished)
    changes = []
    for step_id, value in named.values.items():
        step = flow.step(step_id)
        old = finished.values.get(step_id)
        before = step.show(old) if old is not None else "未入力"
        changes.append(f"{step.title} {before} → {step.show(value)}")
    head = "変更：" + "、".join(changes) + "。この値で計算し直しました。"
    state = DialogState(flow.id, finished.step, values, list(finished.history), None, finished.question)
    nxt = flow.next_step(None, values)
    if nxt is not None:  # the change opened a branch that needs more answers
        moved = DialogState(flow.id, nxt.id, values, list(finished.history), None, finished.question)
        return Turn(moved, [Reply(head.replace("この値で計算し直しました。", "")), _prompt(flow, moved)])
    return _finish(flow, state, [head], context)
