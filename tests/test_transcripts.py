"""Whole conversations as applicants type them on a phone, through the conversation service.

Each conversation is what a user sends, message by message, to the real service
(real flows, real knowledge base and policy, a SQLite file, a fixed clock).  Its
final figures and verdict are checked against values computed here from the
formulas of the sources (2023 手引き: 付加価値額 ÷（従業員数 × 年間平均労働時間）, CAGR,
5 % / 6 %; 2020 FAQ 質問6・7・9: one year from the latest delivery, five years after
the fiscal year of completion), never against the bot's own wording.  The number
of messages is checked too: a value given in a sentence, several values in one
message, or a correction after the result must not cost extra turns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.service import ConversationService, ServiceTurn
from bot.store import Store
from dialogs.types import Reply, UserInput
from faq import KnowledgeBase, Policy, load_kb
from tests.reply_checks import FIRST_MESSAGE_MAX, HEADLINE_MAX_LINES, internal_tokens

TODAY = date(2026, 11, 28)
CHANNEL = "phone"
INTERNAL_WORDS = (
    "growth_rate",
    "one_year_date",
    "period_end",
    "Decimal",
    "有効桁",
    "None",
    "operating_profit",
    "labor_cost",
    "has_baseline",
    "cancel-part",
    "cancel-all",
    "it2023-multi",
)
DOCUMENT_TITLES = tuple(doc.title for doc in load_kb().documents.values())
IT2020_PHONE = "0570-002-551"
IT2023_PHONE = "0570-666-376"
MAN = 10_000


# ---------------------------------------------------------------- expected values, from the formulas


def expected_productivity(
    profit: int,
    labor: int,
    depreciation: int,
    employees: int,
    hours: int | str,
    baseline: int | str | None = None,
    year: int | None = None,
    group_2022: bool = False,
) -> dict[str, Any]:
    """付加価値額 = 営業利益 + 人件費 + 減価償却費; 労働生産性 = 付加価値額 ÷ (従業員数 × 年間平均労働時間); CAGR."""
    value_added = Decimal(profit) + Decimal(labor) + Decimal(depreciation)
    productivity = value_added / (Decimal(employees) * Decimal(hours))
    out: dict[str, Any] = {
        "value_added": int(value_added),
        "labor_productivity": float(productivity.quantize(Decimal("0.01"), ROUND_HALF_UP)),
        "threshold": 0.06 if (group_2022 and baseline is not None) else 0.05,
        "growth_rate": None,
        "meets_threshold": None,
    }
    if baseline is None:
        return out
    base = Decimal(baseline)
    if base <= 0:
        return out
    if productivity < 0:
        out["meets_threshold"] = False  # a decline below a positive base never reaches the standard
        return out
    ratio = productivity / base
    growth = ratio - 1 if year == 1 else ratio.sqrt() - 1
    out["growth_rate"] = float(growth.quantize(Decimal("0.000001"), ROUND_HALF_UP))
    out["meets_threshold"] = growth >= Decimal(str(out["threshold"]))
    return out


def _anniversary(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return date(day.year + 1, 2, 28)


def expected_2020(event: str, delivered: list[date], cancelled: date, completed: date) -> dict[str, Any]:
    """質問9: the latest delivery is the base; 質問6: within one year, full refund; 質問7: five years after."""
    base = max(delivered)
    one_year = _anniversary(base)
    fiscal_end_year = completed.year + (1 if completed.month >= 4 else 0)
    period_end = date(fiscal_end_year + 5, 3, 31)
    if event == "closure":
        required, refund = None, "unknown"
    elif cancelled <= one_year:
        required, refund = True, "full"
    elif cancelled <= period_end:
        required, refund = True, "decided_by_office"
    else:
        required, refund = False, "none"
    return {
        "program": "it2020",
        "event": event,
        "withdrawal_required": required,
        "refund": refund,
        "base_date": base.isoformat(),
        "one_year_date": one_year.isoformat(),
        "period_end": period_end.isoformat(),
        "contact": "it2020-kounen",
    }


def expected_2023(event: str) -> dict[str, Any]:
    """The 手引き: any cancellation (part or all) or closure needs a 辞退届; the office decides on refunds."""
    return {
        "program": "it2023-multi",
        "event": event,
        "withdrawal_required": True,
        "refund": "decided_by_office",
        "base_date": None,
        "one_year_date": None,
        "period_end": None,
        "contact": "it2023-callcenter",
    }


# ---------------------------------------------------------------- running a conversation


@dataclass
class Conversation:
    id: str
    say: list[str]
    expect: dict[str, Any] | None  # the final result's figures; None: the conversation ends without one
    check: Callable[[list[ServiceTurn]], None] | None = None
    # Messages that show a result (default: only the last one).
    results_at: tuple[int, ...] = ()
    inputs: dict[str, Any] = field(default_factory=dict)


def _choice(message: str) -> UserInput:
    return UserInput(choice=message[1:]) if message.startswith("@") else UserInput(message)


def run(service: ConversationService, conversation: Conversation, user: str = "u") -> list[ServiceTurn]:
    turns = [service.handle(CHANNEL, user, _choice(m)) for m in conversation.say]
    for message, turn in zip(conversation.say, turns, strict=True):
        for reply in turn.replies:
            check_reply(message, reply)
    return turns


def check_reply(message: str, reply: Reply) -> None:
    """What every reply a person reads satisfies: its first message and its details alike."""
    shown = f"{reply.text}\n{reply.details}"
    for word in INTERNAL_WORDS:
        assert word not in shown, (message, word, shown)
    assert not internal_tokens(shown), (message, internal_tokens(shown), shown)
    if reply.headline or "出典：" not in reply.text:
        # Every reply of a flow; a FAQ answer given on the way once it carries its headline.
        assert len(reply.text) <= FIRST_MESSAGE_MAX, (message, len(reply.text), reply.text)
    if reply.headline:
        assert reply.text.startswith(reply.headline), (message, reply.headline)
        assert len(reply.headline.splitlines()) <= HEADLINE_MAX_LINES, (message, reply.headline)
    sentences = [s.strip() for s in shown.split("。") if len(s.strip()) > 10]
    repeated = {s for s in sentences if sentences.count(s) > 1}
    assert not repeated, (message, repeated)
    for title in DOCUMENT_TITLES:
        assert shown.count(title) <= 1, (message, title)


def texts(turn: ServiceTurn) -> str:
    """All a turn shows: each first message and, on request, its details."""
    return "\n".join(f"{r.text}\n{r.details}" if r.details else r.text for r in turn.replies)


def result_turns(turns: list[ServiceTurn]) -> list[int]:
    return [i for i, t in enumerate(turns) if t.result is not None]


def check_result(result: dict[str, Any], expect: dict[str, Any]) -> None:
    for key, value in expect.items():
        if key == "inputs":
            for name, given in value.items():
                assert result["inputs"][name] == given, (name, result["inputs"][name], given)
        elif key == "results":
            for program, sub in value.items():
                check_result(result["results"][program], sub)
        elif isinstance(value, float) and isinstance(result[key], float):
            assert result[key] == pytest.approx(value, abs=1e-9), (key, result[key], value)
        else:
            assert result[key] == value, (key, result[key], value)


@pytest.fixture
def service(kb: KnowledgeBase, policy: Policy, tmp_path: Path) -> Iterator[ConversationService]:
    with Store.open(f"sqlite:///{tmp_path / 'transcripts.db'}") as store:
        yield ConversationService(kb, policy, store, clock=lambda: TODAY)


# ---------------------------------------------------------------- the conversations

START_P = "労働生産性を計算したい"
START_W = "辞退になるか確認したい"
BASIC = ["3000万", "2500万", "500万", "10人", "1800時間"]


def _has(*words: str) -> Callable[[list[ServiceTurn]], None]:
    def check(turns: list[ServiceTurn]) -> None:
        final = texts(turns[-1])
        for word in words:
            assert word in final, (word, final)

    return check


def _no_faq_mid_flow(turns: list[ServiceTurn]) -> None:
    """Every message got a reply from the flow itself: no FAQ answer replaced a value."""
    for turn in turns[1:-1]:
        assert turn.dialog is not None, texts(turn)
        assert "【IT導入補助金" not in turn.replies[0].text, texts(turn)


P = expected_productivity

PRODUCTIVITY: list[Conversation] = [
    Conversation(
        "p-plain",
        [START_P, *BASIC, "はい", "3000", "1", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 3000, 1),
        check=_has("1者分", "グループ全体", "【様式1】"),
    ),
    Conversation("p-no-growth", [START_P, *BASIC, "いいえ"], P(30_000_000, 25_000_000, 5_000_000, 10, 1800)),
    Conversation(
        "p-sentences",
        [
            "生産性の計算をお願いしたい",
            "売上じゃなくて営業利益は2,800万円です",
            "人件費はだいたい2400万",
            "減価償却は300万くらいです",
            "社長と専務の2人",
            "年間1,900時間です",
            "いいえ",
        ],
        P(28_000_000, 24_000_000, 3_000_000, 2, 1900),
        check=_no_faq_mid_flow,
    ),
    Conversation(
        "p-two-values-in-one-message",
        [
            "効果報告の数字を計算したい",
            "営業利益2800万、減価償却300万",
            "人件費2400万",
            "5人",
            "1800",
            "いいえ",
        ],
        P(28_000_000, 24_000_000, 3_000_000, 5, 1800),
    ),
    Conversation(
        "p-everything-in-one-message",
        [START_P, "営業利益3000万、人件費2500万、減価償却費500万、従業員10人、労働時間1800時間", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-breakdown-with-zero-in-words",
        [START_P, "3000万", "内訳", "2000万", "100万", "ゼロです", "500万", "10", "1800", "いいえ"],
        P(30_000_000, 21_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-breakdown-bonus-none",
        [START_P, "3000万", "@breakdown", "2000万", "0", "なし", "500万", "10", "1800", "いいえ"],
        P(30_000_000, 20_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-loss-akaji-first",
        [START_P, "赤字500万", "2500万", "500万", "10", "1800", "いいえ"],
        P(-5_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-loss-akaji-after",
        [START_P, "500万の赤字", "2500万", "500万", "10", "1800", "いいえ"],
        P(-5_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-loss-akaji-de",
        [START_P, "赤字で500万", "2500万", "500万", "10", "1800", "いいえ"],
        P(-5_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-loss-triangle",
        [START_P, "▲500万", "2500万", "500万", "10", "1800", "いいえ"],
        P(-5_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-loss-minus-word",
        [START_P, "マイナス500万円", "2500万", "500万", "10", "1800", "いいえ"],
        P(-5_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-loss-in-a-sentence",
        [START_P, "営業利益は500万の赤字です", "2500万", "500万", "10", "1800", "いいえ"],
        P(-5_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-operating-loss-in-words",
        [START_P, "営業損失500万", "2500万", "500万", "10", "1800", "いいえ"],
        P(-5_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-loss-retyped-after-refusal-keeps-its-sign",
        [START_P, "赤字です", "500万", "はい", "2500万", "500万", "10", "1800", "いいえ"],
        P(-5_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-loss-refusal-then-profit-after-all",
        [START_P, "赤字です", "500万", "いいえ", "500万", "2500万", "500万", "10", "1800", "いいえ"],
        P(5_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-correction-by-the-old-value",
        [START_P, *BASIC, "1800じゃなくて2000時間", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 2000),
    ),
    Conversation(
        "p-correction-by-the-old-value-after-result",
        [START_P, *BASIC, "いいえ", "3000万じゃなくて2800万"],
        P(28_000_000, 25_000_000, 5_000_000, 10, 1800),
        results_at=(6, 7),
    ),
    Conversation(
        "p-restart-after-result",
        [START_P, *BASIC, "いいえ", "最初から", "1000万", "1000万", "0", "2", "2000", "いいえ"],
        P(10_000_000, 10_000_000, 0, 2, 2000),
        results_at=(6, 13),
    ),
    Conversation(
        "p-owner-alone-and-nothing-to-depreciate",
        [
            START_P,
            "800万",
            "600万",
            "なしです",
            "私だけです",
            "2,000時間",
            "計算してください",
            "5000",
            "1年目",
            "いいえ",
        ],
        P(8_000_000, 6_000_000, 0, 1, 2000, 5000, 1),
    ),
    Conversation(
        "p-hours-of-a-day-are-not-a-year",
        [START_P, "3000万", "2500万", "500万", "10", "1日8時間", "いいえ", "1,920時間", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1920),
    ),
    Conversation(
        "p-amount-without-its-unit-is-confirmed",
        [START_P, "3000", "いいえ", "3000万", "2500万", "500万", "10", "1800", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-thousands-typed-bare",
        [START_P, "30000", "いいえ", "30,000千円", "25,000千円", "5,000千円", "10", "1800", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-small-profit-confirmed",
        [START_P, "5万円", "はい", "800万", "50万", "2", "1800", "いいえ"],
        P(50_000, 8_000_000, 500_000, 2, 1800),
    ),
    Conversation(
        "p-correction-yappari",
        [START_P, "3000万", "2500万", "500万", "やっぱり人件費は2600万", "10", "1800", "いいえ"],
        P(30_000_000, 26_000_000, 5_000_000, 10, 1800),
        check=_has(),
    ),
    Conversation(
        "p-correction-machigai",
        [START_P, "3000万", "2500万", "500万", "10", "人件費は2600万の間違いでした", "1800", "いいえ"],
        P(30_000_000, 26_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-correction-sakki",
        [START_P, "3000万", "2500万", "500万", "さっきの人件費を2600万に", "10", "1800", "いいえ"],
        P(30_000_000, 26_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-correction-janakute",
        [START_P, "3000万", "2500万", "500万", "営業利益は3000万じゃなくて2800万", "10", "1800", "いいえ"],
        P(28_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-correction-shusei",
        [START_P, "3000万", "2500万", "500万", "10", "1800", "人件費を3000万に修正", "いいえ"],
        P(30_000_000, 30_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-correction-after-result",
        [START_P, *BASIC, "はい", "3000", "1", "いいえ", "人件費を2600万に修正"],
        P(30_000_000, 26_000_000, 5_000_000, 10, 1800, 3000, 1),
        results_at=(9, 10),
        check=_has("2,500万円 → 2,600万円"),
    ),
    Conversation(
        "p-correction-after-result-informal",
        [START_P, *BASIC, "いいえ", "やっぱり従業員は12人"],
        P(30_000_000, 25_000_000, 5_000_000, 12, 1800),
        results_at=(6, 7),
    ),
    Conversation(
        "p-correction-after-result-machigai",
        [START_P, *BASIC, "いいえ", "営業利益は2800万の間違いでした"],
        P(28_000_000, 25_000_000, 5_000_000, 10, 1800),
        results_at=(6, 7),
    ),
    Conversation(
        "p-back-after-result",
        [START_P, *BASIC, "はい", "3000", "1", "いいえ", "戻る", "はい"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 3000, 1, True),
        results_at=(9, 11),
    ),
    Conversation(
        "p-zero-hours-refused-at-the-step",
        [START_P, "3000万", "2500万", "500万", "10", "0時間", "1800", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-negative-depreciation-refused",
        [START_P, "3000万", "2500万", "▲100万", "100万", "10", "1800", "いいえ"],
        P(30_000_000, 25_000_000, 1_000_000, 10, 1800),
    ),
    Conversation(
        "p-negative-labour-cost-refused",
        [START_P, "3000万", "-2500万", "2500万", "500万", "10", "1800", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-zero-employees-refused",
        [START_P, "3000万", "2500万", "500万", "0人", "1人", "1800", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 1, 1800),
    ),
    Conversation(
        "p-per-month-hours-confirmed",
        [START_P, "3000万", "2500万", "500万", "10", "月150時間", "はい", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-per-month-hours-declined",
        [START_P, "3000万", "2500万", "500万", "10", "月150時間", "いいえ", "2000時間", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 2000),
    ),
    Conversation(
        "p-yes-and-baseline-together",
        [START_P, *BASIC, "はい、実績値は4,100です", "1", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 4100, 1),
    ),
    Conversation(
        "p-baseline-forgotten",
        [START_P, *BASIC, "はい", "覚えてない", "3000", "1", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 3000, 1),
        check=lambda turns: (
            None
            if "交付申請内容情報詳細" in texts(turns[7]) and turns[7].step == "baseline"
            else pytest.fail(texts(turns[7]))
        ),
    ),
    Conversation(
        "p-first-year-in-words",
        [START_P, *BASIC, "はい", "3000", "初年度", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 3000, 1),
    ),
    Conversation(
        "p-first-time-in-words",
        [START_P, *BASIC, "はい", "3000", "1回目", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 3000, 1),
    ),
    Conversation(
        "p-second-year",
        [START_P, *BASIC, "はい", "3000", "2年度目", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 3000, 2),
    ),
    Conversation(
        "p-second-year-below",
        [START_P, *BASIC, "はい", "3200", "2回目", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 3200, 2),
    ),
    Conversation(
        "p-group-2022-not-included-in-words",
        [START_P, *BASIC, "はい", "3150", "1", "含まれてないです"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 3150, 1),
    ),
    Conversation(
        "p-group-2022-six-percent",
        [START_P, *BASIC, "はい", "3150", "1", "はい"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 3150, 1, True),
    ),
    Conversation(
        "p-negative-against-positive-base",
        [START_P, "赤字6000万", "2000万", "500万", "10", "1800", "はい", "2800", "1", "いいえ"],
        P(-60_000_000, 20_000_000, 5_000_000, 10, 1800, 2800, 1),
        check=_has("届いていません", "公表"),
    ),
    Conversation(
        "p-base-not-positive",
        [START_P, *BASIC, "はい", "0", "1", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 0, 1),
        check=_has("様式（Excel）", "コールセンター", IT2023_PHONE),
    ),
    Conversation(
        "p-statements-get-help-not-faq",
        [
            START_P,
            "わからない",
            "そうです",
            "ちがいます",
            "含まれてない",
            "3000万",
            "2500万",
            "500万",
            "10",
            "1800",
            "いいえ",
        ],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
        check=_no_faq_mid_flow,
    ),
    Conversation(
        "p-side-question-keeps-the-values",
        [START_P, "3000万", "2500万", "人件費に賞与は含まれますか？", "500万", "10", "1800", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
        check=lambda turns: (
            None
            if "賞与" in turns[3].replies[0].text and turns[3].step == "depreciation"
            else pytest.fail(texts(turns[3]))
        ),
    ),
    Conversation(
        "p-side-question-the-guide-does-not-cover",
        [START_P, "3000万", "旅行の予約はどうすればいい？", "2500万", "500万", "10", "1800", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
        check=lambda turns: (
            None
            if "見つかりませんでした" in texts(turns[2])
            and IT2023_PHONE in texts(turns[2])
            and IT2020_PHONE not in texts(turns[2])
            and turns[2].step == "labor_cost"
            else pytest.fail(texts(turns[2]))
        ),
    ),
    Conversation(
        "p-values-in-the-request-are-not-asked-again",
        ["労働生産性を計算したい。営業利益は3000万、人件費は2500万です", "500万", "10", "1800", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-switch-to-the-other-flow-and-back-later",
        [START_P, "3000万", "辞退になるか確認したい", "@flow:withdrawal", "2023", "全部解約"],
        expected_2023("cancel-all"),
        check=lambda turns: (
            None
            if "始めますか" in texts(turns[2]) and turns[2].step == "labor_cost"
            else pytest.fail(texts(turns[2]))
        ),
    ),
    Conversation(
        "p-switch-offered-and-declined",
        [
            START_P,
            "3000万",
            "辞退になるか確認したい",
            "@cmd:resume",
            "2500万",
            "500万",
            "10",
            "1800",
            "いいえ",
        ],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-greeting-mid-flow",
        [START_P, "3000万", "こんにちは", "@cmd:resume", "2500万", "500万", "10", "1800", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
        check=lambda turns: (
            None
            if "途中" in texts(turns[2]) and turns[2].step == "labor_cost"
            else pytest.fail(texts(turns[2]))
        ),
    ),
    Conversation(
        "p-time-word-does-not-hijack",
        [START_P, "3000万", "2500万", "時間がないので急いでます", "500万", "10", "1800", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-back-mid-flow",
        [START_P, "3000万", "2500万", "戻る", "2600万", "500万", "10", "1800", "いいえ"],
        P(30_000_000, 26_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-restart",
        [START_P, "3000万", "2500万", "最初から", "2000万", "1500万", "300万", "4", "2000", "いいえ"],
        P(20_000_000, 15_000_000, 3_000_000, 4, 2000),
    ),
    Conversation(
        "p-thousand-yen",
        [START_P, "30,000千円", "25,000千円", "5,000千円", "10", "1800", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-kanji-numbers",
        [START_P, "三千万円", "二千五百万円", "五百万円", "十人", "千八百時間", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-oku",
        [START_P, "1.2億", "8千万", "1,500万", "25名", "1,850.5時間", "いいえ"],
        P(120_000_000, 80_000_000, 15_000_000, 25, "1850.5"),
    ),
    Conversation(
        "p-approximate",
        [START_P, "約3000万", "2500万円くらい", "500万程度", "10人", "1800h", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-program-2020-is-told-no-calculation",
        ["/program it2020", START_P],
        None,
        check=_has("2020", "ありません", IT2020_PHONE),
    ),
    Conversation(
        "p-2020-named-in-the-request",
        ["IT導入補助金2020の労働生産性を計算したい"],
        None,
        check=_has("2020", "ありません"),
    ),
    Conversation(
        "p-request-naming-2023-wins-over-an-earlier-2020",
        [
            "/program it2020",
            "複数社連携の労働生産性を計算したい",
            *BASIC,
            "いいえ",
            "問い合わせ先の電話番号は？",
        ],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
        results_at=(7,),
        check=lambda turns: None if IT2023_PHONE in texts(turns[-1]) else pytest.fail(texts(turns[-1])),
    ),
    Conversation(
        "p-first-time-and-a-hedged-answer",
        [START_P, *BASIC, "はい", "3000", "今回が初めて", "いるかも", "いません"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 3000, 1),
    ),
    Conversation(
        "p-one-value-to-confirm-keeps-the-others",
        [
            START_P,
            "営業利益3000、人件費2500万",
            "いいえ",
            "3000万",
            "500万",
            "10",
            "労働時間は1日8時間です",
            "いいえ",
            "1800",
            "いいえ",
        ],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-hedged-answers-are-answers",
        [START_P, "3000万かな", "2500万だと思います", "500万？", "10人くらい", "1800時間", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-values-named-by-their-units",
        [
            "労働生産性を計算したい 営業利益3000万",
            "人件費2500万 減価償却500万",
            "従業員10名 年間1800時間",
            "いいえ",
        ],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800),
    ),
    Conversation(
        "p-growth-asked-for-in-the-request-is-not-asked-again",
        ["伸び率を計算したい", *BASIC, "3000", "1", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 3000, 1),
    ),
    Conversation(
        "p-a-question-naming-the-growth-gives-no-answer",
        [
            START_P,
            "3000万",
            "2500万",
            "伸び率が5%に届かない場合は？",
            "500万",
            "10",
            "1800",
            "はい",
            "3000",
            "1",
            "いいえ",
        ],
        P(30_000_000, 25_000_000, 5_000_000, 10, 1800, 3000, 1),
    ),
    Conversation(
        "p-six-percent-borderline",
        [START_P, "3180万", "2500万", "500万", "10", "1800", "はい", "3150", "1", "はい"],
        P(31_800_000, 25_000_000, 5_000_000, 10, 1800, 3150, 1, True),
    ),
]

W20 = expected_2020
W23 = expected_2023
D = date

WITHDRAWAL: list[Conversation] = [
    Conversation(
        "w-2020-within-a-year",
        [START_W, "2020", "全部解約", "2021/4/1", "2021/12/1", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2021, 12, 1), D(2021, 9, 30)),
        check=_has(IT2020_PHONE),
    ),
    Conversation(
        "w-2020-desu",
        ["辞退届を出すべきか知りたい", "2020です", "全部", "2021/4/1", "2023/5/1", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2023, 5, 1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-2020-reiwa2-hosei",
        [START_W, "令和2年度補正", "解約", "令和3年4月1日", "令和4年6月1日", "R3.9.30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2022, 6, 1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-2023-no-dates-asked",
        [START_W, "2023の複数社連携", "全部解約"],
        W23("cancel-all"),
        check=_has(IT2023_PHONE, "後年手続きの手引き", "コールセンター"),
    ),
    Conversation("w-2023-offered-year", [START_W, "2023", "一部解約"], W23("cancel-part")),
    Conversation("w-2023-button", [START_W, "@it2023-multi", "@closure"], W23("closure")),
    Conversation(
        "w-2023-from-the-question",
        ["複数社連携でツールを解約したら辞退届を出すべきか知りたい", "全部"],
        W23("cancel-all"),
    ),
    Conversation(
        "w-program-from-the-program-command",
        ["/program it2023-multi", "辞退届を出すべきか知りたい", "廃業します"],
        W23("closure"),
    ),
    Conversation(
        "w-2020-from-the-question",
        [
            "IT導入補助金2020でツールを解約したら辞退届を出すべきか知りたい",
            "全部",
            "2021/4/1",
            "2021/12/1",
            "2021/9/30",
        ],
        W20("cancel-all", [D(2021, 4, 1)], D(2021, 12, 1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-unknown-program-then-both",
        [START_W, "わからない", "両方", "全部解約", "2021/4/1", "2021/12/1", "2021/9/30"],
        {
            "program": "both",
            "results": {
                "it2020": W20("cancel-all", [D(2021, 4, 1)], D(2021, 12, 1), D(2021, 9, 30)),
                "it2023-multi": W23("cancel-all"),
            },
        },
        check=lambda turns: None if "左上" in texts(turns[1]) else pytest.fail(texts(turns[1])),
    ),
    Conversation(
        "w-both-directly",
        [START_W, "両方", "廃業", "2021/4/1", "2024/1/31", "2021/9/30"],
        {
            "program": "both",
            "results": {
                "it2020": W20("closure", [D(2021, 4, 1)], D(2024, 1, 31), D(2021, 9, 30)),
                "it2023-multi": W23("closure"),
            },
        },
        check=_has(IT2020_PHONE, IT2023_PHONE),
    ),
    Conversation(
        "w-other-frame-gets-its-guide",
        [START_W, "通常枠です", "やめる"],
        None,
        check=lambda turns: (
            None
            if "手引き" in texts(turns[1]) and turns[1].step == "program"
            else pytest.fail(texts(turns[1]))
        ),
    ),
    Conversation(
        "w-2020-no-longer-used",
        [START_W, "2020", "ツールを使用しなくなる", "2021/4/1", "2022/1/10", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2022, 1, 10), D(2021, 9, 30)),
    ),
    Conversation(
        "w-2020-close-the-company",
        [START_W, "2020", "会社をたたむことになった", "2021/4/1", "2024/3/31", "2021/9/30"],
        W20("closure", [D(2021, 4, 1)], D(2024, 3, 31), D(2021, 9, 30)),
    ),
    Conversation(
        "w-2020-shop-closing",
        [START_W, "2020", "店じまいします", "2021/4/1", "2024/3/31", "2021/9/30"],
        W20("closure", [D(2021, 4, 1)], D(2024, 3, 31), D(2021, 9, 30)),
    ),
    Conversation("w-2023-stop-the-business", [START_W, "2023", "事業をやめることにしました"], W23("closure")),
    Conversation(
        "w-2020-one-of-several",
        [START_W, "2020", "入れたうちの1つだけ解約", "2021/4/1、2021/6/1", "2022/3/1", "2021/7/31"],
        W20("cancel-part", [D(2021, 4, 1), D(2021, 6, 1)], D(2022, 3, 1), D(2021, 7, 31)),
        check=_has("質問8"),
    ),
    Conversation(
        "w-2023-one-of-several",
        [START_W, "2023", "入れたうちの1つだけ解約"],
        W23("cancel-part"),
        check=_has("一部"),
    ),
    Conversation(
        "w-relative-today",
        [START_W, "2020", "全部", "2021/4/1", "今日", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], TODAY, D(2021, 9, 30)),
    ),
    Conversation(
        "w-relative-honjitsu",
        [START_W, "2020", "全部", "2021/4/1", "本日", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], TODAY, D(2021, 9, 30)),
    ),
    Conversation(
        "w-relative-yesterday",
        [START_W, "2020", "全部", "2021/4/1", "昨日", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], TODAY - timedelta(days=1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-relative-end-of-last-month",
        [START_W, "2020", "全部", "2021/4/1", "先月末", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2026, 10, 31), D(2021, 9, 30)),
    ),
    Conversation(
        "w-relative-last-april-with-a-day",
        [START_W, "2020", "全部", "2021/4/1", "去年の4月", "去年の4月10日", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2025, 4, 10), D(2021, 9, 30)),
    ),
    Conversation(
        "w-cancel-before-delivery-refused-at-the-step",
        [START_W, "2020", "全部", "2021/4/1", "2020/12/1", "2021/12/1", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2021, 12, 1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-completion-before-delivery-refused-at-the-step",
        [START_W, "2020", "全部", "2021/4/1", "2021/12/1", "2021/3/31", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2021, 12, 1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-correction-machigai",
        [START_W, "2020", "全部", "2021/4/1", "2021/12/1", "解約日は2023/5/1の間違いでした", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2023, 5, 1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-correction-after-result",
        [START_W, "2020", "全部", "2021/4/1", "2021/12/1", "2021/9/30", "やっぱり解約日は2022/7/1"],
        W20("cancel-all", [D(2021, 4, 1)], D(2022, 7, 1), D(2021, 9, 30)),
        results_at=(5, 6),
    ),
    Conversation(
        "w-back-after-result",
        [START_W, "2020", "全部", "2021/4/1", "2021/12/1", "2021/9/30", "戻る", "2022/3/31"],
        W20("cancel-all", [D(2021, 4, 1)], D(2021, 12, 1), D(2022, 3, 31)),
        results_at=(5, 7),
    ),
    Conversation(
        "w-two-deliveries-with-to",
        [START_W, "2020", "一部解約", "2021/4/1と2021/6/1", "2022/5/31", "2021/7/31"],
        W20("cancel-part", [D(2021, 4, 1), D(2021, 6, 1)], D(2022, 5, 31), D(2021, 7, 31)),
    ),
    Conversation(
        "w-date-in-a-sentence",
        [
            START_W,
            "2020",
            "全部",
            "2021年4月1日に納品されました",
            "2021年12月1日に解約しました",
            "2021年9月30日です",
        ],
        W20("cancel-all", [D(2021, 4, 1)], D(2021, 12, 1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-after-the-window",
        [START_W, "2020", "全部", "2021/4/1", "2028/1/1", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2028, 1, 1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-exactly-one-year",
        [START_W, "2020", "全部", "2021/6/1", "2022/6/1", "2021/9/30"],
        W20("cancel-all", [D(2021, 6, 1)], D(2022, 6, 1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-one-year-and-a-day",
        [START_W, "2020", "全部", "2021/6/1", "2022/6/2", "2021/9/30"],
        W20("cancel-all", [D(2021, 6, 1)], D(2022, 6, 2), D(2021, 9, 30)),
    ),
    Conversation(
        "w-last-day-of-the-window",
        [START_W, "2020", "全部", "2021/4/1", "2027/3/31", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2027, 3, 31), D(2021, 9, 30)),
    ),
    Conversation(
        "w-day-after-the-window",
        [START_W, "2020", "全部", "2021/4/1", "2027/4/1", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2027, 4, 1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-completion-in-march",
        [START_W, "2020", "全部", "2020/12/1", "2026/3/1", "2021/3/15"],
        W20("cancel-all", [D(2020, 12, 1)], D(2026, 3, 1), D(2021, 3, 15)),
    ),
    Conversation(
        "w-side-question-for-the-flow-program",
        [START_W, "2020", "問い合わせ先の電話番号は？", "全部", "2021/4/1", "2021/12/1", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2021, 12, 1), D(2021, 9, 30)),
        check=lambda turns: (
            None
            if IT2020_PHONE in texts(turns[2])
            and IT2023_PHONE not in texts(turns[2])
            and turns[2].step == "event"
            else pytest.fail(texts(turns[2]))
        ),
    ),
    Conversation(
        "w-greeting-mid-flow",
        [
            START_W,
            "2020",
            "全部",
            "お世話になっております",
            "@cmd:resume",
            "2021/4/1",
            "2021/12/1",
            "2021/9/30",
        ],
        W20("cancel-all", [D(2021, 4, 1)], D(2021, 12, 1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-program-asked-once-across-flows",
        [START_W, "2023", "全部解約", START_W, "一部解約"],
        W23("cancel-part"),
        results_at=(2, 4),
    ),
    Conversation(
        "w-program-kept-for-later-questions",
        [START_W, "2020です", "全部", "2021/4/1", "2021/12/1", "2021/9/30", "問い合わせ先の電話番号は？"],
        None,
        results_at=(5,),
        check=lambda turns: (
            None
            if IT2020_PHONE in texts(turns[-1]) and IT2023_PHONE not in texts(turns[-1])
            else pytest.fail(texts(turns[-1]))
        ),
    ),
    Conversation(
        "w-restart-keeps-the-program",
        [START_W, "2020", "全部", "最初から", "一部解約", "2021/4/1、2021/6/1", "2022/3/1", "2021/7/31"],
        W20("cancel-part", [D(2021, 4, 1), D(2021, 6, 1)], D(2022, 3, 1), D(2021, 7, 31)),
    ),
    Conversation(
        "w-two-dates-in-a-sentence",
        [
            START_W,
            "2020",
            "一部解約",
            "納品は2021年4月1日と2021年6月1日です",
            "2022年5月31日に解約予定",
            "2021年7月31日",
        ],
        W20("cancel-part", [D(2021, 4, 1), D(2021, 6, 1)], D(2022, 5, 31), D(2021, 7, 31)),
    ),
    Conversation(
        "w-cancel-everything-and-close",
        [START_W, "2020", "全部解約して廃業します", "2021/4/1", "2023/3/31", "2021/9/30"],
        W20("closure", [D(2021, 4, 1)], D(2023, 3, 31), D(2021, 9, 30)),
    ),
    Conversation(
        "w-one-of-two",
        [START_W, "2020", "2つ入れたうち1つを解約します", "2021/4/1、2021/6/1", "2022/3/1", "2021/7/31"],
        W20("cancel-part", [D(2021, 4, 1), D(2021, 6, 1)], D(2022, 3, 1), D(2021, 7, 31)),
    ),
    Conversation(
        "w-undecided-date-gets-help-then-month-end",
        [START_W, "2020", "全部", "2021/4/1", "まだ決めてない", "2022年3月末", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2022, 3, 31), D(2021, 9, 30)),
        check=lambda turns: None if "おおよその日" in texts(turns[4]) else pytest.fail(texts(turns[4])),
    ),
    Conversation(
        "p-arithmetic-is-asked-as-a-result",
        [START_P, "300万×10", "3000万", "2500万", "500万", "10", "8時間×250日", "2000", "いいえ"],
        P(30_000_000, 25_000_000, 5_000_000, 10, 2000),
    ),
    Conversation(
        "w-2023-help-speaks-of-2023-only",
        [START_W, "2023", "ヘルプ", "全部"],
        W23("cancel-all"),
        check=lambda turns: (
            None
            if "2020" not in texts(turns[2]) and "質問" not in texts(turns[2]) and "2023" in texts(turns[2])
            else pytest.fail(texts(turns[2]))
        ),
    ),
    Conversation(
        "w-program-and-event-in-one-answer",
        [START_W, "2020で、ツールを全部解約しました", "2021/4/1", "2022/5/1", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2022, 5, 1), D(2021, 9, 30)),
    ),
    Conversation(
        "w-event-and-date-in-one-answer",
        [START_W, "2020", "2022/3/31に全部解約しました", "2021/4/1", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2022, 3, 31), D(2021, 9, 30)),
    ),
    Conversation("w-2023-program-and-event-in-one-answer", [START_W, "2023で一部解約"], W23("cancel-part")),
    Conversation(
        "w-not-sure-which-then-other-year-then-2020",
        [START_W, "どっちだろう", "2021", "2020", "全部", "2021/4/1", "2021/12/1", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2021, 12, 1), D(2021, 9, 30)),
        check=lambda turns: (
            None
            if "左上" in texts(turns[1]) and "2020" in texts(turns[2]) and turns[2].step == "program"
            else pytest.fail(texts(turns[1]) + texts(turns[2]))
        ),
    ),
    Conversation("w-2023-bankrupt", [START_W, "2023", "倒産しました"], W23("closure")),
    Conversation("w-2023-stopped-using", [START_W, "複数社連携です", "使わなくなった"], W23("cancel-all")),
    Conversation(
        "w-statements-get-help-not-faq",
        [START_W, "2020", "わからない", "全部", "2021/4/1", "覚えてない", "2021/12/1", "2021/9/30"],
        W20("cancel-all", [D(2021, 4, 1)], D(2021, 12, 1), D(2021, 9, 30)),
        check=_no_faq_mid_flow,
    ),
]

CONVERSATIONS = PRODUCTIVITY + WITHDRAWAL


def test_there_are_enough_conversations() -> None:
    assert len(CONVERSATIONS) >= 80
    assert len({c.id for c in CONVERSATIONS}) == len(CONVERSATIONS)


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=[c.id for c in CONVERSATIONS])
def test_conversation(service: ConversationService, conversation: Conversation) -> None:
    turns = run(service, conversation)
    expected_at = conversation.results_at or ((len(turns) - 1,) if conversation.expect is not None else ())
    # The result comes exactly when expected: no extra turn, and never early.
    assert result_turns(turns) == list(expected_at), [texts(t) for t in turns]
    if conversation.expect is not None:
        final = turns[expected_at[-1]]
        assert final.result is not None
        check_result(final.result, conversation.expect)
        assert not re.search(r"計算できませんでした|確認できませんでした", texts(final))
    if conversation.check is not None:
        conversation.check(turns)
