"""The structure of every FAQ reply, through the service and as each channel renders it.

Every entry's answer, every two-program pair, every not-found and ask-back: a headline of
at most three lines that opens the first message, a first message that fits a phone screen,
no internal identifiers in the message or its details, the buttons (「詳しく」, the program
choices, the quick replies), the source once.  The channels (Telegram HTML, the terminal)
show the same words with the headline emphasised.  Telegram renderings of a few replies are
saved to test-artifacts/telegram/ to be looked at.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from reply_checks import FIRST_MESSAGE_MAX, HEADLINE_MAX_LINES, internal_tokens

from bot.chat import BOLD, RESET, Terminal, render_text
from bot.service import (
    DETAILS_GONE,
    DETAILS_KEPT,
    QUICK_CHOICES,
    Conversation,
    ConversationService,
    ServiceTurn,
    _Routed,
)
from bot.store import Store
from bot.telegram import render_replies, render_turn
from dialogs.types import Reply, UserInput
from faq import Contact, Entry, KnowledgeBase, Outcome, Policy
from faq.policy import Choice
from faq.replies import (
    CLARIFY_CLOSE,
    NOT_FOUND,
    both_reply,
    clarify_text,
    not_found_reply,
    short_answer,
)
from rules.contact_hours import TOKYO

CHANNEL = "test"
OPEN = datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO)  # a Friday morning: every line is open
CLOSED = datetime(2026, 11, 28, 20, 0, tzinfo=TOKYO)  # a Saturday evening: every line is closed
IT2020_PHONE, IT2023_PHONE = "0570-002-551", "0570-666-376"
ARTIFACTS = (
    Path(os.environ["KOUNEN_SCREENSHOT_DIR"]).parent / "telegram"
    if os.environ.get("KOUNEN_SCREENSHOT_DIR")
    else Path(__file__).resolve().parents[1] / "test-artifacts" / "telegram"
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'replies.db'}") as opened:
        yield opened


@pytest.fixture
def service(kb: KnowledgeBase, policy: Policy, store: Store) -> ConversationService:
    return ConversationService(kb, policy, store, now=lambda: OPEN)


def say(service: ConversationService, text: str, user: str = "u1") -> ServiceTurn:
    return service.handle(CHANNEL, user, UserInput(text))


def pick(service: ConversationService, value: str, user: str = "u1") -> ServiceTurn:
    return service.handle(CHANNEL, user, UserInput(choice=value))


def values(reply: Reply) -> list[str]:
    return [c.value for c in reply.choices]


def check_first_message(reply: Reply) -> None:
    """What every first message satisfies: short, opened by its headline, nothing internal."""
    assert len(reply.text) <= FIRST_MESSAGE_MAX, (len(reply.text), reply.text)
    assert internal_tokens(reply.text) == [], reply.text
    assert internal_tokens(reply.details) == [], reply.details
    for choice in reply.choices:
        assert internal_tokens(choice.label) == [], choice.label
    if reply.headline:
        assert reply.text.startswith(reply.headline)
        assert len(reply.headline.strip().splitlines()) <= HEADLINE_MAX_LINES, reply.headline
    sentences = [s for s in re.split(r"(?<=[。！？])|\n", reply.text) if len(s.strip()) > 8]
    assert len(sentences) == len(set(sentences)), reply.text  # no sentence twice


def _named(kb: KnowledgeBase, entry: Entry) -> list[Contact]:
    return [kb.contacts[c] for c in entry.contact_refs]


def document_titles(kb: KnowledgeBase) -> list[str]:
    return [doc.title for doc in kb.documents.values()]


# -- every entry's answer ---------------------------------------------------------------------


def test_every_entry_answer_is_a_headline_the_line_to_call_and_details(
    kb: KnowledgeBase, service: ConversationService
) -> None:
    for entry in kb.entries:
        turn = pick(service, f"faq:{entry.id}", user=entry.id)
        reply = turn.replies[0]
        check_first_message(reply)
        program = kb.programs[entry.program]
        assert reply.headline == f"【{program.short}】{short_answer(kb, entry)}", entry.id
        # The line to call with whether it is open now (or the web page the answer names).
        phones = [p.number for c in kb.contacts.values() for p in c.phones]
        if any(number in reply.text for number in phones):
            assert "受付中" in reply.text, entry.id
        else:
            assert "https://" in reply.text and not any(c.phones for c in _named(kb, entry)), entry.id
        # 「詳しく」: the entry's own, stateless value.
        assert f"more:{entry.id}" in values(reply)
        # The details: the full official text and the source, each document once.
        assert reply.details.startswith(f"【{program.name}】")
        assert reply.details.count("出典：") == 1, entry.id
        for title in document_titles(kb):
            assert reply.details.count(title) <= 1, (entry.id, title)
        assert turn.entry_id == entry.id


def test_details_pressed_show_the_full_answer_without_a_sentence_twice(
    kb: KnowledgeBase, service: ConversationService
) -> None:
    entry = kb.by_id["it2020-mypage-id-forgotten"]
    shown = pick(service, f"more:{entry.id}").replies[0].text
    assert "gBizID でのログインとなります" in shown and "06-6225-7877" in shown
    assert "出典：" in shown
    # The gBizID line's note says what the answer already says: shown once.
    assert shown.count("gBizID を管理して") == 1, shown


def test_the_line_is_said_open_or_closed_by_the_clock_given(
    kb: KnowledgeBase, policy: Policy, store: Store
) -> None:
    opened = ConversationService(kb, policy, store, now=lambda: OPEN)
    closed = ConversationService(kb, policy, store, now=lambda: CLOSED)
    assert "受付中" in pick(opened, "faq:it2020-contact", "a").replies[0].text
    late = pick(closed, "faq:it2020-contact", "b").replies[0].text
    assert "時間外・次は月曜 9:30" in late


# -- two programs side by side ----------------------------------------------------------------


def topic_pairs(kb: KnowledgeBase) -> list[tuple[Entry, Entry]]:
    by_topic: dict[str, list[Entry]] = {}
    for entry in kb.entries:
        if entry.topic:
            by_topic.setdefault(entry.topic, []).append(entry)
    return [
        (a, b)
        for group in by_topic.values()
        for a in group
        for b in group
        if a.program == "it2020" and b.program == "it2023-multi"
    ]


def test_every_two_program_answer_fits_a_phone_screen(kb: KnowledgeBase) -> None:
    pairs = topic_pairs(kb)
    assert pairs
    for a, b in pairs:
        shaped = both_reply(kb, (a, b), OPEN)
        reply = Reply(shaped.text, headline=shaped.headline)
        check_first_message(reply)
        assert IT2020_PHONE in shaped.text and IT2023_PHONE in shaped.text
        assert shaped.text.count("受付中") == 2


def test_the_two_program_answer_through_the_service(service: ConversationService) -> None:
    turn = say(service, "ツールを半年で解約したらどうなる？")
    reply = turn.replies[0]
    check_first_message(reply)
    assert reply.headline == "制度によって回答が異なります。"
    assert IT2020_PHONE in reply.text and IT2023_PHONE in reply.text
    assert "【IT導入補助金2020】" in reply.text and "【IT導入補助金2023 複数社連携】" in reply.text
    offered = values(reply)
    assert [v for v in offered if v.startswith("prog:")] == [
        "prog:it2020",
        "prog:it2023-multi",
        "prog:other",
        "prog:unknown",
    ]
    more = [v for v in offered if v.startswith("more:")]
    assert len(more) == 2
    # Each program's 詳しく shows that program's full answer.
    assert "全額返還" in pick(service, more[0]).replies[0].text
    assert "辞退" in pick(service, more[1]).replies[0].text


def test_a_cancellation_without_a_span_shows_both_2020_rules_under_one_heading(
    service: ConversationService,
) -> None:
    # 2020 FAQ 質問6 (1年未満: 全額返還) and 質問7 (1年以上: 返還は状況による): one of them alone
    # would be half the rule.  The heading and the line are said once.
    turn = say(service, "ITツール 解約 辞退届")
    reply = turn.replies[0]
    check_first_message(reply)
    assert reply.text.count("【IT導入補助金2020】") == 1 and reply.text.count(IT2020_PHONE) == 1
    assert "全額返還" in reply.text and "1年以上：" in reply.text
    assert IT2023_PHONE in reply.text
    more = [c for c in reply.choices if c.value.startswith("more:")]
    # One 詳しく per program side, each saying whose answer it opens; the 2020 side's opens both
    # spans, each under its heading (a button per span pushed the buttons past one phone screen).
    assert len(more) == 2 and len({c.label for c in more}) == 2, [c.label for c in more]
    (side,) = [c for c in more if "2020" in c.label]
    details = pick(service, side.value).replies[0].text
    assert "【1年未満】" in details and "【1年以上】" in details
    # Picking 2020 asks which span applies, within 2020, rather than keeping one of the two.
    picked = pick(service, "prog:it2020")
    shown = picked.replies[0]
    offered = {c.value for c in shown.choices}
    assert {"faq:it2020-cancel-within-year", "faq:it2020-cancel-after-year"} <= offered, offered


def test_the_span_asked_back_can_be_typed_or_not_known(service: ConversationService) -> None:
    say(service, "ITツール 解約 辞退届")
    pick(service, "prog:it2020")
    unsure = say(service, "わからない")  # where to find out, and the same question again
    reply = unsure.replies[0]
    check_first_message(reply)
    assert IT2020_PHONE in reply.text and IT2023_PHONE not in reply.text
    assert {"faq:it2020-cancel-within-year", "faq:it2020-cancel-after-year"} <= {
        c.value for c in reply.choices
    }
    typed = say(service, "1年半くらいです")  # typed instead of tapped: answers the question kept
    shown = "\n".join(r.text for r in typed.replies)
    assert "返還の有無" in shown and "全額返還" not in shown


# -- not found, ask-back ----------------------------------------------------------------------


def test_not_found_is_short_with_both_lines_when_the_program_is_unknown(service: ConversationService) -> None:
    turn = say(service, "宇宙旅行の補助金について")
    reply = turn.replies[0]
    check_first_message(reply)
    assert reply.headline == NOT_FOUND
    assert IT2020_PHONE in reply.text and IT2023_PHONE in reply.text
    assert values(reply)[: len(QUICK_CHOICES)] == [c.value for c in QUICK_CHOICES]


def test_not_found_gives_only_the_line_that_applies(service: ConversationService) -> None:
    say(service, "/program it2023-multi")
    reply = say(service, "宇宙旅行の補助金について").replies[0]
    check_first_message(reply)
    assert IT2023_PHONE in reply.text and IT2020_PHONE not in reply.text


@pytest.mark.parametrize("program", [None, "it2020", "it2023-multi"])
@pytest.mark.parametrize("reason", ["not covered", "not in this program's document", "another program"])
def test_every_not_found_outcome(kb: KnowledgeBase, program: str | None, reason: str) -> None:
    others = kb.other_programs if reason == "another program" else ()
    outcome = Outcome("q", "no_match", (), program=program, reason=reason, others=others)
    shaped = not_found_reply(kb, outcome, CLOSED)
    reply = Reply(shaped.text, QUICK_CHOICES, headline=shaped.headline)
    check_first_message(reply)
    phones = (
        [IT2020_PHONE, IT2023_PHONE]
        if program is None
        else [IT2020_PHONE if program == "it2020" else IT2023_PHONE]
    )
    assert all(p in reply.text for p in phones)
    assert reply.text.count("（時間外・") == len(phones)
    if reason == "not in this program's document" and program is not None:
        assert kb.programs[program].short in reply.headline and "当てはまりません" in reply.headline


def test_asking_back_says_why(kb: KnowledgeBase) -> None:
    close = Outcome(
        "q", "clarify", (), choices=(Choice("a", "x"), Choice("b", "y")), reason="close candidates"
    )
    assert clarify_text(close) == CLARIFY_CLOSE
    by_program = Outcome(
        "q",
        "clarify",
        (),
        choices=(Choice("2020", program="it2020"), Choice("2023", program="it2023-multi")),
        reason="answer differs by program",
    )
    assert "制度によって回答が異なります" in clarify_text(by_program)


def test_an_ask_back_through_the_service(kb: KnowledgeBase, policy: Policy, store: Store) -> None:
    from faq import PolicyConfig

    unsure = Policy(
        kb, matcher=policy.matcher, config=PolicyConfig.load().model_copy(update={"lead_min": 99.0})
    )
    service = ConversationService(kb, unsure, store, now=lambda: OPEN)
    reply = say(service, "ログインIDを忘れた").replies[0]
    check_first_message(reply)
    assert reply.text == CLARIFY_CLOSE
    assert values(reply) and all(v.startswith("faq:") for v in values(reply))


# -- 詳しく later -----------------------------------------------------------------------------


def test_an_old_entry_details_button_works_after_other_turns(service: ConversationService) -> None:
    first = say(service, "gbizidを忘れた").replies[0]
    old = next(v for v in values(first) if v.startswith("more:"))
    say(service, "宇宙旅行の補助金について")
    say(service, "労働生産性を計算したい")  # a dialog is now in progress
    shown = pick(service, old)
    assert "06-6225-7877" in shown.replies[0].text and "出典：" in shown.replies[0].text
    # Inside the dialog the step is asked again after the details.
    assert shown.dialog is not None and len(shown.replies) >= 2


class _WithDetails(ConversationService):
    """A service whose 「内訳 …」 turns return a reply with details of their own (as a result does)."""

    def _route(self, conv: Conversation, user_input: UserInput) -> _Routed:
        if user_input.text.startswith("内訳"):
            return _Routed(
                [Reply(f"結果 {user_input.text}", details=f"計算の内訳：{user_input.text}")], conv, "dialog"
            )
        return super()._route(conv, user_input)


def test_details_that_are_not_an_entry_are_kept_for_old_buttons(
    kb: KnowledgeBase, policy: Policy, store: Store
) -> None:
    service = _WithDetails(kb, policy, store, now=lambda: OPEN)
    first = say(service, "内訳 1").replies[0]
    old = [v for v in values(first) if v.startswith("more:")]
    assert len(old) == 1 and len(old[0]) <= 64 and old[0].isascii()
    say(service, "gbizidを忘れた")
    say(service, "内訳 2")
    assert pick(service, old[0]).replies[0].text == "計算の内訳：内訳 1"
    for n in range(3, 3 + DETAILS_KEPT):  # the oldest is forgotten after DETAILS_KEPT newer ones
        say(service, f"内訳 {n}")
    assert pick(service, old[0]).replies[0].text == DETAILS_GONE
    assert pick(service, "more:r0123456789").replies[0].text == DETAILS_GONE
    assert pick(service, "more:no-such-entry").replies[0].text == DETAILS_GONE


# -- channels ---------------------------------------------------------------------------------


def _save(name: str, turn: ServiceTurn) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    blocks = []
    for message in render_turn(turn):
        buttons = [b.text for row in (message.markup.inline_keyboard if message.markup else ()) for b in row]
        blocks.append(f"{message.html}\n[{' | '.join(buttons)}]")
    (ARTIFACTS / f"{name}.html.txt").write_text("\n\n----\n\n".join(blocks) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "question"),
    [
        ("answer", "gbizidを忘れた"),
        ("two-programs", "ツールを半年で解約したらどうなる？"),
        ("not-found", "宇宙旅行の補助金について"),
    ],
)
def test_telegram_bolds_the_headline_and_shows_the_buttons(
    service: ConversationService, name: str, question: str
) -> None:
    turn = say(service, question, user=name)
    reply = turn.replies[0]
    messages = render_turn(turn)
    first = messages[0]
    assert first.html.startswith(f"<b>{html.escape(reply.headline, quote=False)}</b>")
    assert html.unescape(re.sub(r"</?b>", "", first.html)) == reply.text  # the same words
    assert first.html.count("<b>") == 1
    buttons = [b for row in (first.markup.inline_keyboard if first.markup else ()) for b in row]
    assert [b.callback_data for b in buttons if not str(b.callback_data).startswith("fb:")] == values(reply)
    if turn.entry_id is not None and len([v for v in values(reply) if v.startswith("more:")]) == 1:
        assert any(b.text == "詳しく" for b in buttons)
        assert any(str(b.callback_data).startswith("fb:1:") for b in buttons)  # 👍/👎 stay
    _save(name, turn)


def test_telegram_escapes_a_headline_with_markup() -> None:
    [message] = render_replies([Reply("<b>x</b> & y\n本文 <i>", headline="<b>x</b> & y")])
    assert message.html == "<b>&lt;b&gt;x&lt;/b&gt; &amp; y</b>\n本文 &lt;i&gt;"


def test_the_terminal_bolds_the_whole_headline_and_nothing_when_piped() -> None:
    reply = Reply("一行目\n二行目\n\nお問い合わせ：窓口", headline="一行目\n二行目")
    styled = render_text([reply], Terminal(columns=80, styled=True))
    assert f"{BOLD}一行目{RESET}\n{BOLD}二行目{RESET}" in styled
    assert f"{BOLD}お問い合わせ" not in styled
    plain = render_text([reply])
    assert "\x1b" not in plain and plain.startswith("一行目\n二行目\n\nお問い合わせ：窓口")


def test_an_answer_from_one_programs_document_says_the_other_is_silent(service: ConversationService) -> None:
    reply = say(service, "申請マイページのIDがわからない").replies[0]
    assert reply.headline.startswith("【IT導入補助金2020】")  # which program the answer is for
    assert "2023 複数社連携の資料には、この件の記載はありません" in reply.text
    assert reply.text.count("IT導入補助金2020") == 1  # said once, in the headline
