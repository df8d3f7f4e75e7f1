"""How the matcher reads what people type: kana typed in one go, signs with a reading, long questions.

Each test names a mechanism that carries over to any Japanese FAQ, checked on the shipped
knowledge base's vocabulary.
"""

from __future__ import annotations

from faq import Policy
from faq.text import Analyzer


def _terms(policy: Policy, text: str) -> set[str]:
    prepared = policy.matcher.prepare(policy.matcher.analyzer.analyze(text))
    return {t for full, _, _, _ in prepared.concepts for t in full}


def test_kana_typed_in_one_go_is_read_across_particles_and_endings(policy: Policy) -> None:
    # りまいんど splits into pieces that are no words at all; the KB's リマインド is read across them.
    assert "リマインド" in _terms(policy, "りまいんどめーる きた")
    # き + じゅん (き is no content word) is 基準.
    assert "基準" in _terms(policy, "ろくぱーせんと きじゅん")


def test_percent_sign_reads_as_written_in_kana(policy: Policy) -> None:
    assert "パーセント" in _terms(policy, "ろくぱーせんと")
    assert "パーセント" in _terms(policy, "6%基準")


def test_a_short_hiragana_piece_is_no_subject_but_katakana_is() -> None:
    analyzer = Analyzer()
    piece = {c.key: c.salient for c in analyzer.analyze("ていしゅつずみ").concepts}
    assert piece.get("すみ") is False  # what 提出済み typed in kana leaves behind
    meant = {c.key: c.salient for c in analyzer.analyze("コツを教えて").concepts}
    assert meant.get("こつ") is True


def test_kana_typed_questions_find_their_entry(policy: Policy) -> None:
    outcome = policy.decide("ろくぱーせんと きじゅん")
    assert outcome.status == "answered" and outcome.entry is not None
    assert outcome.entry.id == "it2023-threshold-6pct"


def test_a_long_question_is_weighed_as_at_most_three_unknown_words(policy: Policy) -> None:
    # The story around the subject (経理担当が休みで…) does not dilute what the entry covers.
    story = (
        "経理担当が休みで私が代わりに効果報告を入れているんですが、人件費の欄に何を入れればいいのか"
        "分かりません。決算書には給与手当とか法定福利費とか色々あって…"
    )
    outcome = policy.decide(story)
    assert outcome.status == "answered" and outcome.entry is not None
    assert outcome.entry.id == "it2023-input-labor-cost"
    # A short question is weighed whole: one covered word beside an unknown subject is not enough.
    assert policy.decide("迷惑メールの設定とゲームのログインボーナス").status == "no_match"


def test_a_long_question_is_told_apart_from_close_entries_by_the_lead_only(policy: Policy) -> None:
    # 8ヶ月 is met by one wording of one cancellation entry and 経つ by another: the entries stay
    # too close to tell apart, and the bot asks rather than answer with the wrong timing rule.
    story = (
        "先月からうちで使っていた会計ソフトなんですが、社長がやめると言い出して、まだ導入して8ヶ月"
        "くらいしか経ってないんです。2020の補助金で入れたものなんですけど、解約したらどうなりますか。"
    )
    assert policy.matcher.is_long(policy.matcher.prepare(policy.matcher.analyzer.analyze(story)))
    assert policy.decide(story).status in ("clarify", "no_match")


def test_a_word_weighs_by_its_rarity_as_a_word_not_as_a_piece_of_compounds(policy: Policy) -> None:
    # 申請 and 報告 are pieces of 申請マイページ and 効果報告 in most entries, but few entries use
    # them as words: in coverage they weigh as the rare words they are.
    matcher = policy.matcher
    for word in ("申請", "報告"):
        assert matcher.known(word)
        assert matcher._weight((word,)) > matcher._idf[word]
    # A word many entries use as a word (効果報告) keeps its low weight.
    assert matcher._weight(("効果報告",)) == matcher._idf["効果報告"]


