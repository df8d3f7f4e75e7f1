"""Replies as Telegram messages (pure): HTML parse mode with every text escaped, texts over
4,096 characters split at line ends, choices as inline keyboards (callback data ≤ 64 bytes
ASCII) and 👍/👎 under an answer."""

from __future__ import annotations

import html
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from dialogs.engine import NAVIGATION
from dialogs.types import Reply, ReplyChoice

if TYPE_CHECKING:
    from bot.service import ServiceTurn

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096  # Telegram's limit on a message's text, in UTF-16 code units after parsing
MAX_CALLBACK_BYTES = 64
MAX_LABEL = 60  # characters of a button label (longer ones are cut with …)
CHOOSE = "お選びください。"
# How long a label may be (in full-width characters) for a row of 2 or 3 buttons: a keyboard on
# a 375 px phone is about 20 full-width characters across, shared equally by a row's buttons,
# and Telegram cuts a label that does not fit its share with "…".
ROW_LABEL_WIDTH = {2: 8.5, 3: 5.0}
# A button alone on its row fits about this many full-width characters; a longer label (a
# question offered to pick) is listed, numbered, in the message and its button shows the number.
ONE_ROW_WIDTH = 19.0
FEEDBACK_UP, FEEDBACK_DOWN = "👍 役に立った", "👎 役に立たなかった"


def escape(text: str) -> str:
    """Text for HTML parse mode: every <, > and & shown literally."""
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _cut(line: str, limit: int) -> tuple[str, str]:
    """The longest head of `line` within `limit` UTF-16 units (never halving a character), and the rest."""
    units = 0
    for index, char in enumerate(line):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return line[:index], line[index:]
    return line, ""


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """`text` in pieces of at most `limit` characters (as Telegram counts), cut at line ends.

    A single line longer than the limit is cut inside the line.  Empty pieces are dropped.
    """
    if utf16_len(text) <= limit:
        return [text] if text.strip() else []
    pieces: list[str] = []
    current = ""

    def flush() -> None:
        nonlocal current
        if current.strip():
            pieces.append(current.rstrip("\n"))
        current = ""

    for line in text.splitlines(keepends=True):
        if utf16_len(current) + utf16_len(line) <= limit:
            current += line
            continue
        flush()
        while utf16_len(line) > limit:
            head, line = _cut(line, limit)
            pieces.append(head)
        current = line
    flush()
    return pieces


def valid_callback(value: str) -> bool:
    return value.isascii() and 0 < len(value.encode("ascii")) <= MAX_CALLBACK_BYTES


def _label(text: str, fallback: str) -> str:
    text = " ".join(text.split()) or fallback
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _button(label: str, data: str) -> InlineKeyboardButton | None:
    if not valid_callback(data):
        log.warning("button %r dropped: callback data %r is not 1-64 bytes of ASCII", label, data)
        return None
    return InlineKeyboardButton(_label(label, data), callback_data=data)


def feedback_row(entry_id: str) -> list[InlineKeyboardButton]:
    buttons = [_button(FEEDBACK_UP, f"fb:1:{entry_id}"), _button(FEEDBACK_DOWN, f"fb:0:{entry_id}")]
    return [b for b in buttons if b is not None]


def label_width(text: str) -> float:
    """A label's width in full-width characters (a half-width character counts 0.6)."""
    return sum(1.0 if unicodedata.east_asian_width(char) in "WF" else 0.6 for char in text)


def _rows(buttons: Sequence[InlineKeyboardButton]) -> list[list[InlineKeyboardButton]]:
    """Buttons in order, side by side while every label of the row still fits its share of a
    phone's width (at most three a row), else on a row of their own."""
    rows: list[list[InlineKeyboardButton]] = []
    for button in buttons:
        row = rows[-1] if rows else []
        size = len(row) + 1
        if (
            row
            and size in ROW_LABEL_WIDTH
            and all(label_width(b.text) <= ROW_LABEL_WIDTH[size] for b in [*row, button])
        ):
            row.append(button)
        else:
            rows.append([button])
    return rows


