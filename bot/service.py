"""One conversation service for every channel.

    handle(channel, user, input):
        load state -> route (command | dialog | FAQ) -> dialog engine -> save state -> log the turn

The state of a conversation (the dialog in progress, the question waiting for
a program choice, the program set with /program) is stored through `Store`
with an optimistic version; when another process saved the same conversation
in the meantime, the turn is routed again on the fresh state once.

Choice values made here are short ASCII (Telegram allows 64 bytes):
    faq:<entry id>      show that FAQ entry
    prog:<program id>   ask the remembered question again within that program
    flow:<flow id>      start a guided calculation
    more:<entry id>     「詳しく」 under a FAQ answer: the entry's details, rendered again from the KB
    more:r<key>         「詳しく」 under any other reply: its details, kept in the conversation
The dialog engine's own values (cmd:back, …) go to the engine.  A text that
is exactly one of these values counts as picking it, so a program talking to
`kounen chat` can send choices as lines.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from bot.masking import mask
from bot.service_handoff import HandoffMixin
from bot.store import ConcurrentUpdate, Store, StoreError, UpdateUnit, clean_text
from dialogs import engine
from dialogs.choices import program_choices, program_tag
from dialogs.engine import Flow, FlowError
from dialogs.types import DialogState, Reply, ReplyChoice, UserInput
from faq import Entry, KnowledgeBase, Outcome, Policy
from faq.durations import stated_months
from faq.policy import lead_of
from faq.programs import programs_in_question, read_program_reply
from faq.render import general_contacts
from faq.replies import (
    CLARIFY_SPAN,
    FLOW_NAMES,
    SPAN_HOW_TO_TELL,
    answer_details,
    answer_reply,
    answered_notes,
    answers_by_program,
    both_reply,
    clarify_text,
    line_fact,
    lines_to_call,
    not_found_reply,
    offer_labels,
    outcome_text,
)
from faq.text import normalize
from rules import TOKYO

log = logging.getLogger(__name__)

STATE_FORMAT = 1
MAX_CHOICE_BYTES = 64
# 「詳しく」 of several entries at once (one program's answers by span): their ids joined by this.
MORE_JOIN = "+"
_CHOICE_VALUE = re.compile(r"^(?:faq|prog|flow|cmd|hand|go|more):[A-Za-z0-9_.-]{1,58}$")
# The quick replies under /start and "not found": what a person usually wants next.
QUICK_CHOICES = (
    ReplyChoice("よくある質問", "go:faq"),
    ReplyChoice("計算する", "go:calc"),
    ReplyChoice("問い合わせ先", "go:contacts"),
    ReplyChoice("最初から", "go:reset"),
)

HELP = (
    "ご質問を文章で入力してください（例：申請マイページのIDがわからない）。\n"
    "「労働生産性を計算したい」「辞退にあたるか確認したい」と入力すると、数字や日付を順にお伺いして"
    "計算・判定します。案内中は「戻る」「ヘルプ」「やめる」「最初から」が使えます。\n"
    "コマンド：/program（制度を選ぶ）、/human（担当者に相談）、/cancel（案内を中止）、/reset（最初から）"
)
# The first message: who answers what, and the quick replies (QUICK_CHOICES) under it.
WELCOME = (
    "こんにちは。kounen（IT導入補助金 後年手続きサポート）です。"
    "IT導入補助金2020の後年手続きと、2023複数社連携の効果報告についてお答えします。"
    "ご質問を入力するか、下のボタンからお選びください（制度の指定は /program）。"
)
FAQ_MENU = "どの分野のご質問ですか？"
CALC_MENU = "どちらを計算・確認しますか？"
CONTACTS_HEAD = "お問い合わせ先（制度ごとに窓口が異なります）"
CONFLICT = "同じ会話に別の操作が同時に行われたため、処理できませんでした。もう一度お送りください。"
STALE_CHOICE = "この選択肢は現在使えません。ご質問をもう一度入力してください。"
NO_DIALOG = "いまご案内中の計算・判定はありません。ご質問をどうぞ。"
RESET = "会話を最初からにしました。ご質問をどうぞ。"
HELP_WORDS = frozenset({"ヘルプ", "help", "使い方", "?"})
DETAILS_LABEL = "詳しく"
# Details kept per conversation for 「詳しく」 buttons that are not an entry's (a calculation's).
DETAILS_KEPT = 20
_KEPT_KEY = re.compile(r"^r[0-9a-f]{10}$")
DETAILS_GONE = "この「詳しく」の内容は、もう表示できません。お手数ですが、もう一度ご質問ください。"
LOST_DIALOG = (
    "前回のご案内を続けられなくなりました（案内の内容が更新されました）。お手数ですが最初からお願いします。"
)


@dataclass(frozen=True)
class ServiceTurn:
    replies: list[Reply]
    dialog: str | None  # flow id of the dialog in progress after this turn
    step: str | None  # its current step id
    result: dict[str, Any] | None  # structured result when a flow has just finished
    # What this turn answered, for feedback: a knowledge-base entry id, or flow:<flow id> for the
    # summary of a calculation that has just finished; None otherwise.
    entry_id: str | None = None


@dataclass
class Conversation:
    """What the service keeps between turns (stored as JSON plus the program column)."""

    dialog: DialogState | None = None
    # The question waiting for a program choice (or, with the program known, for its span).
    pending_query: str | None = None
    program: str | None = None  # set with /program or picked in a flow; narrows every FAQ search
    finished: DialogState | None = None  # the last finished flow, so that a correction can recompute it
    # Handoff to a person (bot.handoff): not-found count, last calculation, step, open case.
    handoff: dict[str, Any] | None = None
    # What 「詳しく」 shows for the last replies whose details are not an entry's: [key, text]
    # pairs, oldest first, at most DETAILS_KEPT, so an old button still works after later turns.
    details: list[list[str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any] | None:
        if (
            self.dialog is None
            and self.pending_query is None
            and self.finished is None
            and not self.handoff
            and not self.details
        ):
            return None
        data: dict[str, Any] = {
            "format": STATE_FORMAT,
            "dialog": self.dialog.to_json() if self.dialog else None,
            # Stored masked (bot.masking): personal data never rests in the state either.
            "pending_query": mask(self.pending_query) if self.pending_query is not None else None,
        }
        if self.finished is not None:
            data["finished"] = self.finished.to_json()
        if self.handoff:
            data["handoff"] = self.handoff
        if self.details:
            data["details"] = [list(pair) for pair in self.details]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, program: str | None) -> Conversation:
        if not data:
            return cls(program=program)
        try:
            dialog = DialogState.from_json(data["dialog"]) if data.get("dialog") else None
            pending = data.get("pending_query")
            finished = DialogState.from_json(data["finished"]) if data.get("finished") else None
            handoff = data.get("handoff") if isinstance(data.get("handoff"), dict) else None
            details = _kept_details(data.get("details"))
            return cls(
                dialog, str(pending) if pending is not None else None, program, finished, handoff, details
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("dropping an unreadable conversation state (keys %s)", sorted(map(str, data))[:8])
            return cls(program=program)


def _kept_details(raw: object) -> list[list[str]]:
    """The kept 「詳しく」 texts of a stored state; a malformed pair is skipped, never the state."""
    if not isinstance(raw, list):
        return []
    return [
        [pair[0], pair[1]]
        for pair in raw
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
    ]


@dataclass
class _Routed:
    """The outcome of routing one input: replies, the new conversation, and what to log."""

    replies: list[Reply]
    conversation: Conversation
    status: str
    entry_id: str | None = None
    score: float | None = None
    handoff: tuple[str, ...] | None = None  # what the handoff does in the unit (bot.service_handoff)


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _score(outcome: Outcome) -> float | None:
    """The coverage logged with an outcome: the answered entry's (the policy may answer with a
    close entry other than the first ranked), else the first ranked candidate's."""
    chosen = [c for c in outcome.candidates if outcome.entry is not None and c.entry.id == outcome.entry.id]
    best = chosen or outcome.candidates[:1]
    return round(best[0].score, 6) if best else None


