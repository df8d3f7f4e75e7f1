"""Which program a question names, and how a reply to "which program?" is read."""

from __future__ import annotations

import pytest

from faq import KnowledgeBase, Policy
from faq.programs import name_phone_lines, programs_in_question, read_program_reply

BOTH = ("it2020", "it2023-multi")


@pytest.mark.parametrize(
    ("question", "program"),
    [
        ("IT導入補助金2020の申請マイページにログインできない", "it2020"),
        ("2020の申請マイページにログインでいないんですが", "it2020"),
        ("2020年度の交付決定を受けました。解約したい", "it2020"),
        ("令和2年度補正で導入したツールを解約", "it2020"),
        ("後年窓口の電話番号", "it2020"),
        ("2020年度のIT導入補助金の辞退届", "it2020"),
        ("IT導入補助金 (2020年度) の解約", "it2020"),
        ("複数社連携の効果報告はいつ", "it2023-multi"),
        ("2023の複数社連携で辞退したい", "it2023-multi"),
        # A bare year in a date is not a program.
        ("2023年4月に解約した", None),
        ("2020年10月に導入して2021/3/1に解約", None),
        ("2023/04/01に導入しました", None),
        # A year joined to the name by another particle, or followed by a month, stays a date.
        ("2022年にIT導入補助金で入れたツールの解約", None),
        ("IT導入補助金 2023年5月に解約した", None),
        # 「2023」 alone is not 複数社連携: most 2023 recipients are in other frames.
        ("IT導入補助金2023の効果報告", None),
        ("2023の辞退届", None),
        # 令和元年度補正 is both IT導入補助金2020 and 2021.
        ("令和元年度補正の解約手続き", None),
        ("解約したらどうなる", None),
    ],
)
def test_program_in_question(kb: KnowledgeBase, question: str, program: str | None) -> None:
    assert programs_in_question(kb, question).program == program


@pytest.mark.parametrize(
    ("question", "other"),
    [
        ("通常枠の効果報告はいつ", "it2023-other"),
        ("IT導入補助金2021のマイページ", "it-other-year"),
        ("令和2年度三次補正の解約", "it-other-year"),
        # The year said before the name, or after it in brackets, names the program all the same.
        ("2022年度のIT導入補助金のマイページ", "it-other-year"),
        ("2021年のIT補助金で入れたツールの解約", "it-other-year"),
        ("IT導入補助金（2024年度）の効果報告", "it-other-year"),
        # With 分, the year's share: 「2022年度分の」 is that year's program too.
        ("2022年度分のIT導入補助金の効果報告", "it-other-year"),
        ("2021年分IT補助金の辞退届", "it-other-year"),
        ("インボイス枠で導入したツール", "it2023-other"),
    ],
)
def test_uncovered_programs_are_named_not_taken(kb: KnowledgeBase, question: str, other: str) -> None:
    mention = programs_in_question(kb, question)
    assert mention.program is None
    assert [o.id for o in mention.others] == [other]


@pytest.mark.parametrize(
    ("reply", "kind", "program"),
    [
        ("2020です", "program", "it2020"),
        ("2020", "program", "it2020"),
        ("IT導入補助金2020", "program", "it2020"),
        ("令和2年度補正", "program", "it2020"),
        ("令和元年度補正です", "program", "it2020"),
        ("2023の複数社連携", "program", "it2023-multi"),
        ("2023", "program", "it2023-multi"),
        ("たぶん2023のほうかな", "program", "it2023-multi"),
        ("複数社連携です", "program", "it2023-multi"),
        ("両方", "both", None),
        ("どちらもです", "both", None),
        ("わからない", "unknown", None),
        ("分かりません", "unknown", None),
        ("それ以外", "other", None),
        ("通常枠", "other", None),
        ("通常枠です", "other", None),
        ("2020年度のIT導入補助金です", "program", "it2020"),
        ("2022年度のIT導入補助金です", "other", None),
        # A bare year that is not offered, said as the reply: another year of the subsidy.
        ("2022年度です", "other", None),
        ("2021", "other", None),
        ("うちは2024年度かな", "other", None),
    ],
)
def test_reply_to_which_program(kb: KnowledgeBase, reply: str, kind: str, program: str | None) -> None:
    got = read_program_reply(kb, reply, BOTH)
    assert got is not None, reply
    assert (got.kind, got.program) == (kind, program)


