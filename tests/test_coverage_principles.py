"""The principles coverage rests on, each shown on a question (they hold for any Japanese FAQ)."""

from __future__ import annotations

from faq import KnowledgeBase, Policy
from faq.matcher import EVERYDAY_SHARE, Matcher


def _concept(matcher: Matcher, text: str, key: str) -> tuple[float, bool]:
    prepared = matcher.prepare(matcher.analyzer.analyze(text))
    for (full, _, weight, countable), concept in zip(
        prepared.concepts, prepared.analysis.concepts, strict=False
    ):
        if concept.key == key or key in full:
            return weight, countable
    raise AssertionError(f"{key} not among the concepts of {text}")


def test_an_everyday_word_weighs_less_than_a_word_no_dictionary_or_kb_knows(policy: Policy) -> None:
    matcher = policy.matcher
    everyday, _ = _concept(matcher, "会社の根拠", "根拠")
    assert everyday <= matcher.unknown_idf * EVERYDAY_SHARE + 1e-9
    # A word the KB does not know and that names a specific thing keeps the full weight.
    specific, _ = _concept(matcher, "ネットフリックスの料金", "ネットフリックス")
    assert specific == matcher.unknown_idf


def test_a_noun_written_next_to_another_noun_is_part_of_a_name(policy: Policy) -> None:
    matcher = policy.matcher
    alone = matcher.analyzer.analyze("省エネについて").concepts[0]
    named = matcher.analyzer.analyze("省エネ補助金").concepts[0]
    assert alone.key == named.key == "省エネ"
    assert alone.common and not named.common


def test_a_question_whose_subject_no_entry_knows_is_not_found(policy: Policy) -> None:
    for question in ("トヨタの株価いくら", "営業利益を伸ばすコツを教えて"):
        assert policy.decide(question).status == "no_match", question


def test_only_the_last_sentence_names_the_subject(policy: Policy) -> None:
    matcher = policy.matcher
    prepared = matcher.prepare(
        matcher.analyzer.analyze("先週会議がありました。効果報告の入力途中で保存できますか")
    )
    assert prepared.unknown_subjects == ()


def test_a_number_keeps_its_unit(kb: KnowledgeBase, policy: Policy) -> None:
    keys = [c.key for c in policy.matcher.analyzer.analyze("6年目に入って解約").concepts]
    assert "6年" in keys and "6" not in keys
    year = next(c for c in policy.matcher.analyzer.analyze("6年目").concepts if c.key == "年")
    assert not year.countable  # the unit is part of the number, not a second idea
