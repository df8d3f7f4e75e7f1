"""Keep personal data out of stored text.

What users type is logged to improve the answers, so before it is stored:
  * e-mail addresses become 「[メール]」, internationalised domains (taro@例え.jp) too;
  * Japanese phone numbers (0X-XXXX-XXXX, 090 1234 5678, (03)1234-5678,
    +81-3-…, full-width digits and dashes, 「ー」 typed for a hyphen, kanji numerals
    such as 〇三ー一二三四ー五六七八) become 「[電話番号]」;
  * any run of 12 or more digits (法人番号 has 13, マイナンバー 12) becomes 「[番号]」, and so
    does such a number written in groups of four (1-2345-6789-0123, 1234 5678 9012).
User ids are never stored as such: `hash_user` gives a salted HMAC-SHA-256.

Detection runs on a folded copy of the text of exactly the same length
(full-width letters and digits to ASCII, every dash to "-"), so the spans found
there are cut out of the original and the rest of the text is kept as typed.
Masking errs on the side of hiding too much: a 10-digit figure starting with
0 is hidden like a phone number.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from functools import lru_cache

EMAIL_MASK = "[メール]"
PHONE_MASK = "[電話番号]"
NUMBER_MASK = "[番号]"

_DASHES = frozenset("-‐‑‒–—―−－ーｰ─━﹣⁃")

# Local part: the characters RFC 5322 allows unquoted.  Domain: labels of one script each
# (Latin, kana and kanji, Greek/Cyrillic/Hangul: internationalised domains such as 例え.jp), so
# that the Japanese text right after an address (…@example.co.jpです) is not taken for it.
_LABEL = (
    r"(?:[0-9A-Za-z\u00C0-\u024F\-]+|[\u3040-\u30FF\u3400-\u9FFF\uF900-\uFAFF\-]+"
    r"|[\u0370-\u03FF\u0400-\u04FF\uAC00-\uD7AF\-]+)"
)
_EMAIL = re.compile(rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.\-]+@(?!-){_LABEL}(?:\.{_LABEL})*")
# A phone number: 0 (or +81) then digits in groups split by at most two of - . ( ) and spaces.
# The digit count is checked afterwards.
_PHONE = re.compile(
    r"(?:\+\s?81[\s\-]?(?:\(0\)[\s\-]?)?\(?|\(?0)\d(?:[\s\-.()]{0,2}\d)+",
)
_LONG_NUMBER = re.compile(r"\d{12,}")
# 12 or 13 digits in groups of four, optionally with one digit before or after (法人番号 1-4-4-4).
_GROUPED_NUMBER = re.compile(r"(?<!\d)(?:\d[\s\-.]?)?\d{4}(?:[\s\-.]?\d{4}){2}(?:[\s\-.]?\d)?(?!\d)")
# Kanji numerals read as digits when looking for numbers (〇三ー一二三四… is a phone number).
_KANJI_DIGITS = {ch: str(value) for value, ch in enumerate("〇一二三四五六七八九")} | {"零": "0"}


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """One character in, one character out: the ASCII form used for detection."""
    if ch in _DASHES:
        return "-"
    if ch in _KANJI_DIGITS:
        return _KANJI_DIGITS[ch]
    if ch.isspace():
        return " "
    if ch.isdecimal():
        return str(unicodedata.decimal(ch, 0))
    folded = unicodedata.normalize("NFKC", ch)
    if len(folded) == 1:
        if folded in _DASHES:
            return "-"
        if folded.isspace():
            return " "
        return folded
    return ch


def fold(text: str) -> str:
    """The detection form of `text`: same length, ASCII digits, letters, dashes and @ where possible."""
    return "".join(_fold_char(ch) for ch in text)


def _phone_spans(folded: str) -> list[tuple[int, int]]:
    spans = []
    for match in _PHONE.finditer(folded):
        found = match.group(0)
        digits = sum(ch.isdigit() for ch in found)
        # 0X… has 10 or 11 digits; after +81 the leading 0 is dropped, so 9 or 10 follow the 81.
        if (digits - 2 >= 9) if "+" in found else digits >= 10:
            spans.append(match.span())
    return spans


def mask(text: str) -> str:
    """`text` with e-mail addresses, phone numbers and long digit runs replaced by placeholders."""
    folded = fold(text)
    found: list[tuple[int, int, str]] = [(*m.span(), EMAIL_MASK) for m in _EMAIL.finditer(folded)]
    found += [(*span, PHONE_MASK) for span in _phone_spans(folded)]
    found += [(*m.span(), NUMBER_MASK) for m in _LONG_NUMBER.finditer(folded)]
    found += [(*m.span(), NUMBER_MASK) for m in _GROUPED_NUMBER.finditer(folded)]
    if not found:
        return text
    # Overlapping finds are merged; the one starting first names the merged span.
    found.sort(key=lambda s: (s[0], -s[1]))
    merged: list[tuple[int, int, str]] = []
    for start, end, label in found:
        if merged and start < merged[-1][1]:
            first_start, first_end, first_label = merged[-1]
            merged[-1] = (first_start, max(first_end, end), first_label)
        else:
            merged.append((start, end, label))
    out, pos = [], 0
    for start, end, label in merged:
        out += [text[pos:start], label]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def hash_user(salt: str, channel: str, user_id: str) -> str:
    """A stable pseudonym for a user: HMAC-SHA-256 of channel and id, keyed with the salt (64 hex digits)."""
    message = f"{channel}\x00{user_id}".encode("utf-8", "surrogatepass")
    return hmac.new(salt.encode("utf-8", "surrogatepass"), message, hashlib.sha256).hexdigest()
