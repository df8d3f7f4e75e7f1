"""Coverage from both sides (faq/matcher.py): what the answering bar in policy.toml is compared with."""

from __future__ import annotations

import pytest

from faq import Policy
from faq.matcher import PART_WEIGHT, Matcher

QUESTIONS = (
    "人件費 内訳",
    "解約",
    "経理担当が休みで私が代わりに効果報告を入れているんですが、人件費の欄に何を入れればいいのか分かりません",
    "申請マイページのIDがわからない",
    "ツールを半年で解約したらどうなる？",
    "ゲームのログインボーナスがもらえない",
    "じぎょうしゃぽーたる ろぐいん",
)


def _by_hand(matcher: Matcher, question: str, entry_id: str) -> float:
    """The wording side recomputed wording by wording, without the matcher's index."""
    prepared = matcher.prepare(matcher.analyzer.analyze(question))
    said, said_parts = prepared.said, prepared.said_parts
    n = max(1, sum(1 for *_, countable in prepared.concepts if countable))
    entry = matcher.kb.by_id[entry_id]
    best = 0.0
    for text in (entry.question, *entry.paraphrases):
        concepts = [c for c in matcher.analyzer.analyze(text).concepts if c.countable]
        weights = sorted((matcher._weight(c.terms) for c in concepts), reverse=True)
        if not weights:
            continue
        covered = 0.0
        for c in concepts:
            weight = matcher._weight(c.terms)
            if set(c.terms) & said:
                covered += weight
            elif set(c.terms) & said_parts or set(c.parts) & (said | said_parts):
                covered += weight * PART_WEIGHT
        best = max(best, min(1.0, covered / sum(weights[:n])))
    return best


@pytest.mark.parametrize("question", QUESTIONS)
def test_wording_side_matches_a_recomputation_by_hand(policy: Policy, question: str) -> None:
    matcher = policy.matcher
    for c in matcher.rank(question, k=5):
        assert c.wording_coverage == pytest.approx(_by_hand(matcher, question, c.entry.id)), c.entry.id


@pytest.mark.parametrize("question", QUESTIONS)
def test_score_is_the_mean_of_both_sides(policy: Policy, question: str) -> None:
    for c in policy.matcher.rank(question, k=5):
        assert 0.0 <= c.question_coverage <= 1.0 and 0.0 <= c.wording_coverage <= 1.0
        assert c.coverage == pytest.approx((c.question_coverage + c.wording_coverage) / 2)


def test_a_chatty_question_says_all_of_one_wording(policy: Policy) -> None:
    """Words about the asker (経理担当, 休み) lower the question side, not the wording side.

    (This one stays below the bar: its six words about the asker outweigh one wording.)"""
    top = policy.matcher.rank(QUESTIONS[2], k=1)[0]
    assert top.entry.id == "it2023-input-labor-cost"
    assert top.wording_coverage == 1.0
    assert top.question_coverage < 0.5 < top.coverage


@pytest.mark.parametrize("word", ["解約", "人件費", "住所変更"])
def test_a_one_word_search_is_not_refused_for_being_short(policy: Policy, word: str) -> None:
    top = policy.matcher.rank(word, k=1)[0]
    assert top.wording_coverage >= policy.config.coverage_min
    assert policy.decide(word).status != "no_match"


def test_a_word_of_the_answer_only_says_little_of_the_wordings(policy: Policy) -> None:
    """ナビダイヤル is in the 2020 contact entry's answer; as a question it says none of a
    wording about forgetting the portal ID, so that entry's wording side stays low."""
    matcher = policy.matcher
    prepared = matcher.prepare(matcher.analyzer.analyze("ナビダイヤル"))
    idx = matcher.position["it2020-portal-id-forgotten"]
    assert matcher.wording_coverage(prepared, idx) == 0.0


@pytest.mark.parametrize(
    ("question", "slip", "word"),
    [
        ("効果報告の起源を過ぎたらもう出せない？", "起源", "期限"),
        ("要式のエクセル、どのセルに入力すればいい", "要式", "様式"),
        ("講評されるって本当？生産性が伸びないと", "講評", "公表"),
    ],
)
def test_a_homophone_slip_is_read_in_the_context_of_the_question(
    policy: Policy, question: str, slip: str, word: str
) -> None:
    matcher = policy.matcher
    prepared = matcher.prepare(matcher.analyzer.analyze(question))
    forms = next(full for full, *_ in prepared.concepts if slip in full)
    assert word in forms


@pytest.mark.parametrize("question", ["明日の天気", "天気予報を見たい", "ゲームの機嫌が悪い"])
def test_a_word_of_the_same_sound_without_context_stays_itself(policy: Policy, question: str) -> None:
    """天気 sounds like 転記 and 機嫌 like 期限, but no noun of these questions is in an entry
    that has those words: they are not slips, and the question is not found."""
    matcher = policy.matcher
    prepared = matcher.prepare(matcher.analyzer.analyze(question))
    said = prepared.said
    assert not said & {"転記", "期限"}
    assert policy.decide(question).status == "no_match"


