"""Load and cross-check the knowledge base data files.

The loader collects every problem it can find before failing, so one run of
`kounen kb check` lists all of them with file, entry and field, instead of
making an editor fix them one start-up at a time.
"""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from faq.models import (
    Category,
    Contact,
    Document,
    Entry,
    ExternalEntry,
    Intents,
    Matching,
    OtherProgram,
    Program,
    ProgramReplies,
    SourceRef,
    SynonymGroup,
)

DATA_DIR = Path(__file__).parent / "data"

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    file: str
    entry: str | None
    field: str | None
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.file
        if self.entry:
            where += f": entry {self.entry!r}"
        if self.field:
            where += f", field {self.field!r}"
        return f"{where}: {self.message}"


class KBError(Exception):
    """The knowledge base cannot be used; `problems` says exactly where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0] if problems else None
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first}{more}" if first else "invalid knowledge base")


@dataclass(frozen=True)
class KnowledgeBase:
    entries: tuple[Entry, ...]
    contacts: dict[str, Contact]
    programs: dict[str, Program]
    documents: dict[str, Document]
    categories: dict[str, Category]
    synonyms: tuple[SynonymGroup, ...] = ()
    intents: Intents | None = None
    foreign_cues: tuple[str, ...] = ()
    other_programs: tuple[OtherProgram, ...] = ()
    program_replies: ProgramReplies = field(default_factory=ProgramReplies)
    ignore_phrases: tuple[str, ...] = ()
    mixup_words: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()
    by_id: dict[str, Entry] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {e.id: e for e in self.entries})


def _read_toml(path: Path, problems: list[Problem]) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        problems.append(Problem(str(path), None, None, "file not found"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(path), None, None, f"not valid TOML: {exc}"))
    return {}


def _models(model: type[M], rows: object, path: Path, table: str, problems: list[Problem]) -> list[M]:
    if rows is None:
        problems.append(Problem(str(path), None, table, f"missing table [[{table}]]"))
        return []
    if not isinstance(rows, list):
        problems.append(Problem(str(path), None, table, f"[[{table}]] must be an array of tables"))
        return []
    out: list[M] = []
    for index, row in enumerate(rows):
        label = str(row.get("id", f"#{index + 1}")) if isinstance(row, dict) else f"#{index + 1}"
        try:
            out.append(model.model_validate(row))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(part) for part in err["loc"]) or None
                problems.append(Problem(str(path), label, loc, err["msg"]))
    return out


def _duplicates(ids: list[str], path: str, kind: str, problems: list[Problem]) -> None:
    for ident, count in Counter(ids).items():
        if count > 1:
            problems.append(Problem(path, ident, "id", f"duplicate {kind} id ({count} times)"))


def load_kb(data_dir: Path = DATA_DIR) -> KnowledgeBase:
    """Load the project's knowledge base; raise KBError listing every error found."""
    problems: list[Problem] = []
    catalog_path = data_dir / "catalog.toml"
    contacts_path = data_dir / "contacts.toml"
    synonyms_path = data_dir / "synonyms.toml"
    intents_path = data_dir / "intents.toml"
    catalog = _read_toml(catalog_path, problems)
    programs = _models(Program, catalog.get("program"), catalog_path, "program", problems)
    documents = _models(Document, catalog.get("document"), catalog_path, "document", problems)
    categories = _models(Category, catalog.get("category"), catalog_path, "category", problems)
    foreign = tuple(str(c) for c in catalog.get("foreign", {}).get("cues", []))
    others = _models(OtherProgram, catalog.get("other_program"), catalog_path, "other_program", problems)
    replies = _models(
        ProgramReplies, [catalog.get("program_replies", {})], catalog_path, "program_replies", problems
    )
    matching = _models(Matching, [catalog.get("matching", {})], catalog_path, "matching", problems)
    ignore = tuple(p for m in matching for p in (*m.ignore, *m.framing))
    mixup = tuple(w for m in matching for w in m.mixup)
    contacts = _models(
        Contact, _read_toml(contacts_path, problems).get("contact"), contacts_path, "contact", problems
    )
    synonyms = _models(
        SynonymGroup, _read_toml(synonyms_path, problems).get("group"), synonyms_path, "group", problems
    )
    intents: Intents | None = None
    raw_intents = _read_toml(intents_path, problems)
    if raw_intents:
        try:
            intents = Intents.model_validate(raw_intents)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(Problem(str(intents_path), None, loc, err["msg"]))

    entries: list[Entry] = []
    entry_places: list[tuple[str, str]] = []
    kb_files = sorted((data_dir / "kb").glob("*.toml"))
    if not kb_files:
        problems.append(Problem(str(data_dir / "kb"), None, None, "no knowledge-base files (*.toml)"))
    for path in kb_files:
        for entry in _models(Entry, _read_toml(path, problems).get("entry"), path, "entry", problems):
            entries.append(entry)
            entry_places.append((entry.id, str(path)))

    _duplicates([c.id for c in contacts], str(contacts_path), "contact", problems)
    first_place: dict[str, str] = {}
    for ident, place in entry_places:
        if ident in first_place:
            problems.append(
                Problem(place, ident, "id", f"duplicate entry id (first defined in {first_place[ident]})")
            )
        else:
            first_place[ident] = place

    contact_map = {c.id: c for c in contacts}
    doc_ids = {d.id for d in documents}
    cat_ids = {c.id for c in categories}
    entry_ids = {e.id for e in entries}
    program_map: dict[str, Program] = {p.id: p for p in programs}
    used_contacts: set[str] = set()
    for prog in programs:
        for cid in prog.general_contacts:
            used_contacts.add(cid)
            if cid not in contact_map:
                problems.append(
                    Problem(str(catalog_path), prog.id, "general_contacts", f"unknown contact {cid!r}")
                )
    for contact in contacts:
        if contact.source.document not in doc_ids:
            problems.append(
                Problem(
                    str(contacts_path),
                    contact.id,
                    "source.document",
                    f"unknown document {contact.source.document!r}",
                )
            )
    topics = {e.topic for e in entries if e.topic is not None}
    for other in others:
        for eid in other.told_apart_in:
            if eid not in entry_ids:
                problems.append(
                    Problem(str(catalog_path), other.id, "told_apart_in", f"no entry has the id {eid!r}")
                )
    for entry in entries:
        where = first_place[entry.id]
        if entry.beside is not None and entry.beside not in topics:
            problems.append(Problem(where, entry.id, "beside", f"no entry has the topic {entry.beside!r}"))
        if entry.category not in cat_ids:
            problems.append(Problem(where, entry.id, "category", f"unknown category {entry.category!r}"))
        if entry.source.document not in doc_ids:
            problems.append(
                Problem(where, entry.id, "source.document", f"unknown document {entry.source.document!r}")
            )
        for rel in entry.related:
            if rel not in entry_ids:
                problems.append(Problem(where, entry.id, "related", f"dangling reference {rel!r}"))
            elif rel == entry.id:
                problems.append(Problem(where, entry.id, "related", "an entry cannot be related to itself"))
        problems += _short_problems(entry, where, program_map.get(entry.program))
        if entry.months is not None and not any(
            _bare(entry.months.says) in _bare(text) for text in (entry.question, *entry.paraphrases)
        ):
            # The words a stated span is read as must be the entry's own, or reading them in helps nothing.
            problems.append(
                Problem(
                    where,
                    entry.id,
                    "months.says",
                    f"{entry.months.says!r} is in none of the entry's question and paraphrases",
                )
            )
        for cid in entry.contact_refs:
            used_contacts.add(cid)
            referenced = contact_map.get(cid)
            if referenced is None:
                problems.append(Problem(where, entry.id, "answer", f"unknown contact {{{{contact:{cid}}}}}"))
            elif referenced.program not in ("common", entry.program):
                problems.append(
                    Problem(
                        where,
                        entry.id,
                        "answer",
                        f"contact {cid!r} belongs to {referenced.program}, not to this {entry.program} entry",
                    )
                )
    warnings = [
        Problem(str(contacts_path), c.id, None, "contact is never referenced", "warning")
        for c in contacts
        if c.id not in used_contacts
    ]
    if problems:
        raise KBError(problems)
    return KnowledgeBase(
        entries=tuple(entries),
        contacts=contact_map,
        programs=program_map,
        documents={d.id: d for d in documents},
        categories={c.id: c for c in categories},
        synonyms=tuple(synonyms),
        intents=intents,
        foreign_cues=foreign,
        other_programs=tuple(others),
        program_replies=replies[0] if replies else ProgramReplies(),
        ignore_phrases=ignore,
        mixup_words=mixup,
        warnings=tuple(warnings),
    )


