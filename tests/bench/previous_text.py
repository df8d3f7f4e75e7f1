"""The previous text analysis (kept only for `make bench`, with tests/bench/previous_matcher.py).

Japanese text analysis for matching: normalisation, terms and readings.

Applicants write the same word many ways (解約 / かいやく / ｶｲﾔｸ, ＩＤ / ID,
使わなくなった / 使用しなくなる).  Each text is therefore seen three ways:
  * terms: Sudachi normalized forms of content words, in the coarse (C) split
    and the fine (A) split, so that 年間平均労働時間 also matches 労働時間 and 時間;
  * synonym canonicals: domain phrases matched on normalized-form sequences,
    so conjugation does not matter;
  * reading bigrams: character bigrams over the katakana reading, so that
    kana-written or mis-split words and homophone typos still overlap.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sudachipy import Dictionary, SplitMode

from faq.models import SynonymGroup

# Longer input is cut before analysis: a question never needs more, and the
# cap bounds the time a pasted document can cost.
MAX_CHARS = 512
READING_MARK = "~"  # prefix of reading terms, so they never collide with words

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
    ところ 人 者 たい
    """.split()  # noqa: SIM905 - a word list reads better as text
)

_SPACE = re.compile(r"\s+")
_TRANSLATE = str.maketrans({"〜": "~", "～": "~", "−": "-", "‐": "-", "―": "-", "－": "-", "ｰ": "ー"})


def normalize(text: str) -> str:
    """NFKC, lower case, control characters dropped, spaces folded, length capped."""
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE).lower()
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return _SPACE.sub(" ", text).strip()[:MAX_CHARS]


def _is_symbol(surface: str) -> bool:
    return all(unicodedata.category(ch)[0] in "PZS" and ch != "ー" for ch in surface)


_KATAKANA = str.maketrans({chr(c): chr(c + 0x60) for c in range(ord("ぁ"), ord("ゖ") + 1)})


def katakana(text: str) -> str:
    return text.translate(_KATAKANA)


@dataclass(frozen=True)
class Analysis:
    """A text as the matcher sees it.  `terms` may repeat (term frequency counts)."""

    normalized: str
    terms: tuple[str, ...]
    bigrams: tuple[str, ...]
    unknown: tuple[str, ...]


@dataclass(frozen=True)
class _Token:
    surface: str
    norm: str
    reading: str
    pos: str
    oov: bool


@lru_cache(maxsize=1)
def _dictionary() -> Dictionary:
    return Dictionary(dict="core")


class Analyzer:
    """Turns text into terms and reading bigrams.  One instance per knowledge base.

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
        for group in synonyms:
            canonical = self._canonical_term(group.canonical)
            for term in (group.canonical, *group.terms):
                key = tuple(
                    t.norm for t in self._tokens(normalize(term), self._tok_c) if not _is_symbol(t.surface)
                )
                if key:
                    self._synonyms.setdefault(key, canonical)
        self._max_syn = max((len(k) for k in self._synonyms), default=0)

    @property
    def _tok_c(self) -> Any:
        """This thread's tokenizer (split mode C)."""
        tokenizer = getattr(self._local, "tokenizer", None)
        if tokenizer is None:
            tokenizer = self._local.tokenizer = self._dictionary.tokenizer(SplitMode.C)
        return tokenizer

    def _canonical_term(self, word: str) -> str:
        norms = [t.norm for t in self._tokens(normalize(word), self._tok_c)]
        return "".join(norms) if norms else word

    @staticmethod
    def _token(m: Any) -> _Token:
        surface = m.surface()
        oov = bool(m.is_oov())
        reading = surface if oov else m.reading_form()
        return _Token(surface, m.normalized_form(), katakana(reading), m.part_of_speech()[0], oov)

    def _tokens(self, text: str, tokenizer: Any) -> list[_Token]:
        return [self._token(m) for m in tokenizer.tokenize(text)] if text else []

    def analyze(self, text: str) -> Analysis:
        norm = normalize(text)
        if self._ignore is not None:
            norm = self._ignore.sub(" ", norm)
        morphemes = [m for m in self._tok_c.tokenize(norm) if not _is_symbol(m.surface())] if norm else []
        tokens = [self._token(m) for m in morphemes]
        terms: list[str] = []
        unknown: list[str] = []
        for tok in tokens:
            if self._is_content(tok):
                terms.append(tok.norm)
                if tok.oov:
                    unknown.append(tok.norm)
        # Fine split: the parts of compounds (年間平均労働時間 → 労働, 時間), when they differ.
        for m, tok in zip(morphemes, tokens, strict=True):
            if len(tok.surface) < 3 or not self._is_content(tok):
                continue
            for part in map(self._token, m.split(SplitMode.A)):
                if self._is_content(part) and part.norm not in terms:
                    terms.append(part.norm)
        terms.extend(self._synonym_hits([t.norm for t in tokens]))
        # Whole-word readings: とうさん meets 倒産 and じたい meets 辞退 as words, not only as bigrams.
        terms.extend(READING_MARK + t.reading for t in tokens if self._is_content(t) and len(t.reading) >= 3)
        return Analysis(norm, tuple(terms), tuple(self._reading_bigrams(tokens)), tuple(unknown))

    @staticmethod
    def _is_content(tok: _Token) -> bool:
        return tok.pos in _CONTENT_POS and tok.norm not in STOPWORDS and len(tok.norm) > 0

    def _synonym_hits(self, norms: list[str]) -> Iterable[str]:
        i = 0
        while i < len(norms):
            for size in range(min(self._max_syn, len(norms) - i), 0, -1):
                canonical = self._synonyms.get(tuple(norms[i : i + size]))
                if canonical is not None:
                    yield canonical
                    i += size
                    break
            else:
                i += 1

    @staticmethod
    def _reading_bigrams(tokens: Sequence[_Token]) -> list[str]:
        reading = "".join(t.reading for t in tokens)
        if len(reading) == 1:
            return [reading]
        return [reading[i : i + 2] for i in range(len(reading) - 1)]
