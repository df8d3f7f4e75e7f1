"""Typed shape of the knowledge base.

Everything the bot says comes from these records, so they are validated at
load: a typo in a data file must stop start-up with the file, entry and field
named, not surface later as a wrong answer in front of an applicant.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ProgramId = Literal["it2020", "it2023-multi", "common"]
FlowId = Literal["productivity", "withdrawal"]

_ID = r"^[a-z0-9][a-z0-9-]*$"
CONTACT_REF = re.compile(r"\{\{contact:([a-z0-9-]+)\}\}")
# Phone numbers and web addresses belong in contacts.toml, never in answer text.
_LITERAL_CONTACT = re.compile(r"(?:\d{2,4}-\d{2,4}-\d{3,4})|(?:https?://)")
# A short answer is read first on a phone, before anything else of the reply: it must fit
# in a glance (three lines at most, line breaks not counted in the characters).
SHORT_MAX_CHARS = 100
SHORT_MAX_LINES = 3
# Statute articles (交付規程第25条) are for the details; the headline says what happens.
_ARTICLE = re.compile(r"第\s*\d+\s*条")


def _literal_contact(value: str) -> str | None:
    """The first phone number or web address written into `value`, if any."""
    found = _LITERAL_CONTACT.search(unicodedata.normalize("NFKC", value).replace("－", "-").replace("−", "-"))
    return found.group(0) if found else None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Months(_Frozen):
    """A condition of an entry on how long something lasted, in months: from `min` (inclusive) to
    `below` (exclusive).  `says` is how the entry's own wordings say it (「1年未満」): a question
    that states a span inside the condition (「10か月で解約」) is read as saying it too, and one
    that states a span outside it (「2年目」) is not answered by the entry (faq/durations.py)."""

    min: int | None = Field(default=None, ge=0)
    below: int | None = Field(default=None, ge=1)
    says: str = Field(min_length=1)

    @model_validator(mode="after")
    def _a_span(self) -> Months:
        if self.min is None and self.below is None:
            raise ValueError("months needs min, below or both")
        if self.min is not None and self.below is not None and self.min >= self.below:
            raise ValueError(f"months: min ({self.min}) must be less than below ({self.below})")
        return self


class SourceRef(_Frozen):
    document: str
    ref: str = Field(min_length=1)


class Phone(_Frozen):
    label: str
    number: str = Field(pattern=r"^\d{2,4}-\d{2,4}-\d{3,4}$")


class Hours(_Frozen):
    open: str = Field(pattern=r"^\d{2}:\d{2}$")
    close: str = Field(pattern=r"^\d{2}:\d{2}$")
    closed_days: tuple[str, ...]
    year_end_closed: bool


class Contact(_Frozen):
    id: str = Field(pattern=_ID)
    program: ProgramId
    name: str
    # The name as said in one compact line beside a number (「後年窓口」); `name` when empty.
    short: str = ""
    phones: tuple[Phone, ...] = ()
    url: str | None = None
    hours: Hours | None = None
    hours_text: str | None = None
    note: str | None = None
    source: SourceRef


class Program(_Frozen):
    id: ProgramId
    name: str
    short: str
    cues: tuple[str, ...]
    # Words that name the program and also say what the question is about (後年窓口 is a line):
    # they select the program and stay in the query, where `cues` are left out of the matching.
    content_cues: tuple[str, ...] = ()
    year_cues: tuple[str, ...] = ()
    # Words that rule out every other covered program without naming this one: 令和元年度補正
    # is IT導入補助金2020 or 2021, and 2021 is not covered.  They narrow the answer to this
    # program but are not remembered as the user's program.
    narrowing_cues: tuple[str, ...] = ()
    # Said under an answer so narrowed: what else the words could mean.
    narrowing_note: str = ""
    reply_cues: tuple[str, ...] = ()
    general_contacts: tuple[str, ...]


class OtherProgram(_Frozen):
    """A program or frame of the subsidy that this knowledge base does not cover."""

    id: str = Field(pattern=_ID)
    name: str
    cues: tuple[str, ...]
    guide: str
    source: SourceRef
    # Entries that name this program only to say it is a different one (2020 FAQ 質問1の注記:
    # IT導入補助金2021's portal is not 2020's).  A question naming this program and no covered one
    # comes from its own recipient, whom such an entry does not answer, unless the question asks
    # about the mix-up itself (`Matching.mixup`).
    told_apart_in: tuple[str, ...] = ()
    # Bare years that name this program only as the reply to "which program?" (「2022年度です」):
    # in a question a bare year is a date or nothing, but as that reply it can only be a program.
    reply_cues: tuple[str, ...] = ()


class Matching(_Frozen):
    """Phrases left out of the matching: the subsidy's own name, and how staff frame a question."""

    ignore: tuple[str, ...] = ()
    framing: tuple[str, ...] = ()
    # Words that say a question is about telling two things apart (間違え, 取り違え, 別物).
    mixup: tuple[str, ...] = ()