def test_a_word_of_one_answer_says_nothing_of_the_program(policy: Policy) -> None:
    matcher = policy.matcher

    def own(question: str, entry_id: str) -> tuple[str, ...]:
        prepared = matcher.prepare(matcher.analyzer.analyze(question))
        return matcher.one_program_words(prepared, matcher.position[entry_id])

    # 扱い is one 2023 answer's phrasing (the 2020 document says みなし): both programs' answers show.
    assert "扱い" not in own("一部だけ解約したら辞退扱い？", "it2023-withdrawal-partial")
    outcome = policy.decide("ツールを一部だけ解約したら辞退扱い？")
    assert {e.program for e in outcome.answers} == {"it2020", "it2023-multi"}
    # ナビダイヤル is a word of the 2020 document, used by more than one of its answers.
    assert "ナビダイヤル" in own("ナビダイヤルの番号", "it2020-contact")


def test_close_entries_are_told_apart_by_what_one_says_that_the_question_does_not(policy: Policy) -> None:
    from faq.policy import PolicyConfig

    matcher = policy.matcher
    question = "マイページにログインできない"
    prepared = matcher.prepare(matcher.analyzer.analyze(question))
    # The forgotten-ID entry typically speaks of 失念 and ログインID, which the question does not.
    login, forgotten = (matcher.position[i] for i in ("it2020-login-failed", "it2020-mypage-id-forgotten"))
    assert matcher.unsaid(prepared, forgotten) > matcher.unsaid(prepared, login)
    outcome = policy.decide(question)
    assert outcome.status == "answered" and outcome.entry is not None
    assert outcome.entry.id == "it2020-login-failed"
    # Without the unsaid share the two are too close on score, and the bot asks.
    config = PolicyConfig.load().model_copy(update={"unsaid_weight": 0.0})
    plain = Policy(policy.kb, matcher=matcher, config=config)
    assert plain.decide(question).status == "clarify"


def test_a_part_of_an_unknown_compound_is_no_typo_fix(policy: Policy) -> None:
    # 来年度 holds 年度 and 支援策 holds 支援: they are compounds' parts (counted partly), not typos
    # of those words, which would let them count as if the question had said them.
    assert "年度" not in _terms(policy, "来年度")
    assert "支援" not in _terms(policy, "支援策")
    # A typo that is not a part of the word is still fixed.
    assert "辞退届け" in _terms(policy, "辞体届")


def test_an_entry_meeting_only_verbs_and_time_words_covers_nothing(policy: Policy) -> None:
    # 「今後も続きますか」 asks about the subsidy itself: 続く in an entry's wording says nothing of it.
    outcome = policy.decide("IT導入補助金は今後も続きますか")
    assert outcome.status == "no_match"
    assert all(c.coverage == 0.0 for c in outcome.candidates)


def test_words_of_one_programs_document_say_which_programs_line_is_meant(policy: Policy) -> None:
    # 効果報告 is in the 2023 guide only (and in most of its answers): the 2023 line answers, alone.
    outcome = policy.decide("効果報告のことで電話したいんですが番号は")
    assert outcome.status == "answered"
    assert [e.id for e in outcome.answers] == ["it2023-contact"]


def test_a_word_a_small_document_lacks_by_its_size_alone_names_no_program(policy: Policy) -> None:
    # 勤怠 is in two 2023 entries and in none of the ten 2020 ones: that says nothing of the program.
    matcher = policy.matcher
    query = matcher.prepare(matcher.analyzer.analyze("勤怠システム"))
    assert matcher.program_of_words(query) is None
    query = matcher.prepare(matcher.analyzer.analyze("効果報告"))
    assert matcher.program_of_words(query) == "it2023-multi"


def test_a_short_word_is_not_read_across_a_sentences_grammar(policy: Policy) -> None:
    # が + い + ない reads イナイ, which is 以内: an ending, not a word typed in kana.
    assert "以内" not in _terms(policy, "じゅうぎょういんがいないときなにをいれる")
    # A longer word typed in kana that the dictionary splits into grammar is still read.
    assert "ステータス" in _terms(policy, "すてーたすが ふびていせいちゅう")


def test_kana_and_kanji_spellings_are_told_apart_from_close_entries_alike(policy: Policy) -> None:
    # 辞退届 typed in kana says 辞退 as the kanji does: both ask back between "when" and "how".
    kanji = policy.decide("辞退届 いつ出す")
    kana = policy.decide("じたいとどけ いつだす")
    assert kanji.status == kana.status
    assert [c.entry_id for c in kanji.choices] == [c.entry_id for c in kana.choices]