def _span_choices(entries: Sequence[Entry]) -> tuple[ReplyChoice, ...]:
    """One program's answers by span, to pick the one that applies."""
    return tuple(ReplyChoice(e.question, _check_value(f"faq:{e.id}")) for e in entries)


def _check_value(value: str) -> str:
    if len(value.encode("utf-8")) > MAX_CHOICE_BYTES or not value.isascii():
        raise ValueError(f"choice value {value!r} is not short ASCII")
    return value


def program_reader(kb: KnowledgeBase) -> Callable[[str], str | None]:
    """How the flows' program step reads a reply to "which program?", by faq.programs (no second parser).

    Returns a program id, "both", "unknown", "other:<the guide for that program>" or None.
    """
    offered = [pid for pid in kb.programs if pid != "common"]

    def read(text: str) -> str | None:
        reply = read_program_reply(kb, text, offered)
        if reply is None:
            return programs_in_question(kb, text).program
        if reply.kind == "program":
            return reply.program
        if reply.kind == "other":
            guide = reply.other.guide if reply.other is not None else ""
            return f"other:{guide}"
        return reply.kind  # "both" or "unknown"

    return read


class ConversationService(HandoffMixin):
    """Routes each user message through commands, the dialog engine and the FAQ policy."""

    def __init__(
        self,
        kb: KnowledgeBase,
        policy: Policy,
        store: Store,
        flows: Mapping[str, Flow] | None = None,
        clock: Callable[[], date] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.kb = kb
        self.policy = policy
        self.store = store
        self._flows: Mapping[str, Flow] | None = flows
        # Today's date in Japan, for 「今日」「先月末」 in the flows; tests pass a fixed day.
        self.clock = clock or (lambda: datetime.now(TOKYO).date())
        # The time in Japan, for whether a line is open now (受付中／時間外); tests pass a fixed time.
        self.now = now or (lambda: datetime.now(TOKYO))

    # -- flows -----------------------------------------------------------------------

    @property
    def flows(self) -> Mapping[str, Flow]:
        """The flows, from dialogs.flows unless given; empty while that module is missing."""
        if self._flows is None:
            try:
                module = importlib.import_module("dialogs.flows")
                self._flows = dict(module.FLOWS)
            except ModuleNotFoundError as exc:
                if exc.name != "dialogs.flows":
                    raise  # a broken flows module is a bug, not a missing feature
                log.warning("guided flows unavailable: %s", exc)
                self._flows = {}
        return self._flows

    def _flow_title(self, flow_id: str) -> str:
        flow = self.flows.get(flow_id)
        return flow.title if flow is not None else FLOW_NAMES.get(flow_id, flow_id)

    # -- the public entry points ------------------------------------------------------

    def handle(self, channel: str, user_id: str, user_input: UserInput) -> ServiceTurn:
        """One user message in one transaction: route it, save the new state, log it; the replies."""
        try:
            handled = self.store.run_update(
                channel, user_id, lambda unit: self.handle_in(unit, channel, user_id, user_input)
            )
        except ConcurrentUpdate:
            return ServiceTurn([Reply(CONFLICT)], None, None, None)
        if handled.result is None:  # pragma: no cover - no update id, so never a redelivery
            raise StoreError("a turn without an update id was taken for a redelivery")
        return handled.result

    def handle_in(self, unit: UpdateUnit, channel: str, user_id: str, user_input: UserInput) -> ServiceTurn:
        """One user message inside `unit`'s transaction (`Store.run_update`): the conversation is
        read and locked there, routed, and its new state and log row written there, so a turn is
        committed whole with whatever else the channel adds (the update claim, the outbox)."""
        user_input = UserInput(clean_text(user_input.text), user_input.choice)
        user_input = self._as_choice(user_input)
        record = unit.conversation()
        before = Conversation.from_json(record.state, record.program)
        prior_flow = before.dialog.flow if before.dialog else None
        routed = self._route(before, user_input)
        routed.replies = self._offer_details(routed.conversation, routed.replies)
        self._handoff_effects(unit, channel, routed, user_input)  # handoff to a person: cases
        after = routed.conversation
        state, program = after.to_json(), after.program
        unchanged = (state, program) == (record.state, record.program)
        if not unchanged and not (record.version == 0 and state is None and program is None):
            unit.save(state, program)
        text = user_input.text if user_input.choice is None else f"[choice] {user_input.choice}"
        unit.log_query(text, routed.status, routed.entry_id, routed.score)
        replies = routed.replies
        dialog = routed.conversation.dialog
        result = next((r.result for r in replies if r.result is not None), None)
        answered = routed.entry_id if routed.status == "answered" else None
        if answered is None and result is not None and prior_flow is not None and dialog is None:
            answered = f"flow:{prior_flow}"  # a finished calculation: its summary gets feedback too
        return ServiceTurn(
            replies,
            dialog.flow if dialog else None,
            dialog.step if dialog else None,
            result,
            answered,
        )

    def resume(self, channel: str, user_id: str) -> list[Reply]:
        """The question a stored dialog is waiting on (for a channel that (re)starts), or nothing."""
        record = self.store.load(channel, user_id)
        conversation = Conversation.from_json(record.state, record.program)
        if conversation.dialog is None:
            return []
        flow = self.flows.get(conversation.dialog.flow)
        if flow is None:
            return []
        try:
            prompt = engine.reprompt(flow, conversation.dialog)
        except FlowError:
            return []
        return [Reply(f"「{flow.title}」の途中です。続きからどうぞ。"), *prompt]

    def feedback(
        self, channel: str, user_id: str, entry_id: str, helpful: bool, comment: str | None = None
    ) -> None:
        self.store.add_feedback(channel, user_id, entry_id, helpful, comment)

    # -- routing ----------------------------------------------------------------------

    def _as_choice(self, user_input: UserInput) -> UserInput:
        if user_input.choice is None and _CHOICE_VALUE.match(user_input.text.strip()):
            return UserInput(choice=user_input.text.strip())
        return user_input

    def _route(self, conv: Conversation, user_input: UserInput) -> _Routed:
        text = _normal(user_input.text)
        # -- handoff to a person: recognised from any state, before the FAQ ----------------
        handoff = self._handoff_route(conv, user_input, text)
        if handoff is not None:
            return handoff
        # ------------------------------------------------------------------------------------
        if user_input.choice is None and text.startswith("/"):
            return self._command(conv, text)
        if user_input.choice is not None and user_input.choice.split(":", 1)[0] in (
            "faq",
            "prog",
            "flow",
            "go",
        ):
            return self._service_choice(conv, user_input.choice)
        if user_input.choice is not None and user_input.choice.startswith("more:"):
            return self._more(conv, user_input.choice.removeprefix("more:"))
        if conv.dialog is not None:
            flow = self.flows.get(conv.dialog.flow)
            if flow is not None:
                return self._in_dialog(conv, flow, conv.dialog, user_input)
            conv.dialog = None
            return self._lost_dialog(conv, user_input)
        edit = user_input.choice is not None and user_input.choice.startswith(engine.EDIT)
        if conv.finished is not None and (user_input.choice is None or edit):
            revised = self._revise(conv, conv.finished, user_input)
            if revised is not None:
                return revised
        if user_input.choice is not None:
            return _Routed(
                [Reply(NO_DIALOG if user_input.choice.startswith("cmd:") else STALE_CHOICE)], conv, "choice"
            )
        if text in ("最初から", "さいしょから"):
            return _Routed([Reply(RESET)], Conversation(), "command")
        if text.lower() in HELP_WORDS:
            return _Routed([Reply(HELP)], conv, "command")
        return self._faq(conv, user_input.text)

    def _lost_dialog(self, conv: Conversation, user_input: UserInput) -> _Routed:
        routed = (
            self._faq(conv, user_input.text) if user_input.choice is None else _Routed([], conv, "choice")
        )
        routed.replies.insert(0, Reply(LOST_DIALOG))
        return routed

    def _command(self, conv: Conversation, text: str) -> _Routed:
        name, _, arg = text[1:].partition(" ")
        name, arg = name.lower(), arg.strip().lower()
        if name == "start":
            replies = [Reply(WELCOME, QUICK_CHOICES), *self._reprompt(conv)]
            return _Routed(replies, conv, "command")
        if name == "help":
            return _Routed([Reply(HELP, QUICK_CHOICES), *self._reprompt(conv)], conv, "command")
        if name == "cancel":
            if conv.dialog is None and conv.pending_query is None:
                return _Routed([Reply(NO_DIALOG)], conv, "command")
            title = self._flow_title(conv.dialog.flow) if conv.dialog else None
            conv.dialog, conv.pending_query = None, None
            message = (
                f"「{title}」を中止しました。ご質問をどうぞ。" if title else "中止しました。ご質問をどうぞ。"
            )
            return _Routed([Reply(message)], conv, "command")
        if name == "reset":
            return _Routed([Reply(RESET)], Conversation(), "command")
        if name == "program":
            return self._program_command(conv, arg)
        return _Routed(
            [Reply(f"「/{name}」というコマンドはありません。\n{HELP}"), *self._reprompt(conv)],
            conv,
            "command",
        )

    def _program_command(self, conv: Conversation, arg: str) -> _Routed:
        programs = {pid: p for pid, p in self.kb.programs.items() if pid != "common"}
        if arg in ("any", "all", "none", "clear", "なし", "指定なし"):
            conv.program = None
            return _Routed([Reply("制度の指定を解除しました。"), *self._reprompt(conv)], conv, "command")
        if arg in programs:
            conv.program = arg
            reply = Reply(
                f"制度を「{programs[arg].name}」に指定しました。以後のご質問はこの制度でお答えします。"
            )
            return _Routed([reply, *self._reprompt(conv)], conv, "command")
        current = programs[conv.program].short if conv.program in programs else "指定なし"
        head = f"「{arg}」という制度はありません。" if arg else ""
        ask = Reply(
            f"{head}現在の制度：{current}\n制度を選んでください（指定の解除は /program any）。",
            self._program_buttons(),
        )
        return _Routed([ask, *self._reprompt(conv)], conv, "command")

    def _reprompt(self, conv: Conversation) -> list[Reply]:
        if conv.dialog is None:
            return []
        flow = self.flows.get(conv.dialog.flow)
        if flow is None:
            return []
        try:
            return engine.reprompt(flow, conv.dialog)
        except FlowError:
            return []

    # -- choices made by this service ------------------------------------------------

    def _service_choice(self, conv: Conversation, value: str) -> _Routed:
        kind, _, arg = value.partition(":")
        if kind == "go":
            return self._go(conv, arg)
        if kind == "faq":
            entry = self.kb.by_id.get(arg)
            if entry is None:
                return _Routed([Reply(STALE_CHOICE), *self._reprompt(conv)], conv, "choice")
            conv.pending_query = None
            outcome = Outcome(query=value, status="answered", candidates=(), entry=entry)
            return self._answered(conv, outcome)
        if kind == "prog":
            dialog = conv.dialog
            if dialog is not None and dialog.step == "program" and (flow := self.flows.get(dialog.flow)):
                # A program button pressed while a flow asks for the program (an older answer's
                # buttons): it answers the flow's own question.
                return self._in_dialog(conv, flow, dialog, UserInput(choice=arg))
            if dialog is not None and (flow := self.flows.get(dialog.flow)):
                # Mid-flow an older answer's program button would leave the remembered program and
                # the flow's apart: the flow keeps its program, and says so.
                current = self.kb.programs.get(self._flow_program(conv, flow, dialog) or "")
                note = f"いまの「{flow.title}」は{current.short}で進めています。" if current else ""
                change = "制度を変えるには「やめる」で案内を終えてからお選びください。"
                return _Routed([Reply(note + change), *self._reprompt(conv)], conv, "choice")
            if arg in ("other", "unknown"):
                return self._program_reply_kind(conv, arg)
            if arg not in self.kb.programs or arg == "common":
                return _Routed([Reply(STALE_CHOICE), *self._reprompt(conv)], conv, "choice")
            conv.program = arg  # picked: remembered for the conversation (/program any clears it)
            if conv.pending_query is None:
                name = self.kb.programs[arg].short
                ask = Reply(
                    f"制度を「{name}」にしました。" + ("" if conv.dialog else "ご質問を入力してください。")
                )
                return _Routed([ask, *self._reprompt(conv)], conv, "choice")
            query, conv.pending_query = conv.pending_query, None
            # The answer shown for this program beside the other one is the answer within it;
            # where the program showed several (by how long the tool was used), the person picks
            # the one that applies.
            both = self.policy.decide(query)
            mine = [e for e in both.answers if e.program == arg] if len(both.answers) > 1 else []
            chosen = mine[0] if len(mine) == 1 else None
            if len(mine) > 1:
                # Its answers by span were shown side by side: which one is theirs.
                # Kept, so that a span typed instead of tapped (「1年半です」) answers the question.
                conv.pending_query = query
                return _Routed([Reply(CLARIFY_SPAN, _span_choices(mine))], conv, "clarify")
            if chosen is not None:
                picked = Outcome(
                    query, "answered", both.candidates, entry=chosen, answers=(chosen,), program=arg
                )
                return self._answered(conv, picked)
            return self._decide(conv, query, program=arg)
        if arg not in self.flows:
            return _Routed([Reply(STALE_CHOICE), *self._reprompt(conv)], conv, "choice")
        if conv.dialog is not None and conv.dialog.flow == arg:
            return _Routed(self._reprompt(conv), conv, "dialog")
        return self._start(conv, arg)

    # -- quick replies (go:…) ----------------------------------------------------------

    def _go(self, conv: Conversation, arg: str) -> _Routed:
        """よくある質問 / 計算する / 問い合わせ先 / 最初から, and a FAQ category picked from the list."""
        if arg == "reset":
            return _Routed([Reply(RESET, QUICK_CHOICES)], Conversation(), "command")
        if arg == "calc" and conv.dialog is not None and (current := self.flows.get(conv.dialog.flow)):
            # Mid-flow: where the person is, and the other flow offered with what it costs.
            other = next((fid for fid in self.flows if fid != current.id), current.id)
            return self._switch(conv, current, conv.dialog, other)
        if arg == "calc":
            flows = [
                ReplyChoice(f"{flow.title}", _check_value(f"flow:{fid}")) for fid, flow in self.flows.items()
            ]
            return _Routed([Reply(CALC_MENU, tuple(flows))], conv, "choice")
        if arg == "contacts":
            return _Routed([self._contacts_reply(conv.program), *self._reprompt(conv)], conv, "choice")
        if arg == "faq":
            menu = Reply(FAQ_MENU, self._category_buttons(conv.program))
            return _Routed([menu, *self._reprompt(conv)], conv, "choice")
        category = arg.removeprefix("faq.")
        if arg.startswith("faq.") and category in self.kb.categories:
            name = self.kb.categories[category].name
            entries = Reply(
                f"「{name}」のよくある質問です。お選びください。", self._entry_buttons(category, conv.program)
            )
            return _Routed([entries, *self._reprompt(conv)], conv, "choice")
        return _Routed([Reply(STALE_CHOICE), *self._reprompt(conv)], conv, "choice")

    def _browsable(self, program: str | None) -> list[Any]:
        """The entries a person can pick from a list: within the program when it is known."""
        return [e for e in self.kb.entries if program is None or e.program in (program, "common")]

    def _category_buttons(self, program: str | None) -> tuple[ReplyChoice, ...]:
        used = {e.category for e in self._browsable(program)}
        return tuple(
            ReplyChoice(c.name, _check_value(f"go:faq.{c.id}"))
            for c in self.kb.categories.values()
            if c.id in used
        )

    def _entry_buttons(self, category: str, program: str | None) -> tuple[ReplyChoice, ...]:
        """The category's questions, each tagged with its program when the list mixes both."""
        buttons = []
        for entry in self._browsable(program):
            if entry.category != category:
                continue
            tag = program_tag(entry.program) if program is None else None
            label = f"{tag}｜{entry.question}" if tag else entry.question
            buttons.append(ReplyChoice(label, _check_value(f"faq:{entry.id}")))
        return tuple(buttons)

    def _contacts_reply(self, program: str | None) -> Reply:
        """The lines to call, each with its number and whether it is open now; the program's
        only when it is known.  Not a dead end: the other quick replies stay under it."""
        known = self.kb.programs.get(program or "") if program != "common" else None
        lines = lines_to_call(self.kb, program if known is not None else None, self.now())
        head = f"{known.short}のお問い合わせ先" if known is not None else CONTACTS_HEAD
        onward = tuple(c for c in QUICK_CHOICES if c.value != "go:contacts")
        return Reply(head + "\n\n" + "\n".join(lines), onward, headline=head)

    # -- dialogs ----------------------------------------------------------------------

    def _start(self, conv: Conversation, flow_id: str, outcome: Outcome | None = None) -> _Routed:
        flow = self.flows.get(flow_id)
        if flow is None:
            title = FLOW_NAMES.get(flow_id, flow_id)
            return _Routed(
                [Reply(f"「{title}」のご案内は現在ご利用いただけません。ご質問を文章でどうぞ。")],
                conv,
                "dialog",
                score=_score(outcome) if outcome else None,
            )
        score = _score(outcome) if outcome else None
        question = outcome.query if outcome is not None else None
        program = self._known_program(conv, question)
        if flow.programs and program is not None and program not in flow.programs:
            # The flow's source does not cover this program (productivity for IT導入補助金2020).
            note = flow.not_covered.get(program, f"「{flow.title}」はこの制度では使えません。")
            lines = [line_fact(c, self.now()) for c in general_contacts(self.kb, program)]
            return _Routed([Reply("\n\n".join([note, *lines]), headline=note)], conv, "dialog", score=score)
        known = {"program": program} if program is not None and "program" in flow.by_id else {}
        turn = engine.start(flow, values=known, question=question, context=self._context())
        conv.dialog, conv.pending_query, conv.finished = turn.state, None, turn.finished
        if program is not None and program in flow.programs:
            conv.program = program  # said in the request: asked at most once, here and later
        replies = list(turn.replies)
        if program is not None and program in self.kb.programs:
            replies[0] = replace(
                replies[0], text=f"{replies[0].text}\n対象：{self.kb.programs[program].short}"
            )
            replies[1:1] = self._first_question_answer(turn.state, program)
        return _Routed(replies, conv, "dialog", score=score)

    def _context(self) -> engine.Context:
        return engine.Context(today=self.clock(), read_program=program_reader(self.kb), now=self.now())

    def _known_program(self, conv: Conversation, question: str | None) -> str | None:
        """The program already known: named without doubt in the request, else the conversation's."""
        named = programs_in_question(self.kb, question).program if question else None
        return named or conv.program

    def _first_question_answer(self, state: DialogState | None, program: str) -> list[Reply]:
        """The request that started the flow, answered for the program now known (when an entry fits it)."""
        if state is None or not state.question or self._bare_request(state.question):
            return []
        outcome = self.policy.decide(state.question, program=program)
        entry = outcome.entry if outcome.status == "answered" else None
        if entry is None and outcome.status == "dialog" and outcome.candidates:
            # The same rule as an outright answer: a clear winner within the program, or nothing.
            top, config = outcome.candidates[0], self.policy.config
            second = outcome.candidates[1].relevance if len(outcome.candidates) > 1 else 0.0
            clear = top.coverage >= config.coverage_min and lead_of(top.relevance, second) >= config.lead_min
            if clear and top.entry.program in (program, "common"):
                entry = top.entry
        if entry is None:
            return []
        return [self._entry_reply(entry, (f"※最初のご質問「{state.question}」へのお答えです。",))]

    def _bare_request(self, question: str) -> bool:
        """「辞退届を出すべきか知りたい」 only asks for the flow, whose result answers it; 「半年で解約したら…」 says more."""
        rest = normalize(question)
        intents = self.kb.intents
        words = [*(c for p in self.kb.programs.values() for c in (*p.cues, *p.year_cues))]
        if intents is not None:
            words += [*intents.dialog_actions, *intents.dialog_object_actions]
            words += [t for d in intents.dialog for t in d.topics]
        for word in sorted({normalize(w) for w in words}, key=len, reverse=True):
            if word:
                rest = rest.replace(word, "")
        rest = re.sub(
            r"[をがにはのでかともてたいし、。？?！!\s]|です|ます|ください|お願い|したら|なる", "", rest
        )
        return len(rest.replace("ツール", "").replace("it", "")) <= 2

    def _in_dialog(
        self, conv: Conversation, flow: Flow, state: DialogState, user_input: UserInput
    ) -> _Routed:
        finished = conv.finished
        if finished is not None and finished.flow == state.flow:  # a change from the recap is open
            kept = engine.leave_change(flow, finished, user_input, self._context())
            if kept is not None:
                conv.dialog, conv.finished = None, kept.finished
                return _Routed(list(kept.replies), conv, "dialog")
        restated = self._restated_program(conv, flow, state, user_input)
        if restated is not None:
            return restated
        try:
            turn = engine.advance(flow, state, user_input, self._context())
        except FlowError as exc:
            log.warning("dropping a stale dialog state: %s", exc)
            conv.dialog = None
            return self._lost_dialog(conv, user_input)
        text = user_input.text.strip()
        if not turn.understood and user_input.choice is None and text:
            if self.policy.detect_smalltalk(normalize(text)) == "greeting":
                # A returning user's greeting is not an answer: say where they are.
                where = engine.where(flow, state) + "続きから答えるか、最初からやり直すか選んでください。"
                return _Routed([Reply(where, engine.RESUME_CHOICES)], conv, "dialog")
            other = self.policy.detect_dialog(normalize(text))
            if other is not None and other in self.flows and not turn.question:
                return self._switch(conv, flow, state, other)
            if turn.question:
                side = self._side_question(conv, flow, state, text)
                if side is not None:
                    return side
        before = state.values.get("program")
        conv.dialog = turn.state
        if turn.finished is not None:
            conv.finished = turn.finished
        replies = list(turn.replies)
        after = (turn.state or turn.finished or state).values.get("program")
        if after in self.kb.programs and after != "common" and after != before:
            conv.program = str(after)  # asked at most once: later questions and flows use it
            if turn.state is not None:
                replies[-1:-1] = self._first_question_answer(turn.state, str(after))
        return _Routed(replies, conv, "dialog")

    def _restated_program(
        self, conv: Conversation, flow: Flow, state: DialogState, user_input: UserInput
    ) -> _Routed | None:
        """「2023の複数社連携です」 typed at a step that asks for a figure restates the flow's own
        program: it is acknowledged and the step asked again, never read as 2,023円."""
        if user_input.choice is not None or state.step == "program":
            return None
        offered = [pid for pid in self.kb.programs if pid != "common"]
        reply = read_program_reply(self.kb, user_input.text, offered)
        program = reply.program if reply is not None and reply.kind == "program" else None
        if program is None or program != self._flow_program(conv, flow, state):
            return None
        conv.program = program
        said = Reply(f"制度：{self.kb.programs[program].short}（この制度で進めています）")
        return _Routed([said, *self._reprompt(conv)], conv, "dialog")

    def _switch(self, conv: Conversation, flow: Flow, state: DialogState, other: str) -> _Routed:
        """A request for a flow mid-flow: say where the user is and offer the other flow, or go on."""
        where = engine.where(flow, state)
        if other == flow.id:
            return _Routed([Reply(where), *self._reprompt(conv)], conv, "dialog")
        title = self._flow_title(other)
        choices = (
            ReplyChoice(f"「{title}」を始める", _check_value(f"flow:{other}")),
            engine.RESUME_CHOICES[0],
        )
        ask = f"{where}「{title}」を始めますか？（始めると、いまの計算の入力は残りません）"
        return _Routed([Reply(ask, choices)], conv, "dialog")

    def _flow_program(self, conv: Conversation, flow: Flow, state: DialogState) -> str | None:
        chosen = state.values.get("program")
        if chosen in self.kb.programs and chosen != "common":
            return str(chosen)
        if len(flow.programs) == 1:
            return flow.programs[0]
        return conv.program

    def _side_question(self, conv: Conversation, flow: Flow, state: DialogState, text: str) -> _Routed | None:
        """A question asked mid-flow: answered for the flow's program, then the same step is asked again."""
        program = self._flow_program(conv, flow, state)
        outcome = self.policy.decide(text, program=program)
        if outcome.status == "answered" and outcome.entry is not None:
            return self._answered(conv, outcome)
        if (
            program is None
            or program not in self.kb.programs
            or outcome.status not in ("no_match", "clarify")
        ):
            return None
        # Not found within the flow's program: said shortly, with that program's line only, and
        # the near entries offered (picking one answers it, then the same step is asked again).
        within = replace(outcome, program=program)
        silent = not_found_reply(self.kb, within, self.now())
        reply = Reply(silent.text, self._offered(within), headline=silent.headline)
        return _Routed([reply, *self._reprompt(conv)], conv, outcome.status, score=_score(outcome))

    def _revise(self, conv: Conversation, finished: DialogState, user_input: UserInput) -> _Routed | None:
        """After a result: a correction recomputes it; 「戻る」 reopens the last step."""
        flow = self.flows.get(finished.flow)
        if flow is None:
            conv.finished = None
            return None
        try:
            turn = engine.revise(flow, finished, user_input, self._context())
        except FlowError:
            conv.finished = None
            return None
        if turn is None:
            return None
        conv.dialog = turn.state
        if turn.state is None:
            conv.finished = turn.finished
        elif not (user_input.choice or "").startswith(engine.EDIT):
            conv.finished = None  # 戻る or 最初から after the result: the result is left behind
        # A change from the recap keeps the result until the change is answered, so that
        # 戻る or やめる can give it back unchanged.
        return _Routed(list(turn.replies), conv, "dialog")

    # -- FAQ --------------------------------------------------------------------------

    def _faq(self, conv: Conversation, text: str) -> _Routed:
        if conv.pending_query is not None:
            # The bot has just asked which program: 「2020です」, 「両方」, 「わからない」, 「通常枠」.
            offered = [pid for pid in self.kb.programs if pid != "common"]
            reply = read_program_reply(self.kb, text, offered)
            # With the program known, the question asked was which span of use applies: only a
            # program named again is read as the program question's answer.
            if reply is not None and (conv.program is None or reply.kind == "program"):
                if reply.kind == "program" and reply.program is not None:
                    return self._service_choice(conv, f"prog:{reply.program}")
                if reply.kind == "both":
                    query, conv.pending_query = conv.pending_query, None
                    return self._decide(conv, query, program=None)
                if reply.kind == "other" and reply.other is not None:
                    conv.pending_query = None
                    return _Routed([Reply(reply.other.guide)], conv, "no_match")
                return self._program_reply_kind(conv, reply.kind)
            if conv.program is not None:
                query = conv.pending_query
                unsure = reply is not None and reply.kind == "unknown"
                mine = (
                    [e for e in self.policy.decide(query).answers if e.program == conv.program]
                    if unsure
                    else []
                )
                if len(mine) > 1:
                    # 「わからない」 to the span question: where the span counts from, and the line.
                    lines = lines_to_call(self.kb, conv.program, self.now())
                    how = "\n\n".join([SPAN_HOW_TO_TELL, *lines, CLARIFY_SPAN])
                    return _Routed([Reply(how, _span_choices(mine))], conv, "clarify")
                # 「1年半くらいです」 answers the span question: the question is decided again with it.
                conv.pending_query = None
                if stated_months(normalize(text)) is not None:
                    return self._decide(conv, f"{query}。{text}", program=conv.program)
        else:
            stated = read_program_reply(self.kb, text, [pid for pid in self.kb.programs if pid != "common"])
            if stated is not None and stated.kind == "program" and stated.program is not None:
                return self._service_choice(conv, f"prog:{stated.program}")  # 「2020です」: remembered
        return self._decide(conv, text, program=conv.program)

    def _program_buttons(self) -> tuple[ReplyChoice, ...]:
        """2020 / 2023 複数社連携 / それ以外 / わからない: remember the program, or learn how to tell."""
        return tuple(ReplyChoice(c.label, _check_value(c.value)) for c in program_choices("prog:"))

    def _program_reply_kind(self, conv: Conversation, kind: str) -> _Routed:
        replies = self.kb.program_replies
        if kind == "other":
            conv.pending_query = None
            return _Routed([Reply(replies.other_guide)], conv, "no_match")
        # 「わからない」: how to tell, then the pending question answered for every program.
        query = conv.pending_query
        head = Reply(replies.how_to_tell, self._program_buttons() if query is None else ())
        if query is None:
            return _Routed([head], conv, "clarify")
        if len(self.policy.decide(query).answers) > 1:
            # Both programs' answers are on screen already: how to tell, and the buttons again,
            # with the question kept for the program the person then picks.
            return _Routed([replace(head, choices=self._program_buttons())], conv, "clarify")
        routed = self._decide(conv, query, program=None)
        routed.replies.insert(0, head)
        return routed

    def _decide(self, conv: Conversation, query: str, program: str | None) -> _Routed:
        outcome = self.policy.decide(query, program=program)
        if outcome.program is not None and outcome.program != conv.program and outcome.status != "smalltalk":
            conv.program = outcome.program  # stated in the question: remembered, and shown with the answer
        if outcome.status == "answered" and len(outcome.answers) > 1:
            # The program is unknown and both programs answer differently: both, side by side,
            # with buttons that remember the program and answer this question again within it.
            conv.pending_query = query
            shaped = both_reply(self.kb, outcome.answers, self.now())
            more = tuple(
                self._more_choice(*side, labelled=True)
                for side in answers_by_program(outcome.answers).values()
            )
            reply = Reply(shaped.text, (*self._program_buttons(), *more), headline=shaped.headline)
            return _Routed([reply], conv, "answered", outcome.answers[0].id, _score(outcome))
        if outcome.status == "answered" and outcome.entry is not None:
            conv.pending_query = None
            return self._answered(conv, outcome)
        if outcome.status == "clarify" and outcome.choices:
            choices = tuple(
                ReplyChoice(c.label, _check_value(f"faq:{c.entry_id}")) for c in outcome.choices if c.entry_id
            )
            conv.pending_query = None
            # The question only, saying why it is asked: channels show the choices themselves.
            return _Routed([Reply(clarify_text(outcome), choices)], conv, "clarify", score=_score(outcome))
        if outcome.status == "dialog" and outcome.dialog:
            return self._start(conv, outcome.dialog, outcome)
        conv.pending_query = None
        status = "no_match" if outcome.status == "clarify" else outcome.status
        if status != "no_match" or outcome.reason == "empty":
            return _Routed(
                [Reply(outcome_text(self.kb, outcome, self.now()))], conv, status, score=_score(outcome)
            )
        shaped = not_found_reply(self.kb, outcome, self.now())
        # Entries near the question first, one tap each; then the usual quick replies.
        reply = Reply(shaped.text, (*self._offered(outcome), *QUICK_CHOICES), headline=shaped.headline)
        return _Routed([reply], conv, status, score=_score(outcome))

    def _offered(self, outcome: Outcome) -> tuple[ReplyChoice, ...]:
        """The entries offered under a "not found", as buttons that answer them."""
        return tuple(
            ReplyChoice(label, _check_value(f"faq:{c.entry_id}"))
            for c, label in zip(outcome.suggestions, offer_labels(self.kb, outcome), strict=True)
            if c.entry_id
        )

    def _answered(self, conv: Conversation, outcome: Outcome) -> _Routed:
        """The answer; outside a dialog it offers the entry's flow, inside one the dialog asks again."""
        entry = outcome.entry
        if entry is None:
            raise ValueError("an answered outcome without its entry")
        if conv.dialog is not None:  # a side question: the dialog resumes at the same step
            replies = [self._entry_reply(entry), *self._reprompt(conv)]
            return _Routed(replies, conv, "answered", entry.id, _score(outcome))
        choices: tuple[ReplyChoice, ...] = ()
        if entry.dialog and entry.dialog in self.flows:
            label = f"「{self._flow_title(entry.dialog)}」を始める"
            choices = (ReplyChoice(label, _check_value(f"flow:{entry.dialog}")),)
        reply = self._entry_reply(entry, answered_notes(self.kb, outcome, conv.program), choices)
        return _Routed([reply], conv, "answered", entry.id, _score(outcome))

    def _entry_reply(
        self, entry: Entry, notes: tuple[str, ...] = (), choices: tuple[ReplyChoice, ...] = ()
    ) -> Reply:
        """An entry's answer as one reply: headline, the line to call, notes; 「詳しく」 for the rest."""
        shaped = answer_reply(self.kb, entry, self.now(), notes)
        choices = (self._more_choice(entry), *choices)
        return Reply(shaped.text, choices, headline=shaped.headline, details=shaped.details)

    def _more_choice(self, *entries: Entry, labelled: bool = False) -> ReplyChoice:
        """「詳しく」 for an entry, or for one program's side holding its answers by span (1年未満,
        1年以上: each span's details in turn, one button so that the buttons fit one phone screen).
        Stateless: the details are rendered again from the KB when pressed."""
        tag = program_tag(entries[0].program) if labelled else None
        label = f"{DETAILS_LABEL}（{tag}）" if tag else DETAILS_LABEL
        return ReplyChoice(label, _check_value("more:" + MORE_JOIN.join(e.id for e in entries)))

    # -- 「詳しく」 -------------------------------------------------------------------

    def _offer_details(self, conv: Conversation, replies: list[Reply]) -> list[Reply]:
        """Every reply with details gets a 「詳しく」 button.  An entry's button already names the
        entry; other details are kept in the conversation (the last DETAILS_KEPT) under a key made
        from their text, so an old button shows what it was shown with, or says it is gone."""
        out = []
        for reply in replies:
            if not reply.details or any(c.value.startswith("more:") for c in reply.choices):
                out.append(reply)
                continue
            key = "r" + hashlib.sha256(reply.details.encode("utf-8")).hexdigest()[:10]
            conv.details = [pair for pair in conv.details if pair[0] != key]
            conv.details = [*conv.details, [key, reply.details]][-DETAILS_KEPT:]
            more = ReplyChoice(DETAILS_LABEL, _check_value(f"more:{key}"))
            out.append(replace(reply, choices=(more, *reply.choices)))  # first, as under an answer
        return out

    def _more(self, conv: Conversation, key: str) -> _Routed:
        """「詳しく」 pressed: the details, then (inside a dialog) the current step asked again."""
        entries = [e for k in key.split(MORE_JOIN) if (e := self.kb.by_id.get(k)) is not None]
        if entries and len(entries) == key.count(MORE_JOIN) + 1:
            text = answer_details(self.kb, *entries)
        else:
            kept = dict((k, v) for k, v in conv.details) if _KEPT_KEY.match(key) else {}
            text = kept.get(key, "")
        if not text:
            return _Routed([Reply(DETAILS_GONE), *self._reprompt(conv)], conv, "choice")
        return _Routed([Reply(text), *self._reprompt(conv)], conv, "choice")