def test_an_uncovered_frame_is_named_in_the_reply(kb: KnowledgeBase) -> None:
    got = read_program_reply(kb, "通常枠です", BOTH)
    assert got is not None and got.other is not None
    assert "共通" in got.other.guide


def test_a_bare_other_year_in_the_reply_names_that_years_program(kb: KnowledgeBase) -> None:
    """「2022年度です」 answers "which program?" with IT導入補助金2022: its pointer, not a new question."""
    got = read_program_reply(kb, "2022年度です", BOTH)
    assert got is not None and got.other is not None
    assert got.other.id == "it-other-year"
    # In a question, the same bare year is a date or nothing: only a reply reads it.
    assert not programs_in_question(kb, "2022年度に解約した").others


@pytest.mark.parametrize(
    "text",
    [
        "ツールを半年で解約したらどうなる？",
        "申請マイページのIDがわからないのですが、2020で導入しました",
        "効果報告の期限はいつですか",
        "2022年4月にツールを解約しました",  # a year in a date, in a new question
        "",
    ],
)
def test_a_new_question_is_not_a_reply(kb: KnowledgeBase, text: str) -> None:
    assert read_program_reply(kb, text, BOTH) is None


def test_a_program_not_offered_is_not_picked(kb: KnowledgeBase) -> None:
    assert read_program_reply(kb, "2020です", ("it2023-multi",)) is None


def test_both_programs_answers_each_carry_their_own_line(kb: KnowledgeBase) -> None:
    from datetime import datetime

    from faq import Policy
    from faq.replies import both_reply
    from rules import TOKYO

    outcome = Policy(kb).decide("ツールを半年で解約したらどうなる？")
    assert len(outcome.answers) == 2
    shown = both_reply(kb, outcome.answers, datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO)).text
    sides = shown.split("\n\n")[1:3]  # after the head line: one block per program
    assert len(sides) == 2
    for side, entry in zip(sides, outcome.answers, strict=True):
        own = [c for c in kb.contacts.values() if c.id in kb.programs[entry.program].general_contacts]
        other = [
            c
            for pid, p in kb.programs.items()
            if pid not in (entry.program, "common")
            for c in kb.contacts.values()
            if c.id in p.general_contacts
        ]
        assert any(c.phones[0].number in side for c in own), side
        assert not any(ph.number in side for c in other for ph in c.phones), side


def test_a_group_application_names_the_multi_company_frame(kb: KnowledgeBase) -> None:
    """Only 複数社連携IT導入類型 is applied for by a group (補助事業グループ)."""
    assert programs_in_question(kb, "グループで申請した補助金の効果報告").program == "it2023-multi"
    assert programs_in_question(kb, "グループ申請の代表です").program == "it2023-multi"
    assert programs_in_question(kb, "グループ会社の決算").program is None


def test_the_2020_special_frame_names_the_2020_program(kb: KnowledgeBase, policy: Policy) -> None:
    """特別枠 is in the 2020 FAQ's heading (令和2年度補正（特別枠含む）) and never in the 2023 guide:
    it names IT導入補助金2020, and, three characters long, it is left out of the matching like the
    other program names instead of weighing as a word no entry says."""
    assert programs_in_question(kb, "特別枠で入れたツールを半年で解約したい").program == "it2020"
    out = policy.decide("特別枠の申請マイページにログインできない")
    assert out.status == "answered"
    assert [e.id for e in out.answers] == ["it2020-login-failed"]


def _numbers(kb: KnowledgeBase, program: str) -> list[str]:
    return [ph.number for c in kb.contacts.values() if c.program == program for ph in c.phones]


@pytest.mark.parametrize("program", BOTH)
def test_a_line_quoted_by_its_number_names_its_program(kb: KnowledgeBase, program: str) -> None:
    """Each number serves one program (contacts.toml): whoever quotes it has that line in hand."""
    for number in _numbers(kb, program):
        for typed in (
            number,
            number.replace("-", ""),
            number.translate(str.maketrans("0123456789-", "０１２３４５６７８９－")),
        ):
            mention = programs_in_question(kb, f"{typed}につながらない")
            assert mention.program == program, typed
            assert mention.by_phone


