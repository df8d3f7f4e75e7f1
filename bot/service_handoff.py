"""The conversation service's handoff to a person (mixed into `ConversationService`).

Two hooks, called by the service for every turn:
  * `_handoff_route` (in `_route`, before commands, dialogs and the FAQ): a request for a
    person from any state (inside a dialog only text the step cannot read), the handoff's
    own buttons (hand:…), the optional details step, and /cancel of an open request when no
    dialog is in progress.  It only decides; what needs the database is named in
    `_Routed.handoff` and done by
  * `_handoff_effects` (in `handle_in`, inside the update's transaction): open the case,
    attach the turn to an open case, show staff messages in channels without push (the
    terminal chat), and offer the handoff button after a second not-found in a row and on
    results that leave the decision to the office or that the sources leave open.
The conversation keeps `handoff` = {"step": reason while asking for details, "case": number
of the open case} only while there is one; the last calculation is kept in `case_context`
and "not found twice in a row" is read from the query log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot import cases, handoff
from bot.store import UpdateUnit
from dialogs import engine
from dialogs.choices import OTHER, program_choices
from dialogs.engine import Flow, FlowError
from dialogs.types import Reply, ReplyChoice, UserInput
from faq import KnowledgeBase
from faq.render import contact_block, general_contacts
from rules.contact_hours import line_status

if TYPE_CHECKING:
    from bot.service import Conversation, _Routed

PUSH_CHANNELS = frozenset({"telegram"})  # channels whose staff messages go out through the outbox
OFFER = "offer"


def _routed(replies: list[Reply], conv: Conversation, action: tuple[str, ...]) -> _Routed:
    from bot.service import _Routed

    return _Routed(replies, conv, "handoff", handoff=action)


class HandoffMixin:
    kb: KnowledgeBase
    if TYPE_CHECKING:

        @property
        def flows(self) -> Mapping[str, Flow]: ...

    # The service's injected time in Japan (ConversationService.now): whether a line is open.
    now: Callable[[], datetime]
    _case_settings: cases.CaseSettings | None = None

    @property
    def case_settings(self) -> cases.CaseSettings:
        if self._case_settings is None:
            self._case_settings = cases.CaseSettings()
        return self._case_settings

    # -- deciding (pure) -------------------------------------------------------------

    def _handoff_route(self, conv: Conversation, user_input: UserInput, text: str) -> _Routed | None:
        state = conv.handoff or {}
        choice = user_input.choice
        if choice is not None and choice.startswith("hand:"):
            arg = choice.removeprefix("hand:")
            if arg in handoff.REASONS:
                return _routed([], conv, ("ask", arg, ""))
            if arg == "go" or arg.startswith("p-"):
                if "step" not in state:
                    return _routed([], conv, ("ask", "requested", ""))
                program = arg.removeprefix("p-") if arg.startswith("p-") else None
                return _routed([], conv, ("open", str(state["step"]), "", program or ""))
            return None
        if choice is not None:
            return None
        lowered = text.lower()
        if lowered == "/cancel" or lowered.startswith("/cancel "):
            if conv.dialog is None and conv.pending_query is None and ("step" in state or "case" in state):
                return _routed([], conv, ("cancel",))
            return None
        if handoff.is_request(text):
            if conv.dialog is not None and self._step_reads(conv, user_input):
                return None
            return _routed([], conv, ("ask", "requested", user_input.text))
        details = "step" in state and bool(text) and not text.startswith("/")
        if details and (conv.dialog is None or not self._step_reads(conv, user_input)):
            return _routed([], conv, ("open", str(state["step"]), user_input.text, ""))
        return None

    def _step_reads(self, conv: Conversation, user_input: UserInput) -> bool:
        """Does the dialog's current step understand `user_input` (then it is an answer)?"""
        dialog = conv.dialog
        flow = self.flows.get(dialog.flow) if dialog is not None else None
        if dialog is None or flow is None:
            return False
        try:
            return engine.advance(flow, dialog, user_input).understood
        except FlowError:
            return False

    # -- doing (inside the update's transaction) -------------------------------------------

    def _handoff_effects(
        self, unit: UpdateUnit, channel: str, routed: _Routed, user_input: UserInput
    ) -> None:
        conv = routed.conversation
        stored = unit.conversation().state or {}
        prior = stored.get("handoff") if isinstance(stored.get("handoff"), dict) else {}
        state = dict(conv.handoff or {})
        if prior and "case" in prior and "case" not in state and routed.handoff is None:
            state["case"] = prior["case"]  # /reset and the like keep the open case
        action = routed.handoff
        if action is not None:
            routed.replies[:0] = self._handoff_action(unit, conv, state, action)
        else:
            state.pop("step", None)  # another button or command: the request was not pursued
        self._handoff_count(unit, routed, state)
        number = state.get("case")
        if number is not None:
            case = cases.case_by_number_in(unit, str(number))
            if case is None or case.channel != unit.channel or case.user_id != unit.user_id:
                state.pop("case", None)
            else:
                if channel not in PUSH_CHANNELS and cases.expire_if_due(unit, case, self.case_settings):
                    case = dataclasses.replace(case, status="expired")
                text = user_input.text if user_input.choice is None else f"[選択] {user_input.choice}"
                if case.is_open:
                    cases.attach(unit, case.id, "user", text)
                    for reply in routed.replies:
                        if reply.text:
                            cases.attach(unit, case.id, "bot", reply.text, routed.entry_id)
                if channel not in PUSH_CHANNELS:
                    shown = cases.take_unshown(unit, case.number)
                    routed.replies[:0] = [Reply(message) for message in shown]
                if not case.is_open:
                    state.pop("case", None)
        conv.handoff = state or None

    def _handoff_count(self, unit: UpdateUnit, routed: _Routed, state: dict[str, Any]) -> None:
        """The last calculation, and the offer where the bot cannot help: a second not-found in
        a row (the query log's previous question), a result left to the office or unknown."""
        result = next((r.result for r in routed.replies if r.result is not None), None)
        if result is not None and "error" not in result:
            cases.remember_calculation(unit, result)
        if "case" in state or "step" in state or not routed.replies:
            return
        reason = handoff.outcome_reason(result)
        if reason is None and routed.status == "no_match":
            previous = cases.recent_turns(unit, 1)
            if previous and previous[-1][1] == "no_match":
                reason = "not_found"
        if reason is None:
            return
        # Beside the result it is about (a recap of the values may follow it).
        at = next((i for i, r in enumerate(routed.replies) if r.result is not None), -1)
        offer = ReplyChoice(handoff.OFFER_LABEL, f"hand:{reason}")
        routed.replies[at] = dataclasses.replace(
            routed.replies[at], choices=(*routed.replies[at].choices, offer)
        )

    def _handoff_action(
        self, unit: UpdateUnit, conv: Conversation, state: dict[str, Any], action: tuple[str, ...]
    ) -> list[Reply]:
        kind = action[0]
        open_case = cases.open_case_of(unit)
        if open_case is not None:
            state["case"] = open_case.number
        if kind == "cancel":
            state.pop("step", None)
            if open_case is None:
                return [Reply("担当者へのご依頼を取り消しました。ご質問をどうぞ。")]
            cases.end_case(unit, open_case.id, "cancelled")
            state.pop("case", None)
            return [Reply(handoff.cancelled_text(open_case.number))]
        if open_case is not None:
            state.pop("step", None)
            return [Reply(handoff.already_open_text(open_case.number))]
        turns = cases.recent_turns(unit)
        if kind == "ask":
            reason, text = action[1], action[2]
            redirect = handoff.redirect_for([text, *(t for t, _, _ in turns[-2:])])
            if redirect is not None and redirect.contact in self.kb.contacts:
                state.pop("step", None)
                contact = self.kb.contacts[redirect.contact]
                status = line_status(contact, self.now())
                return [Reply(f"{redirect.text}\n\n{contact_block(contact)}\n現在：{status.text}")]
            state["step"] = reason
            program = conv.program if conv.program in self.kb.programs else None
            name = self.kb.programs[program].name if program else None
            choices: list[ReplyChoice] = []
            if program is None:
                # The same four buttons as everywhere the program is asked; not knowing it
                # (or another program) opens the request as it is.
                choices = list(program_choices("hand:p-", {"unknown": "hand:go"}))
            else:
                choices = [ReplyChoice("このまま依頼する", "hand:go")]
            body = handoff.confirm_text(name, len(turns), cases.last_calculation(unit) is not None)
            return [Reply(body, tuple(choices))]
        # open
        reason, details, stated = action[1], action[2].strip(), action[3]
        # 「それ以外」: neither program, said by the person; never guessed from earlier answers.
        program = None if stated == OTHER else (stated or conv.program)
        state.pop("step", None)
        titled = []
        for text, outcome, entry_id in turns:
            entry = self.kb.by_id.get(entry_id) if entry_id else None
            titled.append(handoff.Turn(text, outcome, entry_id, entry.question if entry else None))
        if stated != OTHER and (program not in self.kb.programs or program == "common"):
            guessed = {self.kb.by_id[t.entry_id].program for t in titled if t.entry_id in self.kb.by_id}
            guessed.discard("common")
            program = guessed.pop() if len(guessed) == 1 else None
        now = self.now()
        summary = handoff.summary(
            program=program,
            turns=titled,
            calculation=cases.last_calculation(unit),
            reason=reason,
            opened_at=now,
        )
        first = next((t.text for t in titled if t.status in ("no_match", "answered", "clarify")), None)
        case = cases.create_case(
            unit,
            program=program,
            reason=reason,
            summary=summary,
            first_question=first,
            personal=details or None,
            settings=self.case_settings,
            program_label=self.kb.programs[program].short if program in self.kb.programs else None,
        )
        state["case"] = case.number
        lines = []
        for contact in general_contacts(self.kb, program):
            if contact.phones:
                lines.append(f"{contact_block(contact)}\n現在：{line_status(contact, now).text}")
        return [Reply(handoff.opened_text(case.number, lines))]
