"""Wrap text for a terminal by display width, following Japanese line-break rules (禁則処理).

A terminal wraps at its last column whatever is there: half a word, a phone number cut
in two, or a lone 「。」 at the start of the next line.  The chat wraps its replies itself:

  * widths are display columns (a kanji is two, an ASCII letter one), from wcwidth
    through prompt_toolkit's `get_cwidth`;
  * a break may fall between two Japanese characters, or at a space; a run of
    characters without a space that is not Japanese (a command such as
    `/program it2023-multi` with its argument, a phone number, a URL, an English word)
    is never split, unless it alone is wider than the line;
  * 行頭禁則: closing brackets, 。、 and the like, small kana and ー never begin a line;
    行末禁則: opening brackets never end one.  The characters before such a break are
    carried to the next line (追い出し), so no line is ever wider than asked (what is
    carried must fit on the next line; beyond that the rule gives way);
  * continuation lines keep the indentation of their line, and of a list marker
    (「  1. 」), so numbered choices stay readable.
"""

from __future__ import annotations

import re
import unicodedata

from prompt_toolkit.utils import get_cwidth

# 行頭禁則: may not begin a line (JIS X 4051 classes: closing brackets, hyphens, dividing
# punctuation, middle dots, full stops, commas, iteration marks, prolonged sound mark, small kana).
NO_START = frozenset(
    "、。，．,.)]}）〕］｝〉》」』】〙〗〟’”»"
    "‐゠–〜～?!？！‼⁇⁈⁉・：；:;"
    "ヽヾゝゞ々〻ー"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"
)
# 行末禁則: may not end a line (opening brackets).
NO_END = frozenset("([{（〔［｛〈《「『【〘〖〝‘“«")
_MARKER = re.compile(r"^(\s*)(\d+\.\s|[・•\-*]\s?)?")
_COMMAND = re.compile(r"/[a-z]+ [\x21-\x7e]+")  # `/program it2023-multi`: one unit, never split


def width(text: str) -> int:
    """Display columns of `text` in a terminal."""
    return sum(get_cwidth(ch) for ch in text)


def _breakable(ch: str) -> bool:
    """A line may break before or after this character (Japanese and other wide text)."""
    return get_cwidth(ch) == 2 or unicodedata.east_asian_width(ch) in ("W", "F")


def _units(text: str) -> list[str]:
    """Pieces between which a line may break: wide characters one by one, spaces, other runs whole."""
    units: list[str] = []
    run = ""
    i = 0
    while i < len(text):
        command = _COMMAND.match(text, i) if text[i] == "/" and not run else None
        if command:
            units.append(command.group(0))
            i = command.end()
            continue
        ch = text[i]
        i += 1
        if ch == " " or _breakable(ch) or ch in NO_START or ch in NO_END:
            if run:
                units.append(run)
                run = ""
            units.append(ch)
        else:
            run += ch
    if run:
        units.append(run)
    return units


def _no_start(unit: str) -> bool:
    return unit[:1] in NO_START


def _no_end(unit: str) -> bool:
    return unit[-1:] in NO_END


def _split_wide(unit: str, room: int) -> list[str]:
    """A run wider than the line, cut by columns (the only way it can be shown)."""
    pieces: list[str] = []
    piece = ""
    for ch in unit:
        if piece and width(piece + ch) > room:
            pieces.append(piece)
            piece = ""
        piece += ch
    if piece:
        pieces.append(piece)
    return pieces


def wrap_line(line: str, columns: int) -> list[str]:
    """One line of text as lines of at most `columns` display columns."""
    if width(line) <= columns:
        return [line]
    match = _MARKER.match(line)
    indent = " " * width(match.group(0)) if match else ""
    if width(indent) > columns // 2:
        indent = ""
    lines: list[str] = []
    current: list[str] = []
    used = 0
    room = columns

    def emit() -> None:
        nonlocal current, used, room
        text = "".join(current).rstrip(" ")
        lines.append(text if not lines else indent + text)
        current, used, room = [], 0, columns - len(indent)

    for unit in _units(line):
        if not current and unit == " " and lines:
            continue  # no space at the start of a continuation line
        size = width(unit)
        if size > room:
            for piece in _split_wide(unit, room):
                if current and used + width(piece) > room:
                    emit()
                current.append(piece)
                used += width(piece)
            continue
        if current and used + size > room:
            if unit == " ":
                emit()
                continue
            carry: list[str] = []
            head = unit
            while (
                len(current) > 1
                and (_no_start(head) or _no_end(current[-1]))
                and width(current[-1] + "".join(carry)) + size <= columns - len(indent)
            ):
                head = current.pop()
                carry.insert(0, head)
            emit()
            while carry and carry[0] == " ":
                carry.pop(0)
            current = carry
            used = sum(width(u) for u in carry)
        current.append(unit)
        used += size
    if current or not lines:
        emit()
    return lines


def wrap(text: str, columns: int) -> str:
    """Every line of `text` wrapped to `columns` display columns (at least 10)."""
    columns = max(columns, 10)
    return "\n".join(out for line in text.split("\n") for out in wrap_line(line, columns))