def test_numbers_that_are_no_line_name_nothing(kb: KnowledgeBase) -> None:
    gbizid = [ph.number for c in kb.contacts.values() if c.program == "common" for ph in c.phones]
    assert gbizid, "the gBizID line serves both programs"
    for text in (f"{gbizid[0]}に電話した", "0570-000-000に電話した", "従業員は0570人", "2020-04-01に解約"):
        assert programs_in_question(kb, text).program is None, text
    # A number the knowledge base does not give is left as typed.
    typed = "0570-000-000に電話した"
    assert "0570-000-000" in name_phone_lines(typed, programs_in_question(kb, typed).quoted)


def test_the_number_is_matched_as_the_line_it_names(kb: KnowledgeBase) -> None:
    from faq import Policy

    for program in BOTH:
        number = _numbers(kb, program)[0]
        outcome = Policy(kb).decide(f"{number} 受付時間")
        assert outcome.status == "answered", number
        assert [e.program for e in outcome.answers] == [program]
        assert outcome.program == program


@pytest.mark.parametrize(
    "question",
    ["令和元年度補正で入れたツールを半年で解約したら？", "R1補正の後年手続きの問い合わせ先を教えてください"],
)
def test_reiwa_1_supplementary_budget_rules_out_the_2023_answer(kb: KnowledgeBase, question: str) -> None:
    """令和元年度補正 is IT導入補助金2020 or 2021 (2020 FAQ, 質問1の注記): never the 2023 frame's
    answer, and not remembered as IT導入補助金2020 either."""
    from faq import Policy

    mention = programs_in_question(kb, question)
    assert mention.program is None
    assert mention.narrowed == ("it2020",)
    outcome = Policy(kb).decide(question)
    assert outcome.status == "answered"
    assert [e.program for e in outcome.answers] == ["it2020"]
    assert outcome.program is None
    assert not outcome.other_silent  # the 2023 document is not in question
    # The answer says what else the words could mean.
    from faq.replies import answered_notes

    assert outcome.narrowed
    assert any("IT導入補助金2021" in note for note in answered_notes(kb, outcome))
    assert not Policy(kb).decide("令和2年度補正で入れたツールを半年で解約したら？").narrowed


def test_a_named_program_or_another_year_wins_over_the_narrowing(kb: KnowledgeBase) -> None:
    assert programs_in_question(kb, "令和元年度補正と令和2年度三次補正の解約").narrowed == ("it2020",)
    from faq import Policy

    outcome = Policy(kb).decide("令和元年度補正と令和2年度三次補正で入れたツールの解約")
    assert outcome.status == "no_match"
    assert [o.id for o in outcome.others] == ["it-other-year"]


@pytest.mark.parametrize(
    "question",
    [
        "IT導入補助金2021の申請マイページに入れなくなった",
        "令和2年度三次補正のポータル ログインエラー",
        # The year said before the name, or after it in brackets (name_program_years).
        "2022年度のIT導入補助金でマイページにログインできない",
        "IT導入補助金（2021年度）で入れたツールを一部解約したい",
    ],
)
def test_an_uncovered_programs_recipient_is_not_given_the_entry_that_tells_it_apart(
    kb: KnowledgeBase, question: str
) -> None:
    """The 2020 login entry names IT導入補助金2021 only to say its portal is another one
    (catalog.toml `told_apart_in`): a 2021 recipient gets the pointer to 2021's own homepage."""
    from faq import Policy

    outcome = Policy(kb).decide(question)
    assert outcome.status == "no_match", outcome
    assert [o.id for o in outcome.others] == ["it-other-year"]


