"""The text a user is shown for each outcome, in one place for every channel.

The conversation service shows the structured reply (`Shaped`): a headline, the key facts
(the line to call, open or not) and the details on request; `outcome_text` is the same reply
at once, details included (`kounen ask`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from faq.loader import KnowledgeBase
from faq.models import CONTACT_REF, Contact, Entry
from faq.policy import Outcome
from faq.render import (
    compact_program,
    contact_block,
    general_contacts,
    source_line,
)
from rules.contact_hours import contact_brief

FLOW_NAMES = {"productivity": "労働生産性・伸び率の計算", "withdrawal": "辞退・返還の確認"}
EMPTY = "ご質問の内容を文章で入力してください（例：申請マイページのIDがわからない）。"


def smalltalk_reply(kb: KnowledgeBase, intent_id: str) -> str:
    if kb.intents:
        for intent in kb.intents.smalltalk:
            if intent.id == intent_id:
                return intent.reply
    return ""


def _other_programs(kb: KnowledgeBase, program: str) -> list[str]:
    return [p.short for pid, p in kb.programs.items() if pid not in (program, "common")]


def outcome_text(kb: KnowledgeBase, outcome: Outcome, now: datetime) -> str:
    """The whole reply at once, for `kounen ask` (staff at a terminal, no buttons): the same
    headline, key facts and wording as the chat, with the details after them."""
    if outcome.status == "answered" and len(outcome.answers) > 1:
        both = both_reply(kb, outcome.answers, now)
        return "\n\n".join(
            [both.text.removesuffix(PICK_PROGRAM).rstrip()]
            + [answer_details(kb, *side) for side in answers_by_program(outcome.answers).values()]
        )
    if outcome.status == "answered" and outcome.entry is not None:
        shaped = answer_reply(kb, outcome.entry, now, answered_notes(kb, outcome))
        text = f"{shaped.text}\n\n{shaped.details}"
        if outcome.entry.dialog:
            text += f"\n\n▶ 数字を入力して「{FLOW_NAMES[outcome.entry.dialog]}」をご案内することもできます。"
        return text
    if outcome.status == "smalltalk" and outcome.smalltalk:
        return smalltalk_reply(kb, outcome.smalltalk)
    if outcome.status == "dialog" and outcome.dialog:
        return f"「{FLOW_NAMES[outcome.dialog]}」をご案内します。順にお伺いする数字や日付を入力してください。"
    if outcome.status == "clarify":
        lines = [clarify_text(outcome)] + [f"{i}. {c.label}" for i, c in enumerate(outcome.choices, start=1)]
        return "\n".join(lines)
    if outcome.reason == "empty":
        return EMPTY
    text = not_found_reply(kb, outcome, now).text
    return "\n".join([text, *(f"{i}. {label}" for i, label in enumerate(offer_labels(kb, outcome), start=1))])


# -- the structured reply: headline, key facts, details on request ---------------------------
#
# Built from the data only (the entry's `short`, its answer, contacts.toml) and the time `now`
# given by the caller, so every channel shows the same words and this module stays pure.

NOT_FOUND = "申し訳ありません。ご質問に当てはまる回答が資料に見つかりませんでした。"
NOT_IN_PROGRAM = "{program}の資料には、このご質問への記載がありません。ほかの制度の決まりは当てはまりません。"
CLARIFY_CLOSE = "近い質問がいくつかあります。どれについてのご質問ですか？"
SUGGEST = "近いご質問があれば、お選びください。"
CLARIFY_PROGRAM = "制度によって回答が異なります。どちらの補助金についてのご質問ですか？"
BOTH_SHORT = "制度によって回答が異なります。"
PICK_PROGRAM = "選んだ制度で、以後お答えします。"
# One program answers by how long the tool was used (2020 FAQ 質問6 and 質問7): which span is theirs.
CLARIFY_SPAN = "ITツールを使った期間によって回答が異なります。どちらにあたりますか？"
# 「わからない」 to it: the line says which span applies (no rule is restated here: the KB holds them).
SPAN_HOW_TO_TELL = "導入からの期間がわからないときは、窓口でご確認いただけます。"
_SENTENCE_END = "。！？"
_OPEN, _CLOSE = "「（『【(", "」）』】)"


@dataclass(frozen=True)
class Shaped:
    """One reply's parts: the headline, the key facts under it, and what 「詳しく」 shows."""

    headline: str
    facts: tuple[str, ...] = ()
    details: str = ""

    @property
    def text(self) -> str:
        """The first message: the headline, then the key facts."""
        return "\n\n".join(part for part in (self.headline, "\n".join(self.facts)) if part)


def first_sentence(text: str) -> str:
    """The first sentence of `text` (outside brackets), or its first line when that ends sooner."""
    depth = 0
    for index, char in enumerate(text):
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth = max(0, depth - 1)
        elif char == "\n" and text[:index].strip():
            return text[:index].strip()
        elif char in _SENTENCE_END and depth == 0:
            return text[: index + 1].strip()
    return text.strip()


