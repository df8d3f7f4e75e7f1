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
The dialog engine's own values (cmd:back, …) go to the engine.  A text that
is exactly one of these values counts as picking it, so a program talking to
`kounen chat` can send choices as lines.
"""

from __future__ import annotations

import importlib
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.masking import mask
from bot.service_handoff import HandoffMixin
from bot.store import ConcurrentUpdate, Store, StoreError, UpdateUnit, clean_text
from dialogs import engine
from dialogs.engine import Flow, FlowError
from dialogs.types import DialogState, Reply, ReplyChoice, UserInput
from faq import KnowledgeBase, Outcome, Policy, answer_text
from faq.replies import FLOW_NAMES, outcome_text

log = logging.getLogger(__name__)

STATE_FORMAT = 1
MAX_CHOICE_BYTES = 64
_CHOICE_VALUE = re.compile(r"^(?:faq|prog|flow|cmd|hand):[A-Za-z0-9_-]{1,58}$")

HELP = (
    "IT導入補助金2020の後年手続き、IT導入補助金2023（複数社連携）の効果報告についてお答えします。\n"
    "・ご質問を文章で入力してください（例：申請マイページのIDがわからない）。\n"
    "・「労働生産性を計算したい」「辞退にあたるか確認したい」と入力すると、数字や日付を順にお伺いして"
    "計算・判定をご案内します。案内中は「戻る」「ヘルプ」「やめる」「最初から」が使えます。\n"
    "コマンド：/program it2020 または /program it2023-multi（制度を指定）、/program any（指定を解除）、"
    "/cancel（案内を中止）、/reset（会話を最初から）、/help（この説明）"
)
WELCOME = "こんにちは。kounen（IT導入補助金 後年手続きサポート）です。\n" + HELP
CONFLICT = "同じ会話に別の操作が同時に行われたため、処理できませんでした。もう一度お送りください。"
STALE_CHOICE = "この選択肢は現在使えません。ご質問をもう一度入力してください。"
NO_DIALOG = "いまご案内中の計算・判定はありません。ご質問をどうぞ。"
RESET = "会話を最初からにしました。ご質問をどうぞ。"
HELP_WORDS = frozenset({"ヘルプ", "help", "使い方", "?"})
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
    pending_query: str | None = None  # the question waiting for a program choice
    program: str | None = None  # set with /program; narrows every FAQ search
    # Handoff to a person (bot.handoff): not-found count, last calculation, step, open case.
    handoff: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any] | None:
        if self.dialog is None and self.pending_query is None and not self.handoff:
            return None
        data = {
            "format": STATE_FORMAT,
            "dialog": self.dialog.to_json() if self.dialog else None,
            # Stored masked (bot.masking): personal data never rests in the state either.
            "pending_query": mask(self.pending_query) if self.pending_query is not None else None,
        }
        if self.handoff:
            data["handoff"] = self.handoff
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, program: str | None) -> Conversation:
        if not data:
            return cls(program=program)
        try:
            dialog = DialogState.from_json(data["dialog"]) if data.get("dialog") else None
            pending = data.get("pending_query")
            handoff = data.get("handoff") if isinstance(data.get("handoff"), dict) else None
            return cls(dialog, str(pending) if pending is not None else None, program, handoff)
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("dropping an unreadable conversation state (keys %s)", sorted(map(str, data))[:8])
            return cls(program=program)


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
    return round(outcome.candidates[0].score, 6) if outcome.candidates else None


def _check_value(value: str) -> str:
    if len(value.encode("utf-8")) > MAX_CHOICE_BYTES or not value.isascii():
        raise ValueError(f"choice value {value!r} is not short ASCII")
    return value


class ConversationService(HandoffMixin):
    """Routes each user message through commands, the dialog engine and the FAQ policy."""

    def __init__(
        self,
        kb: KnowledgeBase,
        policy: Policy,
        store: Store,
        flows: Mapping[str, Flow] | None = None,
    ) -> None:
        self.kb = kb
        self.policy = policy
        self.store = store
        self._flows: Mapping[str, Flow] | None = flows

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
        if user_input.choice is not None and user_input.choice.split(":", 1)[0] in ("faq", "prog", "flow"):
            return self._service_choice(conv, user_input.choice)
        if conv.dialog is not None:
            flow = self.flows.get(conv.dialog.flow)
            if flow is not None:
                return self._in_dialog(conv, flow, conv.dialog, user_input)
            conv.dialog = None
            return self._lost_dialog(conv, user_input)
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
            replies = [Reply(WELCOME), *self._reprompt(conv)]
            return _Routed(replies, conv, "command")
        if name == "help":
            return _Routed([Reply(HELP), *self._reprompt(conv)], conv, "command")
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
        current = programs[conv.program].name if conv.program in programs else "指定なし"
        usage = " / ".join(f"/program {pid}" for pid in programs) + " / /program any"
        head = f"「{arg}」という制度はありません。" if arg else ""
        return _Routed(
            [Reply(f"{head}現在の制度：{current}\n指定するには：{usage}"), *self._reprompt(conv)],
            conv,
            "command",
        )

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
        if kind == "faq":
            entry = self.kb.by_id.get(arg)
            if entry is None:
                return _Routed([Reply(STALE_CHOICE), *self._reprompt(conv)], conv, "choice")
            conv.pending_query = None
            outcome = Outcome(query=value, status="answered", candidates=(), entry=entry)
            return self._answered(conv, outcome)
        if kind == "prog":
            if arg not in self.kb.programs or arg == "common":
                return _Routed([Reply(STALE_CHOICE), *self._reprompt(conv)], conv, "choice")
            if conv.pending_query is None:
                name = self.kb.programs[arg].short
                ask = Reply(f"「{name}」についてのご質問を入力してください。")
                return _Routed([ask, *self._reprompt(conv)], conv, "choice")
            query, conv.pending_query = conv.pending_query, None
            return self._decide(conv, query, program=arg)
        if arg not in self.flows:
            return _Routed([Reply(STALE_CHOICE), *self._reprompt(conv)], conv, "choice")
        if conv.dialog is not None and conv.dialog.flow == arg:
            return _Routed(self._reprompt(conv), conv, "dialog")
        return self._start(conv, arg)

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
        turn = engine.start(flow)
        conv.dialog, conv.pending_query = turn.state, None
        return _Routed(list(turn.replies), conv, "dialog", score=_score(outcome) if outcome else None)

    def _in_dialog(
        self, conv: Conversation, flow: Flow, state: DialogState, user_input: UserInput
    ) -> _Routed:
        try:
            turn = engine.advance(flow, state, user_input)
        except FlowError as exc:
            log.warning("dropping a stale dialog state: %s", exc)
            conv.dialog = None
            return self._lost_dialog(conv, user_input)
        if not turn.understood and user_input.choice is None and user_input.text.strip():
            # Perhaps a question asked mid-flow: answer it, then ask the same question again.
            outcome = self.policy.decide(user_input.text, program=conv.program)
            if outcome.status == "answered" and outcome.entry is not None:
                return self._answered(conv, outcome)
        conv.dialog = turn.state
        return _Routed(list(turn.replies), conv, "dialog")

    # -- FAQ --------------------------------------------------------------------------

    def _faq(self, conv: Conversation, text: str) -> _Routed:
        return self._decide(conv, text, program=conv.program)

    def _decide(self, conv: Conversation, query: str, program: str | None) -> _Routed:
        outcome = self.policy.decide(query, program=program)
        if outcome.status == "answered" and outcome.entry is not None:
            conv.pending_query = None
            return self._answered(conv, outcome)
        if outcome.status == "clarify" and outcome.choices:
            by_program = outcome.reason == "answer differs by program" and all(
                c.program for c in outcome.choices
            )
            choices: list[ReplyChoice] = []
            for choice in outcome.choices:
                if by_program:
                    value = f"prog:{choice.program}"
                elif choice.entry_id:
                    value = f"faq:{choice.entry_id}"
                else:
                    continue
                choices.append(ReplyChoice(choice.label, _check_value(value)))
            conv.pending_query = query if by_program else None
            # The question only: channels show the choices themselves (numbered lines, buttons).
            head = outcome_text(self.kb, outcome).split("\n", 1)[0]
            reply = Reply(head, tuple(choices))
            return _Routed([reply], conv, "clarify", score=_score(outcome))
        if outcome.status == "dialog" and outcome.dialog:
            return self._start(conv, outcome.dialog, outcome)
        conv.pending_query = None
        status = "no_match" if outcome.status == "clarify" else outcome.status
        return _Routed([Reply(outcome_text(self.kb, outcome))], conv, status, score=_score(outcome))

    def _answered(self, conv: Conversation, outcome: Outcome) -> _Routed:
        """The answer; outside a dialog it offers the entry's flow, inside one the dialog asks again."""
        entry = outcome.entry
        if entry is None:
            raise ValueError("an answered outcome without its entry")
        if conv.dialog is not None:  # a side question: the dialog resumes at the same step
            replies = [Reply(answer_text(self.kb, entry)), *self._reprompt(conv)]
            return _Routed(replies, conv, "answered", entry.id, _score(outcome))
        choices: tuple[ReplyChoice, ...] = ()
        if entry.dialog and entry.dialog in self.flows:
            label = f"「{self._flow_title(entry.dialog)}」を始める"
            choices = (ReplyChoice(label, _check_value(f"flow:{entry.dialog}")),)
        reply = Reply(outcome_text(self.kb, outcome), choices)
        return _Routed([reply], conv, "answered", entry.id, _score(outcome))
