"""Handing a conversation to a person: the pure part.

Recognising a request to talk to a person is text analysis over phrases kept as data
(bot/data/handoff.toml); questions about the registered 担当者 stay FAQ questions.  This
module also makes case numbers that can be read out on the phone, builds the summary a
case carries (program, last questions and answers, a calculation, why, when) and words the
messages of the handoff.  No I/O beyond reading its data file once; no clock of its own.
"""

from __future__ import annotations

import re
import secrets
import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "handoff.toml"

# Case numbers: no 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V, G/6 — nothing a caller can misread or mishear.
CASE_ALPHABET = "ACDEFHJKMNPRTWXY3479"
CASE_GROUPS = (3, 3)

REASONS = {
    "requested": "ご本人の希望",
    "not_found": "2回続けて該当なし",
    "not_helpful": "回答が役に立たなかった",
    "office": "事務局の判断が必要な結果",
    "unknown": "出典に定めがない結果",
}

OFFER_LABEL = "担当者に相談する"
MAX_DETAILS = 500  # characters of what the user gives for the staff (name, company, 申請番号 …)
STAFF_PREFIX = "【担当者より】\n"


class HandoffDataError(Exception):
    """bot/data/handoff.toml is unreadable or incomplete; the message says what to fix."""


@dataclass(frozen=True)
class Redirect:
    words: tuple[str, ...]
    contact: str
    text: str


@dataclass(frozen=True)
class Phrases:
    commands: frozenset[str]
    exact: frozenset[str]
    contains: tuple[str, ...]
    pattern: re.Pattern[str]
    redirects: tuple[Redirect, ...]


