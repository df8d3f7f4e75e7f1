"""What the templates show: entries, search results, contacts with their hours, calculator results.

Answer text comes from faq.render.answer_text, exactly what the bot sends, so the text a
staff member copies is the official one with the contacts filled in; the headline is the
bot's too (faq.replies.short_answer), and every phone number is a tel: link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from markupsafe import Markup

from bot.console.highlight import highlight, highlight_terms
from faq import Contact, Entry, KnowledgeBase, Outcome, PolicyConfig, answer_text
from faq.models import SourceRef
from faq.render import compact_program, general_contacts, source_line, sources_by_document
from faq.replies import answers_by_program, short_answer
from rules import (
    REFUND_LABELS,
    ProductivityResult,
    WithdrawalResult,
    format_date,
    format_money,
    format_productivity,
    line_status,
)

PROGRAM_ORDER = ("it2020", "it2023-multi", "common")
STATUS_TEXT = {
    "answered": "ボットはこの回答を返します",
    "clarify": "ボットは候補を示して聞き返します",
    "no_match": "ボットは「見つかりません」と答え、お問い合わせ先を案内します",
    "no_match offered": "ボットは「見つかりません」と答え、お問い合わせ先と近い質問（候補）を示します",
    "smalltalk": "あいさつ等として短く返答します（回答の検索はしません）",
    "dialog": "ボットは計算の案内を始めます",
}
# Why the bot does what it does, by the policy's reason (faq/policy.py), in the staff's words.
REASON_TEXT = {
    "both programs answer": "制度によって回答が異なります。制度が分からないため、ボットは両方の制度の回答を並べて示し、制度を伺います。",
    "close candidates": "近い候補が複数あり、どれについての質問か決められないため、ボットは聞き返します。",
    "not covered": "質問の内容を説明した回答が知識ベースにないため、ボットは「見つかりません」と窓口を案内します。",
    "not in this program's document": "指定の制度の資料にはこの内容がないため、ボットはその旨とその制度の窓口を案内します。",
    "another program": "対象外の補助金・制度についての質問のため、ボットは答えません。",
    "empty": "質問の文字がありません。",
}
OFFER_TEXT = (
    "質問に十分一致する回答がないため、ボットは「見つかりません」と窓口を案内し、"
    "近い質問を選べるように示します。お客様のご質問に当てはまるかをご確認ください。"
)
FLOW_ROUTES = {"productivity": "productivity", "withdrawal": "withdrawal"}


@dataclass(frozen=True)
class ContactView:
    contact: Contact
    program_short: str | None
    status_text: str | None  # None: the line has no hours (a form, a web page)
    open_now: bool | None

    @property
    def status_word(self) -> str | None:
        """受付中 / 受付時間外 without the hours, for a narrow screen."""
        return self.status_text.split("（", 1)[0] if self.status_text else None


@dataclass(frozen=True)
class EntryView:
    entry: Entry
    program_short: str
    program_name: str
    category: str
    question: Markup
    answer: Markup  # the answer as the bot sends it, matched words marked
    answer_plain: str  # what the copy button copies
    source: str
    related: tuple[Entry, ...]
    contacts: tuple[ContactView, ...]
    score: float | None = None
    matched: tuple[str, ...] = ()
    headline: str = ""  # the short answer the bot shows first

    @property
    def line(self) -> ContactView | None:
        """The line to give the caller: the first one with a phone (the answer's own first)."""
        return next((c for c in self.contacts if c.contact.phones), None)


@dataclass(frozen=True)
class ProgramColumn:
    """One program's side of an answer that differs by program: its entry, or its entries when
    it answers by how long the tool was used (2020 FAQ 質問6 and 質問7)."""

    program: str
    short: str
    items: tuple[EntryView, ...]


@dataclass(frozen=True)
class SearchView:
    query: str
    program: str | None
    status: str
    status_text: str
    reason: str
    reason_text: str  # why, in the staff's words ("" when the status says it all)
    results: tuple[EntryView, ...]  # plausible entries only, the bot's own choice first
    fallback_contacts: tuple[ContactView, ...]  # when nothing plausible is found
    flow: str | None  # calculator route when the question asks for one
    chosen: frozenset[str]  # entries the bot would answer with or offer
    by_program: tuple[ProgramColumn, ...] = ()  # side by side when the answer differs by program

    @property
    def column_ids(self) -> tuple[str, ...]:
        """The entries shown in the programs' columns, in order (the rest are listed after them)."""
        return tuple(item.entry.id for col in self.by_program for item in col.items)


def _reason_text(outcome: Outcome) -> str:
    if outcome.reason == "another program" and outcome.others:
        return f"「{outcome.others[0].name}」は対象外のため、ボットは答えません。"
    if outcome.status == "no_match" and outcome.suggestions:
        return OFFER_TEXT
    return REASON_TEXT.get(outcome.reason, "")


def contact_view(kb: KnowledgeBase, contact: Contact, now: datetime) -> ContactView:
    status = line_status(contact, now)
    program = kb.programs.get(contact.program)
    return ContactView(
        contact,
        program.short if program and contact.program != "common" else None,
        status.text if status.open_now is not None else None,
        status.open_now,
    )


def entry_contacts(kb: KnowledgeBase, entry: Entry) -> list[Contact]:
    """The lines that apply: those the answer names (phone lines first), then the program's own
    general line (every program's for 共通), so the caller can always be told where to call."""
    named = sorted(
        (kb.contacts[i] for i in dict.fromkeys(entry.contact_refs) if i in kb.contacts),
        key=lambda c: not c.phones,
    )
    general = general_contacts(kb, entry.program if entry.program != "common" else None)
    seen = {c.id for c in named}
    return named + [c for c in general if c.id not in seen]


def entry_view(
    kb: KnowledgeBase,
    entry: Entry,
    now: datetime,
    *,
    score: float | None = None,
    matched: tuple[str, ...] = (),
) -> EntryView:
    program = kb.programs.get(entry.program)
    category = kb.categories.get(entry.category)
    text = answer_text(kb, entry)
    return EntryView(
        entry=entry,
        program_short=program.short if program else entry.program,
        program_name=program.name if program else entry.program,
        category=category.name if category else entry.category,
        question=highlight(entry.question, matched),
        answer=tel_links(highlight(text, matched)),
        answer_plain=text,
        source=source_line(kb, entry),
        related=tuple(kb.by_id[r] for r in entry.related if r in kb.by_id),
        contacts=tuple(contact_view(kb, c, now) for c in entry_contacts(kb, entry)),
        score=score,
        matched=highlight_terms(matched),
        headline=short_answer(kb, entry),
    )


_PHONE = re.compile(r"(?<![\d-])(\d{2,4}-\d{2,4}-\d{3,4})(?![\d-])")


def tel_links(html: Markup) -> Markup:
    """Escaped answer HTML with every phone number a tel: link (one tap to call on a phone)."""
    return Markup(_PHONE.sub(r'<a class="tel" href="tel:\1">\1</a>', str(html)))


def search_view(
    kb: KnowledgeBase, outcome: Outcome, now: datetime, config: PolicyConfig, limit: int = 5
) -> SearchView:
    """What the console shows for the policy's decision on a search.

    Plausible results only, by the policy's own measures (faq/data/policy.toml), so the
    console and the bot agree on what is worth showing: the entries the bot would answer
    with or offer, then the others that cover the question (coverage at least the policy's
    `coverage_min`: below it the bot says "not found").  A question the bot refuses as out of
    scope or empty shows none.  When nothing is plausible, the program's lines (both
    when the program is unknown).
    """
    chosen_ids = [outcome.entry.id] if outcome.entry else []
    chosen_ids += [c.entry_id for c in outcome.choices if c.entry_id and c.entry_id not in chosen_ids]
    chosen_ids += [e.id for e in outcome.answers if e.id not in chosen_ids]
    # Offered under a "not found": the staff see what the person is offered to pick.
    chosen_ids += [c.entry_id for c in outcome.suggestions if c.entry_id and c.entry_id not in chosen_ids]
    refused = outcome.reason in ("empty", "another program")
    by_id = {c.entry.id: c for c in outcome.candidates}
    picked = [by_id[i] for i in chosen_ids if i in by_id]
    if not refused and outcome.candidates:
        bar = config.coverage_min
        picked += [c for c in outcome.candidates if c.score >= bar and c.entry.id not in chosen_ids]
    if outcome.status in ("smalltalk", "dialog"):
        picked = []
    results = tuple(entry_view(kb, c.entry, now, score=c.score, matched=c.matched) for c in picked[:limit])
    if outcome.status == "answered" and outcome.entry and not results:  # chosen without a ranking
        results = (entry_view(kb, outcome.entry, now),)
    columns: tuple[ProgramColumn, ...] = ()
    if len(outcome.answers) > 1:  # both programs' answers, side by side
        views_by_id = {v.entry.id: v for v in results}
        columns = tuple(
            ProgramColumn(program, kb.programs[program].short, items)
            for program, group in answers_by_program(outcome.answers).items()
            if (items := tuple(views_by_id[e.id] for e in group if e.id in views_by_id))
        )
    fallback: tuple[ContactView, ...] = ()
    if outcome.status == "no_match" and not results:
        fallback = tuple(contact_view(kb, c, now) for c in general_contacts(kb, outcome.program))
    return SearchView(
        query=outcome.query,
        program=outcome.program,
        status=outcome.status,
        status_text=STATUS_TEXT.get(
            "no_match offered" if outcome.status == "no_match" and outcome.suggestions else outcome.status,
            outcome.status,
        ),
        reason=outcome.reason,
        reason_text=_reason_text(outcome),
        results=results,
        fallback_contacts=fallback,
        flow=FLOW_ROUTES.get(outcome.dialog) if outcome.dialog else None,
        chosen=frozenset(chosen_ids),
        by_program=columns,
    )


@dataclass(frozen=True)
class LineView:
    """A general line for the always-visible contact panel."""

    program_short: str
    view: ContactView

    @property
    def tag(self) -> str:
        """The program in a few characters (2020, 2023 複数社連携), for a narrow screen."""
        return compact_program(self.program_short)


def contact_panel(kb: KnowledgeBase, now: datetime) -> tuple[LineView, ...]:
    """Every program's own line (2020 後年窓口, 2023 コールセンター), open or closed right now."""
    lines = []
    for contact in general_contacts(kb, None):
        if not contact.phones:
            continue
        program = kb.programs.get(contact.program)
        lines.append(LineView(program.short if program else contact.program, contact_view(kb, contact, now)))
    return tuple(lines)


@dataclass(frozen=True)
class PopularEntry:
    entry: Entry
    program_short: str
    count: int


def popular(kb: KnowledgeBase, counts: list[tuple[str, int]]) -> tuple[PopularEntry, ...]:
    """The most-asked entries (from the query log) that still exist."""
    out = []
    for entry_id, count in counts:
        entry = kb.by_id.get(entry_id)
        if entry is not None:
            program = kb.programs.get(entry.program)
            out.append(PopularEntry(entry, program.short if program else entry.program, count))
    return tuple(out)


@dataclass(frozen=True)
class CategoryGroup:
    id: str
    name: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class ProgramGroup:
    id: str
    name: str
    short: str
    categories: tuple[CategoryGroup, ...]

    @property
    def count(self) -> int:
        return sum(len(c.entries) for c in self.categories)


def browse(kb: KnowledgeBase) -> list[ProgramGroup]:
    """Every entry, by program (2020, 2023, 共通) and category, in the knowledge base's order."""
    order = [p for p in PROGRAM_ORDER if p in kb.programs] + [
        p for p in kb.programs if p not in PROGRAM_ORDER
    ]
    groups = []
    for pid in order:
        program = kb.programs[pid]
        categories = []
        for cid, category in kb.categories.items():
            entries = tuple(e for e in kb.entries if e.program == pid and e.category == cid)
            if entries:
                categories.append(CategoryGroup(cid, category.name, entries))
        orphans = tuple(e for e in kb.entries if e.program == pid and e.category not in kb.categories)
        if orphans:
            categories.append(CategoryGroup("other", "その他", orphans))
        if categories:
            groups.append(ProgramGroup(pid, program.name, program.short, tuple(categories)))
    return groups


def sources_text(kb: KnowledgeBase, sources: tuple[SourceRef, ...]) -> list[str]:
    """Each document once, its passages after it (the same grouping as the bot's details)."""
    return sources_by_document(kb, sources)


@dataclass(frozen=True)
class Figure:
    label: str
    value: str


def _read_back(lines: tuple[tuple[str, str], ...]) -> tuple[Figure, ...]:
    return tuple(Figure(label, value) for label, value in lines)


@dataclass(frozen=True)
class ProductivityView:
    inputs: tuple[Figure, ...]  # what was typed, read back in the bot's own format (3,000万円, ▲500万円)
    figures: tuple[Figure, ...]
    verdict: str
    verdict_kind: str  # ok / ng / none
    explanation: tuple[str, ...]
    sources: tuple[str, ...]


def productivity_view(kb: KnowledgeBase, result: ProductivityResult) -> ProductivityView:
    rnd = result.rounding
    threshold = f"{(result.threshold * 100).normalize():f}%"
    figures = [
        Figure("付加価値額", format_money(result.value_added)),
        Figure("労働生産性", format_productivity(rnd.productivity(result.labor_productivity))),
    ]
    if result.growth_rate is not None:
        figures.append(
            Figure(f"年率平均成長率（{result.inputs.year}年度目）", rnd.percent(result.growth_rate))
        )
    figures.append(Figure("公表の基準", f"年率平均{threshold}以上"))
    if result.meets_threshold is True:
        verdict, kind = f"基準（{threshold}）に達しています。", "ok"
    elif result.meets_threshold is False:
        verdict, kind = f"基準（{threshold}）に達していません。", "ng"
    else:
        verdict, kind = result.growth_unavailable_reason or "伸び率は計算していません。", "none"
    return ProductivityView(
        _read_back(result.inputs.read_back()),
        tuple(figures),
        verdict,
        kind,
        result.explanation,
        tuple(sources_text(kb, result.sources)),
    )


@dataclass(frozen=True)
class WithdrawalView:
    summary: str
    inputs: tuple[Figure, ...]
    figures: tuple[Figure, ...]
    explanation: tuple[str, ...]
    sources: tuple[str, ...]
    contact: ContactView | None
    required: bool | None


_REQUIRED = {
    True: "必要です",
    False: "出典上、必要とされていません",
    None: "出典に定めがありません（窓口にご確認ください）",
}


def _day(value: date | None) -> str:
    return format_date(value) if value else "なし（出典に定めなし）"


def withdrawal_view(kb: KnowledgeBase, result: WithdrawalResult, now: datetime) -> WithdrawalView:
    contact = kb.contacts.get(result.contact)
    figures: tuple[Figure, ...] = (
        Figure("辞退届", _REQUIRED[result.withdrawal_required]),
        Figure("返還", REFUND_LABELS[result.refund]),
        Figure("基準日（最も遅い納品日）", _day(result.base_date)),
        Figure("1年未満として扱う期限", _day(result.one_year_date)),
        Figure("期間の終わり", _day(result.period_end)),
    )
    if result.submit_via:
        figures += (Figure("提出先", result.submit_via),)
    return WithdrawalView(
        summary=result.summary,
        inputs=_read_back(result.inputs.read_back()),
        figures=figures,
        explanation=result.explanation,
        sources=tuple(sources_text(kb, result.sources)),
        contact=contact_view(kb, contact, now) if contact else None,
        required=result.withdrawal_required,
    )