class ProgramReplies(_Frozen):
    """Replies to "which program?" that name no program."""

    both: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    other: tuple[str, ...] = ()
    # What the bot says to 「わからない」: how to tell which program one is in.
    how_to_tell: str = ""
    # What the bot says to 「それ以外」 when no uncovered program is named.
    other_guide: str = ""


class Document(_Frozen):
    id: str = Field(pattern=_ID)
    title: str
    file: str


class Category(_Frozen):
    id: str = Field(pattern=_ID)
    name: str


class Entry(_Frozen):
    id: str = Field(pattern=_ID)
    program: ProgramId
    category: str
    topic: str | None = None
    # The topic whose other-program answers are shown beside this entry's, without this entry being
    # shown beside theirs: the 2023 refund on 辞退 is answered in the 2020 FAQ by its cancellation
    # entries (cancelling is 辞退 there), but a 2020 cancellation's 2023 answer is the entry saying
    # that cancelling is 辞退, not the refund entry, which never says so.
    beside: str | None = None
    question: str = Field(min_length=2)
    paraphrases: tuple[str, ...] = Field(min_length=3)
    answer: str = Field(min_length=2)
    # The headline shown first on a phone: the answer in one to three short lines, written from
    # the same source passage as `answer`.  The project's knowledge base has one for every entry
    # (the loader refuses an entry without); a plain JSONL knowledge base has none, and the
    # first sentence of the answer stands in.
    short: str = ""
    source: SourceRef
    related: tuple[str, ...] = ()
    dialog: FlowId | None = None
    months: Months | None = None

    @field_validator("answer")
    @classmethod
    def _no_literal_contacts(cls, value: str) -> str:
        found = _literal_contact(value)
        if found:
            raise ValueError(
                f"answer contains {found!r}: put phone numbers and URLs in contacts.toml "
                "and reference them as {{contact:ID}}"
            )
        return value.strip()

    @field_validator("short")
    @classmethod
    def _short_fits_a_glance(cls, value: str) -> str:
        # The renderer shows the entry's contact line beside the short answer, so the short
        # answer names a line in words (「後年窓口」) and never carries its number or a reference.
        value = value.strip()
        lines = value.splitlines()
        chars = sum(len(line) for line in lines)
        if len(lines) > SHORT_MAX_LINES:
            raise ValueError(f"short has {len(lines)} lines; at most {SHORT_MAX_LINES}")
        if chars > SHORT_MAX_CHARS:
            raise ValueError(f"short has {chars} characters; at most {SHORT_MAX_CHARS}")
        if any(not line.strip() for line in lines):
            raise ValueError("short has an empty line")
        found = _literal_contact(value)
        if found:
            raise ValueError(
                f"short contains {found!r}: the contact line is shown beside it; name the line in words"
            )
        ref = CONTACT_REF.search(value)
        if ref:
            raise ValueError(
                f"short contains {ref.group(0)!r}: the contact line is shown beside it; name the line in words"
            )
        article = _ARTICLE.search(unicodedata.normalize("NFKC", value))
        if article:
            raise ValueError(
                f"short contains the article number {article.group(0)!r}: articles go in the answer only"
            )
        return value

    @property
    def contact_refs(self) -> tuple[str, ...]:
        return tuple(CONTACT_REF.findall(self.answer))


class ExternalEntry(_Frozen):
    """One line of a plain JSONL knowledge base (`--kb`): no program, no contacts."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answer: str = ""

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class SynonymGroup(_Frozen):
    canonical: str
    terms: tuple[str, ...] = Field(min_length=1)


class SmalltalkIntent(_Frozen):
    id: str = Field(pattern=_ID)
    patterns: tuple[str, ...] = Field(min_length=1)
    reply: str


class DialogIntent(_Frozen):
    flow: FlowId
    topics: tuple[str, ...] = Field(min_length=1)


class Intents(_Frozen):
    smalltalk: tuple[SmalltalkIntent, ...]
    dialog_actions: tuple[str, ...]
    # Plain verbs (出して) that ask for a calculation only with the topic as their object.
    dialog_object_actions: tuple[str, ...] = ()
    # Words that make a request ask for information instead (「提出方法を教えてほしい」, 「式を確認したい」).
    dialog_information: tuple[str, ...] = ()
    dialog: tuple[DialogIntent, ...]
