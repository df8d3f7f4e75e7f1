"""Neutral messages between the core and every channel.

A channel turns what a user did (typed text, pressed a button) into a
`UserInput`, and renders each `Reply` its own way (numbered lines in a
terminal, inline keyboards on Telegram, buttons on the web).  Nothing here
knows about any channel, so the dialog engine and the conversation service
stay testable as plain functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ReplyChoice:
    """A button or numbered option.  `value` is what comes back as `UserInput.choice`.

    Values are short ASCII strings (Telegram limits callback data to 64 bytes).
    """

    label: str
    value: str


@dataclass(frozen=True)
class Reply:
    """One message, in the structure every channel renders the same way.

    text      the first message as shown: the headline, then the key facts (who to call, with
              the phone and whether the line is open now; the deadline or the figure).  It fits
              a phone screen (about 400 characters).
    headline  the opening one to three lines of `text` (the answer or verdict and its key
              figure); channels emphasise it (bold on Telegram and in a terminal, a heading on
              the web).  Empty when the message has no headline of its own (a question asked).
    details   what 「詳しく」 shows on request: the full official text, the formula, the inputs,
              the date rules, the sources.  Empty when there is nothing more.
    choices   the actions: buttons or numbered options.
    """

    text: str
    choices: tuple[ReplyChoice, ...] = ()
    # Structured outcome of a finished calculation (JSON-serialisable), for channels and logs.
    result: dict[str, Any] | None = None
    headline: str = ""
    details: str = ""


@dataclass(frozen=True)
class UserInput:
    """What the user sent: free text, or the value of a choice they picked."""

    text: str = ""
    choice: str | None = None

    @property
    def is_empty(self) -> bool:
        return not self.text.strip() and self.choice is None


@dataclass
class DialogState:
    """Where a user is in a flow.  Stored as JSON, so only plain values; step ids are stable strings.

    `pending` is a value read but waiting for the user's confirmation (「月150時間」 read as
    1,800 hours a year); `question` is the request that started the flow, answered once
    the program is known.
    """

    flow: str
    step: str
    values: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)  # step ids visited, for 「戻る」
    pending: dict[str, Any] | None = None
    question: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "flow": self.flow,
            "step": self.step,
            "values": dict(self.values),
            "history": list(self.history),
        }
        if self.pending is not None:
            data["pending"] = dict(self.pending)
        if self.question is not None:
            data["question"] = self.question
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DialogState:
        pending = data.get("pending")
        question = data.get("question")
        return cls(
            flow=str(data["flow"]),
            step=str(data["step"]),
            values=dict(data.get("values", {})),
            history=[str(s) for s in data.get("history", [])],
            pending=dict(pending) if isinstance(pending, dict) else None,
            question=str(question) if question is not None else None,
        )