def short_answer(kb: KnowledgeBase, entry: Entry) -> str:
    """The entry's short answer; until one is written, the first sentence of its answer."""
    if entry.short.strip():
        return entry.short.strip()
    body = CONTACT_REF.sub(lambda m: kb.contacts[m.group(1)].name, entry.answer)
    return first_sentence(body.lstrip("※・ \n"))


def program_label(kb: KnowledgeBase, program: str) -> str:
    """【IT導入補助金2020】 for a covered program; nothing for entries common to every program."""
    found = kb.programs.get(program)
    return f"【{found.short}】" if found is not None and program != "common" else ""


def line_to_call(kb: KnowledgeBase, entry: Entry) -> Contact | None:
    """The contact the answer names (one with a phone first), else its program's general line."""
    named = [kb.contacts[cid] for cid in entry.contact_refs if cid in kb.contacts]
    with_phone = [c for c in named if c.phones]
    if with_phone or named:
        return (with_phone or named)[0]
    general = [c for c in general_contacts(kb, entry.program) if c.program == entry.program]
    return general[0] if general else None


def line_fact(contact: Contact, now: datetime, label: str = "") -> str:
    """「お問い合わせ：後年窓口 0570-002-551（受付中・17:30まで）」: the same compact line as under a
    calculation's result (rules.contact_brief), so one line reads one way everywhere."""
    return f"{label or 'お問い合わせ'}：{contact_brief(contact, now)}"


def _overlap(a: str, b: str) -> float:
    """How much of the shorter text's character pairs the longer one shares (0..1)."""
    pairs_a = {a[i : i + 2] for i in range(len(a) - 1)}
    pairs_b = {b[i : i + 2] for i in range(len(b) - 1)}
    if not pairs_a or not pairs_b:
        return 0.0
    return len(pairs_a & pairs_b) / min(len(pairs_a), len(pairs_b))


def _sentences(text: str) -> list[str]:
    out, current = [], ""
    for char in text:
        current += char
        if char in _SENTENCE_END or char == "\n":
            if current.strip():
                out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


def _block_beside(contact: Contact, answer: str) -> str:
    """A contact's block inside an answer, without the sentences of its note that the answer
    already says in its own words (the official text is kept; the note is the repeat)."""
    if contact.note:
        said = _sentences(answer)
        kept = [s for s in _sentences(contact.note) if not any(_overlap(s, t) >= 0.7 for t in said)]
        contact = contact.model_copy(update={"note": "".join(kept) or None})
    return contact_block(contact)


def _official_answer(kb: KnowledgeBase, entry: Entry) -> str:
    """The entry's official answer with each contact's block in place of its reference."""
    return CONTACT_REF.sub(lambda m: _block_beside(kb.contacts[m.group(1)], entry.answer), entry.answer)


def answer_details(kb: KnowledgeBase, entry: Entry, *spans: Entry) -> str:
    """What 「詳しく」 shows for an entry: the program's full name, the official answer with its
    contacts, the source (once).  With `spans` (one program's answers by span, 2020 FAQ 質問6 and
    質問7), the program's name is said once and each answer follows under its span (【1年未満】)."""
    program = kb.programs.get(entry.program)
    label = f"【{program.name}】" if program is not None and entry.program != "common" else ""
    parts = [label]
    for each in (entry, *spans):
        body = _official_answer(kb, each)
        says = each.months.says if spans and each.months is not None else ""
        parts.append(f"【{says}】\n{body.strip()}" if says else body.strip())
        if each.source.document in kb.documents:
            parts.append(source_line(kb, each))
    return "\n\n".join(part for part in parts if part)


def answer_reply(kb: KnowledgeBase, entry: Entry, now: datetime, notes: tuple[str, ...] = ()) -> Shaped:
    """An entry's answer: the short answer under its program, the line to call, notes, details."""
    headline = program_label(kb, entry.program) + short_answer(kb, entry)
    contact = line_to_call(kb, entry)
    facts = (line_fact(contact, now),) if contact is not None else ()
    return Shaped(headline, (*facts, *notes), answer_details(kb, entry))


def answered_notes(kb: KnowledgeBase, outcome: Outcome, remembered: str | None = None) -> tuple[str, ...]:
    """The short notes under an answer: which document it rests on, and the program remembered."""
    entry = outcome.entry
    if entry is None:
        return ()
    notes = []
    program = kb.programs.get(entry.program)
    if outcome.other_silent and program is not None:
        others = "・".join(_other_programs(kb, entry.program))
        # The headline already names the program the answer is for.
        notes.append(f"※{others}の資料には、この件の記載はありません。")
    if outcome.narrowed and program is not None and program.narrowing_note:
        notes.append(f"※{program.narrowing_note}")
    if remembered is not None and remembered == entry.program and program is not None:
        notes.append(f"（制度：{program.short} でお答えしています。切り替えは /program）")
    return tuple(notes)


