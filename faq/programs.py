"""Which program a text names: in a question, or as the reply to "which program?".

The two programs this bot covers have different rules and different phone lines, so a
program is only taken from words that name it unambiguously (the cues in
`data/catalog.toml`).  The same words mean different things in the two situations:

* In a question, 「2023年4月に解約した」 is a date, not a program; 「2023」 alone is not
  複数社連携, since most 2023 recipients are in other frames; 「令和元年度補正」 alone could
  be IT導入補助金2020 or 2021.  Only what leaves no doubt counts.
* As the reply to a choice the bot has just offered, 「2023」 or 「2020です」 picks the offered
  program, 「両方」 picks both, 「わからない」 asks how to tell, and the name of a frame the bot
  does not cover (「通常枠」) says the user is elsewhere.

Pure functions over the loaded knowledge base; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from faq.loader import KnowledgeBase
from faq.models import Contact, OtherProgram
from faq.text import normalize

# A bare year followed by 年 (but not 年度), or by a date separator and a digit, is a date.
_DATE_TAIL = re.compile(r"\s*(?:年(?!度)|[/.\-]\s*\d)")
# A year said with the subsidy's name, before it (「2022年度のIT導入補助金」, 「2020年のIT補助金」) or
# after it (「IT導入補助金（2021年度）」), names the program as 「IT導入補助金2022」 does.  A year
# followed by a month or a date separator (「2023年5月」, 「2023/5」), or joined by another particle
# (「2022年にIT導入補助金で」), is a date and is left alone.  「2022年度分のIT補助金」 says the same
# with 分 (the year's share): it names the program too.
_SUBSIDY = r"(?:it導入補助金|it補助金)"
_YEAR_OF = r"(?:年度|年(?!\s*\d))?分?"
_YEAR_BEFORE = re.compile(rf"(?<!\d)(20\d\d)\s*{_YEAR_OF}\s*の?\s*{_SUBSIDY}(?!\s*\d)")
_YEAR_AFTER = re.compile(
    rf"{_SUBSIDY}\s*[(\[]?\s*(20\d\d)(?!\d)(?!\s*(?:[/.\-]|年)\s*\d)\s*{_YEAR_OF}\s*[)\]]?"
)
# Words a short reply may carry around the program name: 「2020です」, 「たぶん2023の方かな」.
_FILLER = re.compile(
    r"(?:でした|だと思います|だと思う|と思います|思います|かな|かも|たぶん|多分|おそらく|"
    r"の方|のほう|ほう|方|です|だ|よ|ね|の|で|は|が|を|it導入補助金|it補助金|補助金|年度|年|"
    r"うち|私|わたし|弊社|当社|うちの会社|会社|制度|事業|類型|枠|ITツール|[\s、。,.!?！？・ー~])"
)
# A reply is short: what is left after the program words and the filler is at most this long.
_REPLY_REST_MAX = 4


@dataclass(frozen=True)
class ProgramMention:
    """The programs a question names."""

    programs: tuple[str, ...] = ()  # covered programs named unambiguously
    others: tuple[OtherProgram, ...] = ()  # programs or frames this knowledge base does not cover
    # Covered programs the question leaves possible when it names none but rules the others out
    # (「令和元年度補正」: IT導入補助金2020, or 2021 which is not covered).
    narrowed: tuple[str, ...] = ()
    quoted: tuple[Contact, ...] = ()  # lines the question quotes by number

    @property
    def by_phone(self) -> bool:
        return bool(self.quoted)

    @property
    def program(self) -> str | None:
        """The one covered program the question is about, when it names exactly one and nothing else."""
        return self.programs[0] if len(self.programs) == 1 and not self.others else None


ReplyKind = Literal["program", "both", "other", "unknown"]


@dataclass(frozen=True)
class ProgramReply:
    """What a reply to "which program?" says."""

    kind: ReplyKind
    program: str | None = None  # with kind "program"
    other: OtherProgram | None = None  # with kind "other", when the user named it


def _year_hits(norm: str, years: Sequence[str]) -> bool:
    for year in years:
        for m in re.finditer(rf"(?<!\d){re.escape(_normal_cue(year))}(?!\d)", norm):
            if not _DATE_TAIL.match(norm, m.end()):
                return True
    return False


@lru_cache(maxsize=4096)
def _normal_cue(cue: str) -> str:
    """Cues are few and fixed: normalise each once, not at every question."""
    return normalize(cue)


def _cue_hits(norm: str, cues: Sequence[str]) -> list[str]:
    return [c for c in (_normal_cue(c) for c in cues) if c and c in norm]


# A phone number as people type it: groups of digits joined by hyphens, spaces or nothing.
_PHONE = re.compile(r"(?<![\d-])0\d{1,4}(?:[-\s]?\d{1,4}){1,2}(?![\d-])")


def _by_number(contacts: Iterable[Contact]) -> dict[str, Contact]:
    """Each phone number of these lines (digits only), and its line."""
    return {_digits(phone.number): contact for contact in contacts for phone in contact.phones}


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _quoted_lines(kb: KnowledgeBase, norm: str) -> tuple[Contact, ...]:
    """The lines a question quotes by number: 「0570-666-376 がつながらない」."""
    numbers = [_digits(m.group()) for m in _PHONE.finditer(norm)]
    if not numbers:  # most questions: no table to build
        return ()
    lines = _by_number(kb.contacts.values())
    return tuple(c for n in numbers if (c := lines.get(n)))


def name_phone_lines(text: str, quoted: Sequence[Contact]) -> str:
    """The text with the number of each line it quotes (`ProgramMention.quoted`) replaced by the
    line's name, for the matching.

    「0570-666-376 つながらない」 is a question about the コールセンター: digits weigh nothing
    in the matching, the line's name does.  The lines were found once, with the program; other
    numbers are left as typed.
    """
    lines = _by_number(quoted)

    def name(m: re.Match[str]) -> str:
        line = lines.get(_digits(m.group()))
        return f" {line.short or line.name} " if line else m.group()

    return _PHONE.sub(name, normalize(text))


def name_program_years(text: str) -> str:
    """The normalised text with each year said with the subsidy's name written as the program's
    name: 「2022年度のIT導入補助金」 and 「IT導入補助金（2022年度）」 become 「it導入補助金2022」.

    The cues (catalog.toml) name programs as 「IT導入補助金2022」; people as often put the year
    first.  Read that way, the phrase names IT導入補助金2022, an uncovered program, and in the
    matching it is the subsidy's name, not a 年度 to match against entries that mention one.
    """
    norm = normalize(text)
    if "補助金" not in norm:  # most questions: nothing to rewrite
        return norm
    norm = _YEAR_BEFORE.sub(lambda m: f" it導入補助金{m.group(1)} ", norm)
    return normalize(_YEAR_AFTER.sub(lambda m: f" it導入補助金{m.group(1)} ", norm))  # spaces folded


def programs_in_question(kb: KnowledgeBase, text: str) -> ProgramMention:
    """The programs a question names without doubt, and any uncovered program or frame it names.

    A line's phone number names the line's program: each number serves one program
    (contacts.toml), and a person quoting it has that line in hand.
    """
    norm = name_program_years(text)
    quoted = _quoted_lines(kb, norm)
    by_phone = {c.program for c in quoted if c.program != "common"}  # gBizID serves both
    programs = tuple(
        pid
        for pid, prog in kb.programs.items()
        if _cue_hits(norm, (*prog.cues, *prog.content_cues))
        or _year_hits(norm, prog.year_cues)
        or pid in by_phone
    )
    others = tuple(o for o in kb.other_programs if _cue_hits(norm, o.cues))
    narrowed = (
        ()
        if programs
        else tuple(pid for pid, prog in kb.programs.items() if _cue_hits(norm, prog.narrowing_cues))
    )
    return ProgramMention(programs, others, narrowed, quoted)


def _rest(norm: str, words: Sequence[str]) -> str:
    for word in sorted((normalize(w) for w in words), key=len, reverse=True):
        if word:
            norm = norm.replace(word, " ")
    return _FILLER.sub("", norm)


def read_program_reply(kb: KnowledgeBase, text: str, offered: Sequence[str]) -> ProgramReply | None:
    """Read a short reply to "which program?" offering `offered` (program ids).

    Returns None when the text is not such a reply (most often a new question), so that
    the caller treats it as one.
    """
    norm = name_program_years(text)
    if not norm:
        return None
    replies = kb.program_replies
    named: dict[str, list[str]] = {}
    for pid in offered:
        prog = kb.programs.get(pid)
        if prog is None:
            continue
        hits = _cue_hits(norm, (*prog.cues, *prog.content_cues, *prog.reply_cues, prog.short, prog.name))
        if hits:
            named[pid] = hits
    others = [(o, _cue_hits(norm, (*o.cues, *o.reply_cues))) for o in kb.other_programs]
    other_named = [(o, hits) for o, hits in others if hits]
    words = [w for hits in named.values() for w in hits] + [w for _, hits in other_named for w in hits]
    kinds: tuple[tuple[ReplyKind, tuple[str, ...]], ...] = (
        ("both", replies.both),
        ("unknown", replies.unknown),
        ("other", replies.other),
    )
    for kind, cues in kinds:
        found = _cue_hits(norm, cues)
        if found and len(_rest(norm, [*words, *found])) <= _REPLY_REST_MAX:
            if kind == "other" and len(named) == 1 and not other_named:
                continue  # 「2020の方で、ほかはない」: the named program wins
            return ProgramReply(kind)
    if len(_rest(norm, words)) > _REPLY_REST_MAX:
        return None
    if other_named and not named:
        return ProgramReply("other", other=other_named[0][0])
    if len(named) == 1 and not other_named:
        return ProgramReply("program", program=next(iter(named)))
    if len(named) > 1:
        return ProgramReply("both")
    return None