# A number as written: 5, 1, 3,000, 0.5 (after NFKC, so ５ and 5 are the same).
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _numbers(text: str) -> set[str]:
    return {m.replace(",", "") for m in _NUMBER.findall(unicodedata.normalize("NFKC", text))}


def _bare(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isalnum())


def _short_problems(entry: Entry, where: str, program: Program | None) -> list[Problem]:
    """What is wrong with an entry's short answer beside its answer and question.

    The short answer is the first thing read, and read alone: it may not state a figure the
    official answer does not (a wrong deadline or percentage would be trusted at a glance),
    nor echo the question instead of answering it.  Every entry of the project's knowledge
    base has one; only plain JSONL knowledge bases go without (their first sentence stands in).
    """
    if not entry.short:
        return [Problem(where, entry.id, "short", "missing short answer (the headline read first)")]
    out: list[Problem] = []
    invented = sorted(_numbers(entry.short) - _numbers(entry.answer), key=lambda n: (len(n), n))
    if invented:
        out.append(
            Problem(
                where,
                entry.id,
                "short",
                f"number(s) {', '.join(invented)} are not in the answer: a short answer states no figure "
                "its answer does not",
            )
        )
    bare_short, bare_question = _bare(entry.short), _bare(entry.question)
    if bare_question and bare_question in bare_short:
        out.append(Problem(where, entry.id, "short", "repeats the question; it must answer it"))
    names = ("【", *((program.short, program.name) if program and program.id != "common" else ()))
    if any(entry.short.startswith(name) for name in names):
        out.append(
            Problem(where, entry.id, "short", "starts with the program name: the reply names the program")
        )
    return out