def both_reply(kb: KnowledgeBase, entries: tuple[Entry, ...], now: datetime) -> Shaped:
    """Two programs' answers side by side: per program the short answer and its line.

    A program that answers by how long the tool was used (2020 FAQ 質問6 and 質問7) shows its
    entries under one heading, one line each, and its line once: the heading and the phone
    number are not said twice.
    """
    blocks = []
    for program, group in answers_by_program(entries).items():
        shorts = [short_answer(kb, e) for e in group]
        if len(group) > 1:
            shorts = ["・" + _with_condition(e, text) for e, text in zip(group, shorts, strict=True)]
        contacts = list(dict.fromkeys(c for e in group if (c := line_to_call(kb, e)) is not None))
        lines = [_compact_line(c, now) for c in contacts]
        head = program_label(kb, program) + ("\n" if len(group) > 1 else "")
        blocks.append(head + "\n".join([*shorts, *lines]))
    # The note on the buttons follows the last side directly: with a side by span, a blank line
    # more would push the buttons past one phone screen.
    return Shaped(BOTH_SHORT, ("\n\n".join(blocks) + "\n" + PICK_PROGRAM,))


def answers_by_program(entries: tuple[Entry, ...]) -> dict[str, list[Entry]]:
    """Answers shown side by side, grouped by program in the order shown: one side per program,
    holding its entries by span where it has several (2020 FAQ 質問6 and 質問7)."""
    grouped: dict[str, list[Entry]] = {}
    for entry in entries:
        grouped.setdefault(entry.program, []).append(entry)
    return grouped


def _with_condition(entry: Entry, short: str) -> str:
    """「1年以上：…」: an entry's short answer led by the span it is for, unless it starts with it."""
    says = entry.months.says if entry.months is not None else ""
    return short if not says or short.startswith(says) else f"{says}：{short}"


def _compact_line(contact: Contact, now: datetime) -> str:
    """「☎ 後年窓口 0570-002-551（受付中・17:30まで）」 beside a short answer."""
    return "☎ " + contact_brief(contact, now)


def lines_to_call(kb: KnowledgeBase, program: str | None, now: datetime) -> tuple[str, ...]:
    """The general lines for `program`: one, or each program's compactly when the program is unknown."""
    contacts = general_contacts(kb, program)
    if program in kb.programs:
        return tuple(line_fact(c, now) for c in contacts[:1])
    out = []
    for contact in contacts:
        prog = kb.programs.get(contact.program)
        name = prog.short if prog is not None else contact.name
        out.append(f"{name}：{contact_brief(contact, now)}")
    return ("\n\n".join(out),) if out else ()  # a blank line between the programs' lines


def clarify_text(outcome: Outcome) -> str:
    """The question asked back, saying why it is asked."""
    if outcome.choices and outcome.choices[0].program and outcome.reason == "answer differs by program":
        return CLARIFY_PROGRAM
    return CLARIFY_CLOSE


def offer_labels(kb: KnowledgeBase, outcome: Outcome) -> tuple[str, ...]:
    """The questions offered under a "not found", each tagged with its program (【2020】) while
    the person's program is unknown: they pick the question for their own program."""
    if outcome.program is not None or len(set(kb.programs) - {"common"}) <= 1:
        return tuple(c.label for c in outcome.suggestions)
    out = []
    for c in outcome.suggestions:
        found = kb.programs.get(c.program or "")
        if found is None or c.program == "common":
            out.append(c.label)
        else:
            out.append(f"【{compact_program(found.short)}】{c.label}")
    return tuple(out)


def not_found_reply(kb: KnowledgeBase, outcome: Outcome, now: datetime) -> Shaped:
    """Nothing fits: said shortly, with the line that applies (both, compactly, when unknown)."""
    within = kb.programs.get(outcome.within[0]) if len(outcome.within) == 1 else None
    lines = lines_to_call(kb, outcome.program or (within.id if within else None), now)
    if outcome.others:
        return Shaped("\n".join(o.guide for o in outcome.others), lines)
    program = kb.programs.get(outcome.program or "")
    # Entries that come near the question are offered last, to pick (channels show them as choices).
    offer = ("\n" + SUGGEST,) if outcome.suggestions else ()  # a paragraph of its own
    if outcome.reason == "not in this program's document" and program is not None:
        return Shaped(NOT_IN_PROGRAM.format(program=program.short), (*lines, *offer))
    # The one program the question left possible gives the line; what else its words could mean
    # is said under it, as under an answer.
    note = (f"※{within.narrowing_note}",) if within is not None and within.narrowing_note else ()
    return Shaped(NOT_FOUND, (*lines, *note, *offer))
