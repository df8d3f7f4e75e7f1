"""The buttons that ask which program, one definition for every place that asks.

The FAQ (an answer that differs by program), the withdrawal flow's first step and
the handoff to a person all ask the same question, so they offer the same four
buttons with the same labels: 2020 / 2023複数社連携 / それ以外 / わからない.  Each
place gives its own value prefix (prog:, hand:p-, none in a flow), since each
routes the press its own way.
"""

from __future__ import annotations

from dialogs.types import ReplyChoice

OTHER = "other"
UNKNOWN = "unknown"
# (label, key): a program id, or what the person says when it is neither.
PROGRAM_BUTTONS: tuple[tuple[str, str], ...] = (
    ("2020", "it2020"),
    ("2023複数社連携", "it2023-multi"),
    ("それ以外", OTHER),
    ("わからない", UNKNOWN),
)


def program_choices(prefix: str = "", values: dict[str, str] | None = None) -> tuple[ReplyChoice, ...]:
    """The four buttons, each valued `prefix` + its key (or `values[key]` where given)."""
    given = values or {}
    return tuple(ReplyChoice(label, given.get(key, prefix + key)) for label, key in PROGRAM_BUTTONS)


def program_tag(program: str) -> str | None:
    """The program's button label (「2023複数社連携」), to tag other buttons with the same words."""
    return next((label for label, key in PROGRAM_BUTTONS if key == program), None)