def test_call_center_framing_is_left_out_of_the_matching(policy: Policy) -> None:
    """「お客様から、…とのお問い合わせです」 says who asks: the same question without it ranks the same."""
    framed = "お客様から、辞退届の提出方法を教えてほしいとのことです。"
    plain = "辞退届の提出方法を教えてほしい。"
    matcher = policy.matcher
    assert matcher.rank(framed, k=1)[0].entry.id == matcher.rank(plain, k=1)[0].entry.id
    assert matcher.rank(framed, k=1)[0].coverage == pytest.approx(matcher.rank(plain, k=1)[0].coverage)


def test_a_word_one_document_merely_phrases_differently_keeps_both_programs(policy: Policy) -> None:
    """扱い is in the 2023 guide's answers only, but the 2020 partial-cancellation answer covers the
    question as well: both programs' answers are shown, not the 2023 one alone."""
    outcome = policy.decide("複数入れたITツールのうちひとつだけやめたら辞退扱いになる？")
    assert {e.id for e in outcome.answers} == {"it2020-cancel-partial", "it2023-withdrawal-partial"}


def test_a_word_of_one_document_keeps_that_program_when_the_other_does_not_cover(policy: Policy) -> None:
    outcome = policy.decide("ナビダイヤルがつながらない")
    assert [e.program for e in outcome.answers] == ["it2020"]


def test_a_not_found_offers_the_near_entries_only(policy: Policy) -> None:
    """Below the answering bar but from `suggest_min`, the best-ranked entries are offered to pick."""
    cfg = policy.config
    outcome = policy.decide(
        "税理士の先生にも聞いたんですけど補助金の手続きは分からないと言われてしまって、"
        "効果報告の営業利益の欄には決算書のどの数字を書けばいいのか教えてもらえませんか"
    )
    assert outcome.status == "no_match"
    offered = [s.entry_id for s in outcome.suggestions]
    assert "it2023-input-operating-profit" in offered
    assert len(offered) <= cfg.clarify_max
    coverage = {c.entry.id: c.coverage for c in outcome.candidates}
    assert all(cfg.suggest_min <= coverage[i] < cfg.coverage_min for i in offered)
    assert offered == [c.entry.id for c in outcome.candidates if c.entry.id in offered]  # ranked order


@pytest.mark.parametrize("question", ["明日の天気は？", "ものづくり補助金の効果報告", "   "])
def test_nothing_is_offered_when_nothing_comes_near_or_the_subject_is_elsewhere(
    policy: Policy, question: str
) -> None:
    # Far from the domain, another subsidy named, or empty: the refusal stands alone.
    outcome = policy.decide(question)
    assert outcome.status == "no_match"
    assert outcome.suggestions == ()


def test_an_answer_or_a_question_back_offers_nothing_more(policy: Policy) -> None:
    assert policy.decide("申請マイページのIDがわからない").suggestions == ()


def test_offers_of_one_program_make_room_for_the_other_programs_answer(policy: Policy) -> None:
    """Program unknown: three 2020 questions would hide the 2023 answer to the same question."""
    question = "ツールやめたら補助金返すことになるの？けっこう前に入れたやつなんだけど"
    unknown = policy.decide(question)
    assert unknown.status == "no_match"
    assert {s.program for s in unknown.suggestions} == {"it2020", "it2023-multi"}
    assert len(unknown.suggestions) <= policy.config.clarify_max
    known = policy.decide(question, program="it2020")
    assert known.suggestions and {s.program for s in known.suggestions} == {"it2020"}


def test_the_other_programs_answer_is_found_beyond_the_first_candidates(policy: Policy) -> None:
    """The pairing is the knowledge base's (`topic`), not the ranking's: money words (補助金, 返還)
    push the 2023 refund and penalty entries above the 2023 answer to a cancellation, beyond the
    candidates ranked first, and the 2020 answer was shown alone."""
    outcome = policy.decide("半年で使うのやめたら補助金返還になる？")
    assert outcome.status == "answered"
    assert [e.id for e in outcome.answers] == ["it2020-cancel-within-year", "it2023-withdrawal-triggers"]
    assert "it2023-withdrawal-triggers" not in [c.entry.id for c in outcome.candidates]


@pytest.mark.parametrize(
    "question",
    [
        "どんな場合に辞退届がいる？",  # 質問6's wordings do not say 辞退届; its answer does
        "辞退した場合、受け取った補助金は全額返さなければなりませんか",  # full repayment is year one's only
        "辞退したら補助金返すの？",
    ],
)
def test_a_cancellation_without_its_duration_gets_both_spans_beside_the_other_program(
    policy: Policy, question: str
) -> None:
    """The 2020 FAQ answers by span (質問6, 1年未満: repaid in full; 質問7, 1年以上: judged case by
    case).  Without a duration, one span alone is half the rule, and to a fourth-year canceller the
    first year's 「全額返還」 alone is a wrong answer."""
    outcome = policy.decide(question)
    assert outcome.status == "answered"
    shown = [e.id for e in outcome.answers]
    assert {"it2020-cancel-within-year", "it2020-cancel-after-year"} <= set(shown), shown
    assert any(e.program == "it2023-multi" for e in outcome.answers), shown
