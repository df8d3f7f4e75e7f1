"""Japanese text analysis for matching: normalisation and concepts.

Applicants write the same word many ways (解約 / かいやく / ｶｲﾔｸ, ＩＤ / ID,
使わなくなった / 使用しなくなる).  A text is seen as a sequence of *concepts*, one per
content word or domain phrase, and each concept carries every form it may take:
  * `terms`: the Sudachi normalized form and, when a domain phrase of synonyms.toml
    covers the word, the phrase's canonical (GビズID, Gビズ and gBizID are one concept);
  * `parts`: the fine-split (A) parts of a compound (年間平均労働時間 → 年間, 平均, 労働, 時間),
    which count only partly;
  * `reading`: the katakana reading, used by the matcher only for words the knowledge
    base does not know (かいやく or the typo 解役 still find 解約).
Counting a concept once, by its best form, keeps a word and its synonym, parts and
reading from adding up to four votes for one idea.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any, NamedTuple

from sudachipy import Dictionary, SplitMode

from faq.models import SynonymGroup

# Longer input is cut before analysis: a question never needs more, and the
# cap bounds the time a pasted document can cost.
MAX_CHARS = 512
# Tokens remembered per analyzer (a dictionary word each): enough for any knowledge base's vocabulary
# and its questions; past it the cache starts again.
TOKEN_CACHE_MAX = 50_000
READING_MARK = "~"  # kept for callers that filtered reading terms; analysis no longer emits any

_CONTENT_POS = {"名詞", "動詞", "形容詞", "形状詞", "副詞", "接頭辞", "接尾辞", "代名詞", "感動詞"}
# Generic words that carry no topic in any Japanese FAQ (normalized forms).
STOPWORDS = frozenset(
    """
    為る する ある 有る 在る 居る いる 成る なる 出来る できる 行う 言う 思う 貰う もらう
    下さる くださる 頂く いただく 戴く 呉れる くれる 置く 見る 来る 行く 良い 好い いい
    教える 分かる 知る 御 お ご 事 こと 物 もの 為 ため 様 よう 時 とき 方 ほう 場合
    際 等 など 此れ これ 其れ それ 彼れ あれ 此の この 其の その どう どの どれ ちょっと
    少し 今 とても 本当 すごい 凄い 大丈夫 今回 今度 一応 です ます 中 後 前 上 下 的
    さん 様 氏 達 ら 方々 くらい ぐらい 頃 ころ じゃ 的 感じ 形 訳 わけ 筈 はず 所
    ところ 人 者 たい ない ぬ ず
    """.split()  # noqa: SIM905 - a word list reads better as text
)

# The polite forms of STOPWORDS' generic verbs (おります, ございます, いたします, なさる, 参る, 申す,
# 存じる), the auxiliaries of aspect (〜てしまう, 〜ておく) and the nouns of manner (やり方, 仕方):
# how a question is said, not what it is about, in any Japanese FAQ.  They still rank, since a
# wording may say them too, but they do not count towards coverage: a polite question must not need
# an entry that says おります to be answered.  (Dropping them outright scored the same on dev and
# did less well on the older sets: BENCHMARKS.md, the twenty-third round.)
NOT_COUNTED = frozenset(
    """
    おる 御座る 致す 為さる 参る 申す 存じる 仕舞う おく 遣り方 仕方
    """.split()  # noqa: SIM905 - a word list reads better as text
)

# 「AじゃなくてB」「AではなくB」「AでなくB」: the asker names A to say the question is *not* about
# it.  The copula (じゃ, で, optionally は) and 無い's なく mark it; B must follow.  A is the phrase
# right before the copula: content words, back to a particle, punctuation or the start, through
# 「の」 only when what follows it is a formal head (マイページの方じゃなくて).
_NEG_COPULA = frozenset({"じゃ", "で"})
_NEG_FORMAL_HEADS = frozenset({"方", "ほう", "側", "がわ", "やつ", "奴"})
_NEG_PHRASE_POS = frozenset({"名詞", "代名詞", "接頭辞", "接尾辞", "動詞", "形容詞", "形状詞", "助動詞"})
# 「人件費ではなく役員報酬だけ書いてもいい？」 asks whether B may stand in for A: the question is
# about A's rule, so A stays.  Asking leave (〜てもいい, 〜でも大丈夫, 〜て構わない) in the rest of
# the sentence marks it.
_LEAVE = re.compile(r"[てで]も?(?:いい|よい|良い|よろし|大丈夫|構わ|かまわ|構い|かまい|問題な|ok)")
_SENTENCE_END = frozenset({"。", "?", "!", "？", "！"})

_SPACE = re.compile(r"\s+")
_TRANSLATE = str.maketrans({"〜": "~", "～": "~", "−": "-", "‐": "-", "―": "-", "－": "-", "ｰ": "ー"})


def normalize(text: str) -> str:
    """NFKC, lower case, control characters dropped, spaces folded, length capped."""
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE).lower()
    if not text.isprintable():  # printable text has no control or format characters: nothing to drop
        text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return _SPACE.sub(" ", text).strip()[:MAX_CHARS]


def _is_symbol(surface: str) -> bool:
    return all(unicodedata.category(ch)[0] in "PZS" and ch != "ー" for ch in surface)


_KATAKANA = str.maketrans({chr(c): chr(c + 0x60) for c in range(ord("ぁ"), ord("ゖ") + 1)})


def katakana(text: str) -> str:
    return text.translate(_KATAKANA)


# Question words, bare numbers and affixes say what kind of answer is wanted, not what it is about:
# they rank (いつ, 1年) but do not count towards coverage.
INTERROGATIVES = frozenset(
    """
    いつ 何 なに なん 何故 なぜ どこ 何処 どちら どっち 誰 だれ 幾ら いくら 幾つ いくつ 如何 いかが
    何回 何年 何時 何日 何月 何件 何人 何処 どれ どの どう どんな どのよう どれくらい どのくらい
    """.split()  # noqa: SIM905 - a word list reads better as text
)


# A negated predicate says what goes wrong: 「ログインできない」 is a failed login, 「IDがわからない」 a
# forgotten ID, 「メールが届かない」 a mail that does not come, where 「どんなメールが届く」 asks for the
# list.  Such questions share their nouns with a neighbouring entry; the predicate and its negation
# tell them apart.  The negation (ない, ず, ん) is read back to its verb or adjective through the
# auxiliaries between them (ませ, られ, て + いる / しまう); a サ変 noun stands for its する
# (「提出しない」 is 提出 negated).  The concept's key is the predicate's dictionary form with this
# mark, a form no text has, so it is never read as a typo or a reading of a word.
PREDICATE_MARK = "¬"
_NEGATION_NORMS = frozenset({"ない", "ず", "ぬ"})
_TE = frozenset({"て", "で"})
# Verbs that only add aspect after て (来ていない, 忘れてしまわない): the predicate is before them.
_TE_AUXILIARIES = frozenset({"居る", "いる", "仕舞う", "しまう", "置く", "有る", "来る", "行く"})


# A word for the asker's own company (弊社, うちの会社) stands for the party such questions are
# usually asked by, which a KB's synonyms may say (補助事業者).  The asker can say otherwise:
# 「弊社はITベンダーとして登録しています」, 「うちの会社は支援事業者側」.  When the word is the topic
# of an apposition (は / が, then a noun and だ, です, で, として, 側 or の立場) whose noun is a sibling
# of the word's party (it shares a compound part with it: IT導入支援事業者 and 補助事業者 are both
# 事業者), the word names that noun's party, which the question says itself, and adds nothing.
SELF_REFERENCES = frozenset({"自社", "当社", "弊社", "我が社", "小社", "うちの会社", "私共の会社"})
_TOPIC_PARTICLES = frozenset({"は", "が", "も"})
_APPOSITION_NOUNS = frozenset({"側", "立場"})


# The kind of answer a question asks for tells apart entries that share its nouns as well: 「どんな
# 場合に辞退届が要る？」 asks for the cases, 「辞退届はどうやって出す？」 for the way.  The words saying
# it are stop words or question words (場合, 時, どう), so they are read as a phrase: an
# interrogative determiner before a noun of circumstance, or いつ, asks for the case; どうやって,
# どのように, a verb's 〜方 (出し方) or 方法 asks for the way.  Keys with this mark, like the
# predicates', are no word of any text.
ASK_MARK = "?"
ASK_CASE = "場合" + ASK_MARK
ASK_WAY = "方法" + ASK_MARK
_ASK_DETERMINERS = frozenset({"どういう", "どんな", "どのような", "どの", "どう"})
_CASE_NOUNS = frozenset({"場合", "時", "ケース", "状況", "条件"})
_WAY_NOUNS = frozenset({"方法", "やり方", "仕方", "手順"})
# What a うち of "among" follows (`_speakers_or_while`): 「3つのうち」, 「導入したうち」.
_AMONG_AFTER = frozenset({"の", "た"})


@dataclass(frozen=True)
class Concept:
    """One idea of a text: its forms, counted once.  `countable` is False for question words and numbers."""

    key: str
    terms: tuple[str, ...]
    parts: tuple[str, ...]
    reading: str
    countable: bool = True
    # Nouns (and domain phrases, and words no dictionary knows) name what a question is about;
    # verbs, adverbs and time or quantity nouns (今日, 全部, 途中) say how.  A word the knowledge
    # base does not know only counts against coverage when it is salient.
    salient: bool = True
    # What the text says of its nouns: a negated predicate (PREDICATE_MARK) or the kind of answer
    # it asks for (ASK_MARK).  Not a word of the text, neither ranked nor counted for coverage; it
    # tells apart entries that share the question's words (faq/policy.py).
    predicate: bool = False
    # A name: a proper noun of three characters or more not written in hiragana (e-Tax,
    # マイナポータル's マイナ, 弥生会計), or a Latin-letter word of four or more the dictionary does
    # not know (freee).  A name the KB does not know names a thing its documents do not describe
    # (faq/policy.py).  Shorter ones are left out: a kanji typo or a kana stretch the dictionary
    # reads as a short proper noun (栄業's 栄, すぎた), and abbreviations (TEL, HP, OK).
    name: bool = False


@dataclass(frozen=True)
class Analysis:
    """A text as the matcher sees it: its concepts in order, and its normalised form."""

    normalized: str
    concepts: tuple[Concept, ...]
    # Runs: the reading of a stretch of text, and where each concept lies in it (start, end, key,
    # surface), so that kana-written or mis-typed words can be read against the KB's words.
    runs: tuple[tuple[str, tuple[tuple[int, int, str, str], ...]], ...] = ()
    # Compounds: each two nouns said as one word, with nothing between them (実績報告's 実績 and
    # 報告).  The dictionary splits a compound it does not list into its nouns; the matcher tells
    # a text that says the compound from one that says its two nouns apart (実績値 ... 効果報告).
    compounds: tuple[tuple[str, str], ...] = ()
    # Objects: a word and the word it is the object of, said right after を (ITツールを解約:
    # ITツール, 解約): what the text does to what.
    objects: tuple[tuple[str, str], ...] = ()

    @property
    def terms(self) -> tuple[str, ...]:
        """Every full form of every concept (index side), parts included."""
        return tuple(t for c in self.concepts if not c.predicate for t in (*c.terms, *c.parts))

    @property
    def full_terms(self) -> tuple[str, ...]:
        """The full forms only: 申請マイページ, not its part 申請."""
        return tuple(t for c in self.concepts if not c.predicate for t in c.terms)

    @property
    def predicates(self) -> tuple[str, ...]:
        """What the text says of its nouns: its negated predicates (ログインできない's 出来る¬) and the
        kinds of answer it asks for (どんな場合's 場合?).  They are no word of it."""
        return tuple(c.key for c in self.concepts if c.predicate)


@dataclass(frozen=True)
class _Token:
    surface: str
    norm: str
    reading: str
    pos: str
    pos2: str
    pos3: str
    oov: bool
    symbol: bool = False
    kana: bool = False


@lru_cache(maxsize=1)
def _dictionary() -> Dictionary:
    return Dictionary(dict="core")


_KANA = re.compile(r"^[ぁ-ゖァ-ヺー]+$")


class Analyzer:
    """Turns text into concepts.  One instance per knowledge base.

    One instance is shared by every thread of a process (the bot's workers, the
    console's request threads), but a SudachiPy tokenizer refuses concurrent use.
    Each thread therefore gets its own tokenizer, made on its first call; the
    dictionary behind them is loaded once and shared read-only.
    """

    def __init__(self, synonyms: Sequence[SynonymGroup] = (), ignore: Sequence[str] = ()) -> None:
        dictionary = _dictionary()
        phrases = sorted({normalize(p) for p in ignore if normalize(p)}, key=len, reverse=True)
        self._ignore = re.compile("|".join(map(re.escape, phrases))) if phrases else None
        self._dictionary = dictionary
        self._local = threading.local()
        self._synonyms: dict[tuple[str, ...], str] = {}
        # Readings of synonym terms (じゅうぎょういん → 従業員数), for words the KB does not know.
        self.synonym_readings: dict[str, str] = {}
        for group in synonyms:
            canonical = self._canonical_term(group.canonical)
            for term in (group.canonical, *group.terms):
                tokens = [t for t in self._tokens(normalize(term), self._tok_c) if not _is_symbol(t.surface)]
                key = tuple(t.norm for t in tokens)
                if key:
                    self._synonyms.setdefault(key, canonical)
                reading = "".join(t.reading for t in tokens)
                if len(reading) >= 2:
                    self.synonym_readings.setdefault(reading, canonical)
        # The longest phrase starting with each word: most words start none, and are passed at once.
        self._syn_first: dict[str, int] = {}
        for key in self._synonyms:
            self._syn_first[key[0]] = max(self._syn_first.get(key[0], 0), len(key))
        # Tokens and compound parts by dictionary word and surface.  Shared by the threads: a value
        # never changes once made, and a lost race only makes it twice.
        self._token_cache: dict[tuple[int, str, int], tuple[_Token, tuple[str, ...]]] = {}

    @property
    def _tok_c(self) -> Any:
        """This thread's tokenizer (split mode C)."""
        tokenizer = getattr(self._local, "tokenizer", None)
        if tokenizer is None:
            tokenizer = self._local.tokenizer = self._dictionary.tokenizer(SplitMode.C)
        return tokenizer

    def _canonical_term(self, word: str) -> str:
        norms = [t.norm for t in self._tokens(normalize(word), self._tok_c) if not _is_symbol(t.surface)]
        return "".join(norms) if norms else word

    @staticmethod
    def _token(m: Any) -> _Token:
        surface = m.surface()
        oov = bool(m.is_oov())
        reading = surface if oov else m.reading_form()
        pos = m.part_of_speech()
        return _Token(
            surface,
            m.normalized_form(),
            katakana(reading),
            pos[0],
            pos[1],
            pos[2],
            oov,
            _is_symbol(surface),
            bool(_KANA.match(surface)),
        )

    def _cached(self, m: Any) -> tuple[_Token, tuple[str, ...]]:
        """The token of a morpheme and, for a content word of three characters or more, its
        compound parts (年間平均労働時間 → 年間, 平均, 労働, 時間), made once per dictionary word.

        A dictionary word's form, reading and part of speech follow from its id; an unknown word's
        from its surface and part of speech.  The cache is bounded: it is cleared when it grows large.
        """
        key = (m.word_id(), m.surface(), m.part_of_speech_id())
        hit = self._token_cache.get(key)
        if hit is not None:
            return hit
        tok = self._token(m)
        parts: tuple[str, ...] = ()
        if self._is_content(tok) and len(tok.surface) >= 3:
            fine = [self._token(p) for p in m.split(SplitMode.A)]
            found = tuple(dict.fromkeys(p.norm for p in fine if self._is_content(p)))
            parts = found if len(found) > 1 else ()
        if len(self._token_cache) >= TOKEN_CACHE_MAX:
            self._token_cache.clear()
        self._token_cache[key] = (tok, parts)
        return tok, parts

    def _tokens(self, text: str, tokenizer: Any) -> list[_Token]:
        return [self._token(m) for m in tokenizer.tokenize(text)] if text else []

    def analyze(self, text: str, *, negations: bool = False) -> Analysis:
        """The concepts of `text`.  With `negations` (a user's question, not a KB wording), a phrase
        the asker says the question is not about (「ポータルじゃなくてマイページ」's ポータル) adds no
        concept: it names the entry the user is *not* asking for.  A KB wording keeps it, since
        there the contrast is what the entry answers (「経常利益じゃなくて営業利益？」).
        """
        norm = normalize(text)
        if self._ignore is not None:
            norm = self._ignore.sub(" ", norm)
        morphemes = list(self._tok_c.tokenize(norm)) if norm else []
        cached = [self._cached(m) for m in morphemes]
        tokens = [tok for tok, _ in cached]
        negated = _negated(tokens) if negations else frozenset()
        concepts: list[Concept] = []
        runs: list[tuple[str, tuple[tuple[int, int, str, str], ...]]] = []
        run: list[str] = []
        # Where each word concept lies in the tokens: what `_compounds` and `_objects` pair.
        placed: list[_Placed] = []
        spans: list[tuple[int, int, str, str]] = []

        def close_run() -> None:
            reading = "".join(run)
            if reading and _KANA.match(reading):
                runs.append((reading, tuple(spans)))
            run.clear()
            spans.clear()

        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok.symbol or not _KANA.match(tok.reading):
                close_run()  # punctuation, or letters and digits without a reading
            if tok.symbol:
                i += 1
                continue
            if i in negated:
                close_run()  # nor is its reading read for KB words
                i += 1
                continue
            start = sum(map(len, run))
            size, canonical = self._synonym_at(tokens, i)
            if (
                canonical is not None
                and negations
                and self._speaker_said_otherwise(tokens, i, size, canonical)
            ):
                close_run()
                i += size
                continue
            if canonical is not None:
                span = tokens[i : i + size]
                inner = tuple(
                    dict.fromkeys(t.norm for t in span if self._is_content(t) and t.norm != canonical)
                )
                concepts.append(
                    Concept(canonical, (canonical,), inner if len(inner) > 1 else (), _reading(span))
                )
                placed.append(_Placed(i, i + size, canonical, span[-1].pos == "名詞"))
                if all(_KANA.match(t.reading) and not t.symbol for t in span):
                    run.extend(t.reading for t in span)
                    spans.append(
                        (start, start + len(_reading(span)), canonical, "".join(t.surface for t in span))
                    )
                else:
                    close_run()
                i += size
                continue
            run.append(tok.reading)
            if self._is_content(tok) and not _speakers_or_while(tokens, i):
                parts = cached[i][1]
                countable = (
                    tok.pos2 != "数詞"
                    and tok.pos not in ("接尾辞", "接頭辞")  # 6年目's 目, 1社's 社: counters and affixes
                    and tok.norm not in INTERROGATIVES
                    and tok.surface not in INTERROGATIVES
                    and tok.norm not in NOT_COUNTED
                )
                salient = tok.oov or (tok.pos == "名詞" and tok.pos3 != "副詞可能")
                concepts.append(
                    Concept(tok.norm, (tok.norm,), parts, tok.reading, countable, salient, name=_is_name(tok))
                )
                # A counter after a number (5年以内's 年) starts no compound: it says how many.
                counter = i > 0 and tokens[i - 1].pos2 == "数詞"
                placed.append(
                    _Placed(i, i + 1, tok.norm, countable and tok.pos == "名詞" and not counter, parts)
                )
                spans.append((start, start + len(tok.reading), tok.norm, tok.surface))
            elif tok.pos == "助動詞" and tok.norm in _NEGATION_NORMS:
                key = _negated_predicate(tokens, i)
                if key is not None:
                    concepts.append(
                        Concept(key, (key,), (), "", countable=False, salient=False, predicate=True)
                    )
            i += 1
        close_run()
        concepts.extend(
            Concept(key, (key,), (), "", countable=False, salient=False, predicate=True)
            for key in _asked_kinds(tokens)
        )
        return Analysis(norm, _merge(concepts), tuple(runs), _compounds(placed), _objects(placed, tokens))

    def _synonym_at(self, tokens: Sequence[_Token], i: int) -> tuple[int, str | None]:
        longest = self._syn_first.get(tokens[i].norm, 0)
        if not longest:
            return 1, None
        norms: list[str] = []
        for t in tokens[i : i + longest]:
            if t.symbol:
                break  # a phrase never spans punctuation
            norms.append(t.norm)
        for size in range(len(norms), 0, -1):
            canonical = self._synonyms.get(tuple(norms[:size]))
            if canonical is not None:
                return size, canonical
        return 1, None

    def _speaker_said_otherwise(self, tokens: Sequence[_Token], at: int, size: int, canonical: str) -> bool:
        """Whether the self-reference at `at` is the topic of an apposition naming a sibling party
        (SELF_REFERENCES): 「弊社はITベンダーとして」 is no 補助事業者."""
        if "".join(t.norm for t in tokens[at : at + size]) not in SELF_REFERENCES:
            return False
        j = at + size
        if j >= len(tokens) or tokens[j].surface not in _TOPIC_PARTICLES:
            return False
        start = j + 1
        for k in range(start + 1, len(tokens)):
            tok = tokens[k]
            if tok.symbol:
                return False
            end = k
            if tok.norm in _APPOSITION_NOUNS:
                if tokens[k - 1].surface == "の":
                    end = k - 1
            elif not (
                tok.norm in ("だ", "です")
                or tok.surface == "で"
                or (tok.surface == "と" and k + 1 < len(tokens) and tokens[k + 1].norm == "為る")
            ):
                continue
            return any(
                self._siblings(party, canonical) for party in self._words_ending_at(tokens, start, end)
            )
        return False

    def _words_ending_at(self, tokens: Sequence[_Token], start: int, end: int) -> list[str]:
        """The synonym canonicals and the content word that end right before token `end`."""
        out = []
        for s in range(start, end):
            size, canonical = self._synonym_at(tokens, s)
            if canonical is not None and s + size == end:
                out.append(canonical)
        if end > start and self._is_content(tokens[end - 1]):
            out.append(tokens[end - 1].norm)
        return out

    def _siblings(self, word: str, other: str) -> bool:
        """Two different words that share a compound part (補助事業者 and IT導入支援事業者)."""
        return word != other and bool(self._parts_of(word) & self._parts_of(other))

    def _parts_of(self, word: str) -> frozenset[str]:
        """A word's compound parts (the token cache's), or the word itself where it has none."""
        found: set[str] = set()
        for m in self._tok_c.tokenize(word):
            tok, parts = self._cached(m)
            if self._is_content(tok):
                found.update(parts or (tok.norm,))
        return frozenset(found)

    @staticmethod
    def _is_content(tok: _Token) -> bool:
        return tok.pos in _CONTENT_POS and tok.norm not in STOPWORDS and len(tok.norm) > 0


def _negated(tokens: Sequence[_Token]) -> frozenset[int]:
    """Indices of the tokens of every phrase the asker negates in favour of what follows it."""
    out: set[int] = set()
    for j, tok in enumerate(tokens):
        if tok.surface not in _NEG_COPULA:
            continue
        k = j + 1
        if k < len(tokens) and tokens[k].surface == "は":
            k += 1
        if k >= len(tokens) or tokens[k].surface != "なく" or tokens[k].norm != "無い":
            continue
        rest: list[_Token] = []
        for t in tokens[k + 1 :]:
            if t.surface in _SENTENCE_END:
                break
            rest.append(t)
        if not any(Analyzer._is_content(t) for t in rest):
            continue  # 「…ではなく。」 with nothing after it negates nothing in favour of anything
        if _LEAVE.search("".join(t.surface for t in rest)):
            continue  # 「AではなくBでもいい？」: a question about A
        i = j - 1
        while i >= 0 and tokens[i].pos2 == "準体助詞":  # 届かないんじゃなくて
            i -= 1
        phrase: list[int] = []
        while i >= 0:
            t = tokens[i]
            if t.symbol:
                break
            if t.pos in _NEG_PHRASE_POS:
                phrase.append(i)
            elif t.surface == "の" and phrase and all(tokens[p].norm in _NEG_FORMAL_HEADS for p in phrase):
                pass  # マイページの方じゃなくて: the phrase goes on through 「の」 to what the 方 is of
            else:
                break
            i -= 1
        out.update(phrase)
        out.update(range(j, k + 1))  # the marker itself: 無い's なく is not what is asked about
    return frozenset(out)


def _negated_predicate(tokens: Sequence[_Token], at: int) -> str | None:
    """The key of the predicate the negation at `at` negates, or None when it negates no verb or
    adjective (「IDじゃない」 negates a noun: what is asked about is said by the noun itself)."""
    j = at - 1
    while j >= 0 and _auxiliary(tokens, j):
        j -= 1
    if j < 0 or tokens[j].pos not in ("動詞", "形容詞"):
        return None
    head = tokens[j]
    if head.norm == "為る":  # 提出しない: the サ変 noun is the predicate, する says nothing
        if j == 0 or tokens[j - 1].pos != "名詞":
            return None
        head = tokens[j - 1]
    return head.norm + PREDICATE_MARK


def _asked_kinds(tokens: Sequence[_Token]) -> list[str]:
    """The kinds of answer the text asks for (ASK_CASE, ASK_WAY), in order, each once."""
    found: list[str] = []
    for j, t in enumerate(tokens):
        after = [u.norm for u in tokens[j + 1 : j + 4] if not u.symbol]
        if t.norm == "いつ" or (
            t.norm in _ASK_DETERMINERS
            and any(n in _CASE_NOUNS for n in after[: 3 if after[:2] == ["言う", "た"] else 1])
        ):
            kind = ASK_CASE
        elif (
            t.norm in _WAY_NOUNS
            or (t.norm == "どう" and after[:1] == ["遣る"])
            or (t.norm == "どの" and after[:1] == ["よう"])
            or (t.norm == "方" and t.pos == "接尾辞" and j > 0 and tokens[j - 1].pos == "動詞")
            # 出し方, 書き方: a verb's stem (ending in kana) and 方, not 両方 or 先方
            or (t.pos == "名詞" and len(t.norm) > 1 and t.norm.endswith("方") and "ぁ" <= t.norm[-2] <= "ゖ")
        ):
            kind = ASK_WAY
        else:
            continue
        if kind not in found:
            found.append(kind)
    return found


def _speakers_or_while(tokens: Sequence[_Token], at: int) -> bool:
    """Whether the token at `at` is a うち that is no word of the subject.

    うち means "among" only right after what it is among: 「3つのうち」, 「そのうち」, 「導入したうち」.
    Elsewhere it is the asker's own company (「うちの会社で入れた」, 「うちは2020です」) or "while"
    (「1年経たないうちに」).  Read as a word, that うち met the partial-cancellation wordings
    (「2つ入れたツールのうち1つだけ」) and pulled every cancellation said by a small business to
    them, and it gave a KB wording that happens to say 「うちは…」 a word in common with every
    question that does.  The dictionary gives one form for all three, so it is told by what
    precedes it: の, a past た or a determiner (その, この).
    """
    if tokens[at].norm != "うち":
        return False
    if at == 0:
        return True
    before = tokens[at - 1]
    return not (before.norm in _AMONG_AFTER or before.pos == "連体詞")


def _auxiliary(tokens: Sequence[_Token], j: int) -> bool:
    """Whether token `j` only inflects the predicate before it: an auxiliary (ませ, られ), the て
    that joins an aspect verb, or that verb after it (届いていない's い)."""
    t = tokens[j]
    if t.pos == "助動詞" or (t.pos == "助詞" and t.norm in _TE):
        return True
    return t.pos == "動詞" and t.norm in _TE_AUXILIARIES and j > 0 and tokens[j - 1].norm in _TE


def _reading(tokens: Sequence[_Token]) -> str:
    return "".join(t.reading for t in tokens)


_HIRAGANA = re.compile(r"^[ぁ-ゖー]+$")
_LATIN_WORD = re.compile(r"^[a-z][a-z-]+$")


def _is_name(tok: _Token) -> bool:
    """Whether a noun names one thing (`Concept.name`): a proper noun of three characters or
    more not written in hiragana, or an unknown Latin-letter word of four or more."""
    if tok.pos != "名詞":
        return False
    if tok.pos2 == "固有名詞":
        return len(tok.surface) >= 3 and not _HIRAGANA.match(tok.surface)
    return tok.oov and len(tok.surface) >= 4 and bool(_LATIN_WORD.match(tok.surface))


class _Placed(NamedTuple):
    """A word concept where it lies in the tokens (`start` to `end`), with its key, whether it can
    make a compound (a countable noun, not a counter after a number) and its compound parts."""

    start: int
    end: int
    key: str
    noun: bool
    parts: tuple[str, ...] = ()


def _compounds(placed: Sequence[_Placed]) -> tuple[tuple[str, str], ...]:
    """Each two nouns that touch (one ends at the token where the next starts): 実績 + 報告.

    Where a word the dictionary lists is itself a compound, its touching part is paired too:
    交付申請内容 says 交付 + 申請内容 and 交付 + 申請.
    """
    out: list[tuple[str, str]] = []
    for first, second in pairwise(placed):
        if not (first.noun and second.noun and first.end == second.start):
            continue
        pairs = [(first.key, second.key)]
        if second.parts:
            pairs.append((first.key, second.parts[0]))
        if first.parts:
            pairs.append((first.parts[-1], second.key))
        out.extend(p for p in pairs if p[0] != p[1])
    return tuple(dict.fromkeys(out))


def _objects(placed: Sequence[_Placed], tokens: Sequence[_Token]) -> tuple[tuple[str, str], ...]:
    """Each word said as the object of the next, with only を between them: ITツール + 解約."""
    return tuple(
        dict.fromkeys(
            (word.key, verb.key)
            for word, verb in pairwise(placed)
            if verb.start == word.end + 1
            and tokens[word.end].surface == "を"
            and tokens[word.end].pos == "助詞"
        )
    )


def _merge(concepts: Sequence[Concept]) -> tuple[Concept, ...]:
    """One concept per key: a word said twice is still one idea."""
    seen: dict[str, Concept] = {}
    for c in concepts:
        seen.setdefault(c.key, c)
    return tuple(seen.values())