def _strings(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise HandoffDataError(f"{DATA}: {key} must be a list of non-empty strings")
    return [_fold(v) for v in value]


def parse_phrases(data: dict[str, Any]) -> Phrases:
    persons = sorted(_strings(data, "persons"), key=len, reverse=True)
    particles = sorted(_strings(data, "particles"), key=len, reverse=True)
    verbs = _strings(data, "verbs")
    # A person word not glued to a kanji before it (法人に相談 is not 人に相談).
    pattern = re.compile(
        r"(?<![\u3400-\u9fff])(?:"
        + "|".join(map(re.escape, persons))
        + r")(?:"
        + "|".join(map(re.escape, particles))
        + r")(?:"
        + "|".join(map(re.escape, verbs))
        + r")"
    )
    redirects = []
    for item in data.get("redirect", []):
        if not isinstance(item, dict) or not isinstance(item.get("contact"), str):
            raise HandoffDataError(f"{DATA}: each [[redirect]] needs words, contact and text")
        redirects.append(Redirect(tuple(_strings(item, "words")), item["contact"], str(item.get("text", ""))))
    return Phrases(
        frozenset(c.lower() for c in _strings(data, "commands")),
        frozenset(_strings(data, "exact")),
        tuple(_strings(data, "contains")),
        pattern,
        tuple(redirects),
    )


@lru_cache(maxsize=1)
def phrases() -> Phrases:
    try:
        with DATA.open("rb") as fh:
            return parse_phrases(tomllib.load(fh))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HandoffDataError(f"cannot read {DATA}: {exc}") from None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower()


_TRIM = re.compile(r"[\s、。,.!！?？…・「」『』（）()]+")


def is_request(text: str) -> bool:
    """Is `text` a request to talk to a person (「オペレーターにつないで」, /human)?"""
    folded = _fold(text)
    if not folded or len(folded) > 80:
        return False
    data = phrases()
    if folded.split(" ", 1)[0].split("@", 1)[0] in data.commands:
        return True
    bare = _TRIM.sub("", folded)
    if bare in data.exact or any(word in bare for word in data.contains):
        return True
    return data.pattern.search(bare) is not None


def redirect_for(texts: Sequence[str]) -> Redirect | None:
    """The line to send the user to when the request is about something staff cannot handle."""
    folded = [_TRIM.sub("", _fold(t)) for t in texts]
    for redirect in phrases().redirects:
        if any(word in text for text in folded for word in redirect.words):
            return redirect
    return None


def new_case_number(choice: Any = secrets.choice) -> str:
    """A short number staff and callers can read to each other: 「KX4-7TA」."""
    groups = ["".join(choice(CASE_ALPHABET) for _ in range(size)) for size in CASE_GROUPS]
    return "-".join(groups)


def normal_case_number(text: str) -> str:
    """What a caller reads out, as stored: case and spaces ignored, the dash optional."""
    bare = re.sub(r"[\s\-‐－ー_]", "", _fold(text)).upper()
    if len(bare) != sum(CASE_GROUPS):
        return bare
    return bare[: CASE_GROUPS[0]] + "-" + bare[CASE_GROUPS[0] :]


# -- the summary ------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One earlier question and what the bot did with it (the query log's masked text)."""

    text: str
    status: str
    entry_id: str | None
    title: str | None


def summary(
    *,
    program: str | None,
    turns: Sequence[Turn],
    calculation: dict[str, Any] | None,
    reason: str,
    opened_at: datetime,
) -> dict[str, Any]:
    """What staff read first on a case (JSON, stored with it)."""
    return {
        "program": program,
        "reason": reason,
        "reason_text": REASONS.get(reason, reason),
        "opened_at": opened_at.isoformat(),
        "turns": [
            {"text": t.text, "status": t.status, "entry_id": t.entry_id, "title": t.title} for t in turns
        ],
        "calculation": calculation,
    }


def calculation_kind(calculation: dict[str, Any] | None) -> str | None:
    """productivity / withdrawal for a stored calculation result, else None."""
    if not calculation:
        return None
    if "refund" in calculation or "withdrawal_required" in calculation:
        return "withdrawal"
    if "value_added" in calculation or "inputs" in calculation:
        return "productivity"
    return None


def outcome_reason(result: dict[str, Any] | None) -> str | None:
    """office / unknown when a calculation's result leaves the decision to the office or the
    sources are silent (rules.withdrawal's refund), else None."""
    if not result:
        return None
    refund = result.get("refund")
    if refund == "decided_by_office":
        return "office"
    if refund == "unknown" or ("withdrawal_required" in result and result["withdrawal_required"] is None):
        return "unknown"
    return None


# -- what the user is told ----------------------------------------------------------------


def confirm_text(program_name: str | None, turns: int, calculation: bool) -> str:
    shared = [f"制度：{program_name}" if program_name else "制度：（下のボタンでお選びください）"]
    if turns:
        shared.append(f"これまでのご質問と回答（{turns}件）")
    if calculation:
        shared.append("計算・判定の入力と結果")
    return (
        "担当者におつなぎします。担当者には次の内容をお伝えします：\n"
        + "\n".join(f"・{line}" for line in shared)
        + "\n\nお名前・会社名など担当者に伝えたいこと（任意。IDの再発行なら申請番号・法人番号・"
        "メールアドレス）があれば入力して送信してください。なければボタンを押してください。"
        "（やめるときは /cancel）"
    )


def opened_text(number: str, lines: Sequence[str]) -> str:
    return (
        f"受付番号は {number} です（お電話の際にお伝えください）。\n"
        "担当者が受付時間内にこのチャットでお返事します。その間もボットはふだんどおりお答えします。\n\n"
        + "\n\n".join(lines)
    )


def already_open_text(number: str) -> str:
    return (
        f"すでに受付番号 {number} でお問い合わせを受け付けています。担当者からのお返事をお待ちください"
        "（取り消すときは /cancel）。"
    )


def closed_text(number: str, note: str | None) -> str:
    tail = f"\n担当者より：{note}" if note else ""
    return f"受付番号 {number} のお問い合わせを終了しました。{tail}\nご質問はこのまま入力してください。"


def cancelled_text(number: str) -> str:
    return f"受付番号 {number} のお問い合わせを取り消しました。ご質問をどうぞ。"


def expired_text(number: str) -> str:
    return (
        f"受付番号 {number} のお問い合わせは、担当者が対応できないまま受付期限を過ぎたため終了しました。"
        "お急ぎの場合はお電話でお問い合わせください。ご質問はこのまま入力できます。"
    )


def staff_message(text: str) -> str:
    return STAFF_PREFIX + text.strip()