def read_jsonl(path: Path, problems: list[Problem]) -> list[tuple[str, dict[str, Any]]]:
    """The JSON objects of a JSONL file, each with its `file:line`; bad lines go to `problems`.

    Lines starting with `#` are comments: a labelled-query file states its rules in a header.

    Unreadable files raise KBError at once: there is nothing to report line by line.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise KBError([Problem(str(path), None, None, "file not found")]) from None
    except IsADirectoryError:
        raise KBError([Problem(str(path), None, None, "is a directory, expected a JSONL file")]) from None
    except UnicodeDecodeError as exc:
        raise KBError([Problem(str(path), None, None, f"not UTF-8 (byte {exc.start})")]) from None
    except OSError as exc:
        raise KBError([Problem(str(path), None, None, f"cannot read: {exc.strerror}")]) from None
    rows: list[tuple[str, dict[str, Any]]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue  # blank lines and `#` comment lines (a file's header) carry no row
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(where, None, None, f"not valid JSON: {exc.msg}"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(where, None, None, "expected a JSON object"))
            continue
        rows.append((where, obj))
    return rows


def load_jsonl_kb(path: Path) -> KnowledgeBase:
    """Load a plain `{id, question, answer}` JSONL file as a knowledge base of its own."""
    problems: list[Problem] = []
    entries: list[Entry] = []
    for where, obj in read_jsonl(path, problems):
        try:
            ext = ExternalEntry.model_validate(obj)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(Problem(where, str(obj.get("id", "?")), loc, err["msg"]))
            continue
        entries.append(_external_to_entry(ext, path.name))
    if not entries and not problems:
        problems.append(Problem(str(path), None, None, "no entries"))
    _duplicates([e.id for e in entries], str(path), "entry", problems)
    if problems:
        raise KBError(problems)
    return KnowledgeBase(entries=tuple(entries), contacts={}, programs={}, documents={}, categories={})


def _external_to_entry(ext: ExternalEntry, file_name: str) -> Entry:
    # Built without validation: an external KB has no paraphrases, program or contacts.
    return Entry.model_construct(
        id=ext.id,
        program="common",
        category="external",
        topic=None,
        question=ext.question,
        paraphrases=(),
        answer=ext.answer,
        source=SourceRef(document=file_name, ref=ext.id),
        related=(),
        dialog=None,
    )