@pytest.mark.parametrize(
    "question",
    [
        "ログインできない。IT導入補助金2021のマイページと間違えてる？",
        "IT導入補助金2021の画面と取り違えたかも、ログインエラー",
    ],
)
def test_a_question_about_the_mix_up_gets_the_entry_that_tells_them_apart(
    kb: KnowledgeBase, question: str
) -> None:
    from faq import Policy

    outcome = Policy(kb).decide(question)
    assert outcome.status == "answered", outcome
    assert [e.id for e in outcome.answers] == ["it2020-login-failed"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("2022年度のIT導入補助金で申請マイページ", "it導入補助金2022 で申請マイページ"),
        ("2020年のIT補助金の後年手続き", "it導入補助金2020 の後年手続き"),
        ("IT導入補助金（2021年度）で導入", "it導入補助金2021 で導入"),
        ("IT導入補助金2020", "it導入補助金2020"),
        ("2023年5月にIT導入補助金で", "2023年5月にit導入補助金で"),
        ("IT導入補助金 2023/5/1 に申請", "it導入補助金 2023/5/1 に申請"),
        ("解約したい", "解約したい"),
    ],
)
def test_a_year_said_with_the_subsidys_name_is_written_as_the_program(text: str, named: str) -> None:
    from faq.programs import name_program_years

    assert name_program_years(text) == named


def test_a_covered_year_said_before_the_name_is_not_matched_as_a_year(kb: KnowledgeBase) -> None:
    """「2020年のIT導入補助金」 is the program's name: its 年 must not pull towards the contact entry's
    wording 「2020年度のIT導入補助金の…」, nor leave the question's program open."""
    from faq import Policy

    outcome = Policy(kb).decide("2020年のIT導入補助金の後年手続き、問い合わせ先はどこ？")
    assert outcome.status == "answered", outcome
    assert [e.id for e in outcome.answers] == ["it2020-contact"]
    assert outcome.program == "it2020"


@pytest.mark.parametrize(
    "question", ["IT導入補助金2023のコールセンターの電話番号", "2023年度のIT導入補助金 問い合わせ先"]
)
def test_it2023_named_with_the_subsidy_rules_out_the_2020_answer(kb: KnowledgeBase, question: str) -> None:
    """「IT導入補助金2023」 is not 複数社連携 (the guide's other frames are elsewhere), but its asker is no
    2020 recipient: the 2023 guide answers alone, with where the other frames' guide is."""
    from faq import Policy
    from faq.replies import answered_notes

    assert programs_in_question(kb, question).narrowed == ("it2023-multi",)
    outcome = Policy(kb).decide(question)
    assert outcome.status == "answered", outcome
    assert [e.id for e in outcome.answers] == ["it2023-contact"]
    assert outcome.program is None  # not remembered: the question did not name the frame
    assert any("共通の「事業実施効果報告の手引き」" in n for n in answered_notes(kb, outcome))


def test_another_2023_frame_is_not_narrowed_to_the_multi_company_frame(kb: KnowledgeBase) -> None:
    mention = programs_in_question(kb, "IT導入補助金2023の通常枠の効果報告はいつ")
    assert [o.id for o in mention.others] == ["it2023-other"]
    from faq import Policy

    outcome = Policy(kb).decide("IT導入補助金2023の通常枠の効果報告はいつ")
    assert not outcome.within and not outcome.narrowed


def test_not_found_within_one_program_gives_that_programs_line_only(kb: KnowledgeBase) -> None:
    """A 2023 recipient whose question the 2023 guide is silent on is not given the 2020 line."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from faq import Policy
    from faq.replies import not_found_reply

    outcome = Policy(kb).decide("IT導入補助金2023のマイページのログインIDを忘れてしまった")
    assert outcome.status == "no_match", outcome
    assert outcome.within == ("it2023-multi",)
    text = not_found_reply(kb, outcome, datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))).text
    assert "0570-666-376" in text
    assert "0570-002-551" not in text
    assert "共通の「事業実施効果報告の手引き」" in text


@pytest.mark.parametrize("question", ["問い合わせフォームのURLを知りたい", "お問い合わせフォームのURL教えて"])
def test_a_question_about_what_only_one_line_has_gets_that_line(kb: KnowledgeBase, question: str) -> None:
    """The お問い合わせフォーム is in the 2020 FAQ only (質問2): the 2023 line, though it too has a
    URL, is not shown beside it."""
    from faq import Policy

    outcome = Policy(kb).decide(question)
    assert outcome.status == "answered", outcome
    assert [e.id for e in outcome.answers] == ["it2020-contact"]


def test_a_general_question_about_the_lines_still_gets_both(kb: KnowledgeBase) -> None:
    from faq import Policy

    outcome = Policy(kb).decide("電話番号を教えてほしい")
    assert sorted(e.id for e in outcome.answers) == ["it2020-contact", "it2023-contact"]
