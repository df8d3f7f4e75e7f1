"""Turn entries and contacts into the exact text a user is shown.

Contacts are filled in here, from contacts.toml, so a phone number or an hour
is written once and every answer that names the line shows the same figures.
"""

from __future__ import annotations

import re

from faq.loader import KnowledgeBase
from faq.models import CONTACT_REF, Contact, Entry, SourceRef

SUBSIDY = "IT導入補助金"


def compact_program(short: str) -> str:
    """A program's short name without the subsidy's (2020, 2023 複数社連携), where space is tight:
    a narrow console panel, a question offered to pick."""
    return short.removeprefix(SUBSIDY).strip() or short


def contact_block(contact: Contact) -> str:
    lines = [f"【{contact.name}】"]
    lines += [f"{phone.label}：{phone.number}" for phone in contact.phones]
    if contact.url:
        lines.append(contact.url)
    if contact.hours_text:
        lines.append(contact.hours_text)
    if contact.note:
        lines.append(contact.note)
    return "\n".join(lines)


def source_line(kb: KnowledgeBase, entry: Entry) -> str:
    doc = kb.documents.get(entry.source.document)
    title = doc.title if doc else entry.source.document
    return f"出典：{title}　{entry.source.ref}"


def answer_text(kb: KnowledgeBase, entry: Entry) -> str:
    """The answer as shown: program label, official text with contacts, source."""
    body = CONTACT_REF.sub(lambda m: contact_block(kb.contacts[m.group(1)]), entry.answer)
    program = kb.programs.get(entry.program)
    parts = []
    if program and entry.program != "common":
        parts.append(f"【{program.name}】")
    parts.append(body.strip())
    if entry.source.document in kb.documents:
        parts.append(source_line(kb, entry))
    return "\n\n".join(parts)


def general_contacts(kb: KnowledgeBase, program: str | None) -> list[Contact]:
    """The lines to call when nothing fits: the program's, or every program's when unknown."""
    programs = [kb.programs[program]] if program in kb.programs else list(kb.programs.values())
    seen: dict[str, Contact] = {}
    for prog in programs:
        for cid in prog.general_contacts:
            seen.setdefault(cid, kb.contacts[cid])
    return list(seen.values())


def sources_by_document(kb: KnowledgeBase, sources: tuple[SourceRef, ...]) -> list[str]:
    """「title：passage、passage」, one line per document, in the order first cited: a result
    drawing on six passages of one guide names the guide once."""
    by_document: dict[str, list[str]] = {}
    for ref in sources:
        refs = by_document.setdefault(ref.document, [])
        if ref.ref not in refs:
            refs.append(ref.ref)
    lines = []
    for document, refs in by_document.items():
        refs.sort(key=lambda ref: [int(n) for n in re.findall(r"\d+", ref)[:2]])
        doc = kb.documents.get(document)
        lines.append(f"{doc.title if doc else document}：{_passages(refs)}")
    return lines


def _passages(refs: list[str]) -> str:
    """「2. 効果報告の操作画面(2/10)…、2. 効果報告の操作画面(4/10)…」 → the shared section name once."""
    out: list[str] = []
    previous = ""
    for ref in refs:
        section, paren, rest = ref.partition("(")
        if paren and section == previous:
            out.append(paren + rest)
        else:
            out.append(ref)
        previous = section if paren else ""
    return "、".join(out)