def keyboard(choices: Sequence[ReplyChoice], feedback: str | None = None) -> InlineKeyboardMarkup | None:
    """Choices as inline buttons: side by side as far as their labels fit a phone's width, the
    dialog's navigation (戻る・ヘルプ・やめる) on one row, and 👍/👎 last when `feedback` names an answer."""
    main: list[InlineKeyboardButton] = []
    nav: list[InlineKeyboardButton] = []
    for choice in choices:
        button = _button(choice.label, choice.value)
        if button is not None:
            (nav if choice.value in NAVIGATION else main).append(button)
    rows = _rows(main)
    if nav:
        rows.append(nav)
    if feedback:
        row = feedback_row(feedback)
        if row:
            rows.append(row)
    return InlineKeyboardMarkup(rows) if rows else None


@dataclass(frozen=True)
class Outgoing:
    """One message to send: HTML text and its keyboard."""

    html: str
    markup: InlineKeyboardMarkup | None = None


def render_replies(
    replies: Sequence[Reply], feedback: str | None = None, feedback_at: int = 0
) -> list[Outgoing]:
    """Replies as messages; the keyboard (and 👍/👎 for reply `feedback_at`) on each reply's last piece."""
    out: list[Outgoing] = []
    for index, reply in enumerate(replies):
        text, choices = numbered_long_labels(reply.text, reply.choices)
        markup = keyboard(choices, feedback if index == feedback_at else None)
        pieces = split_text(text)
        if not pieces and markup is None:
            continue
        if not pieces:
            pieces = [CHOOSE]
        for number, piece in enumerate(pieces, start=1):
            text = with_headline(piece, reply.headline) if number == 1 else escape(piece)
            out.append(Outgoing(text, markup if number == len(pieces) else None))
    return out


def numbered_long_labels(text: str, choices: Sequence[ReplyChoice]) -> tuple[str, tuple[ReplyChoice, ...]]:
    """Questions offered to pick, listed and numbered under the text, their buttons showing the number.

    Telegram cuts a label too long for its row with "…", which would hide what the question
    is.  When one label is longer than a row, every label that could not share a row (the
    sentences, not words like 計算する) is listed in order, so the numbers run 1, 2, 3 down
    the list.  The words are the reply's own.
    """

    def width(choice: ReplyChoice) -> float:
        return label_width(" ".join(choice.label.split()))

    main = [c for c in choices if c.value not in NAVIGATION]
    if not any(width(c) > ONE_ROW_WIDTH for c in main):
        return text, tuple(choices)
    lines: list[str] = []
    shown: list[ReplyChoice] = []
    for choice in choices:
        if choice.value not in NAVIGATION and width(choice) > ROW_LABEL_WIDTH[2]:
            lines.append(f"{len(lines) + 1}. {' '.join(choice.label.split())}")
            choice = replace(choice, label=str(len(lines)))
        shown.append(choice)
    listed = "\n".join(lines)
    return (f"{text}\n\n{listed}" if text else listed), tuple(shown)


def with_headline(text: str, headline: str) -> str:
    """`text` as HTML with its opening `headline` in bold (the rest escaped, never re-worded)."""
    headline = headline.strip()
    if not headline or not text.startswith(headline):
        return escape(text)
    return f"<b>{escape(headline)}</b>{escape(text[len(headline) :])}"


def render_turn(turn: ServiceTurn) -> list[Outgoing]:
    """A service turn as messages, with 👍/👎 under the answer or the calculation's summary."""
    feedback_at = 0
    if turn.entry_id is not None and turn.result is not None:
        feedback_at = next((i for i, r in enumerate(turn.replies) if r.result is not None), 0)
    return render_replies(turn.replies, turn.entry_id, feedback_at)


def _chat_key(update: object) -> str | None:
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return str(update.effective_chat.id)
    if update.effective_user is not None:
        return str(update.effective_user.id)
    return None
