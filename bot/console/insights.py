"""Read-only queries over the query log and feedback for the console's insights page.

The text was masked when it was logged (bot.masking), so what is shown and exported here
is what the store holds.  Periods are half-open [start, end) in UTC; the page turns the
chosen Tokyo dates into such bounds.

Every turn of every conversation is logged, but only some are questions.  A question is a
turn the answer policy decided on: answered, asked back, not found, or a request to start
a calculation (logged as "dialog" with the policy's top score).  Not questions: the
figures and dates typed inside a calculation (logged as "dialog" without a score),
commands, greetings, and choices picked from a list (logged as "[choice] …").

A low-confidence question is one the policy asked back about because no entry reached
its answering bar (`coverage_min` in faq/data/policy.toml): the best score was below it.
Asking back between close entries that all clear the bar, or asking only which program,
is not low confidence, and an answered question cleared the bar by definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVarTuple

from sqlalchemy import ColumnElement, Row, Select, and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.store import Feedback, QueryLog, Store, StoreError

_Columns = TypeVarTuple("_Columns")
CHOICE_PREFIX = "[choice]"
MAX_ROWS = 10_000  # per section in a CSV export


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive, aware
    end: datetime  # exclusive, aware


@dataclass(frozen=True)
class QuestionRow:
    text: str
    count: int
    last_time: datetime
    best_score: float | None
    statuses: str  # e.g. "no_match" or "clarify, answered"


@dataclass(frozen=True)
class PickRow:
    """A question the bot did not find, and the entry the person then picked from its offer."""

    text: str
    entry_id: str
    count: int
    last_time: datetime


@dataclass(frozen=True)
class EntryRow:
    entry_id: str
    count: int
    helpful: int
    not_helpful: int


@dataclass(frozen=True)
class FeedbackRow:
    time: datetime
    entry_id: str
    question: str | None
    comment: str | None
    channel: str


@dataclass(frozen=True)
class Totals:
    total: int  # questions
    by_status: dict[str, int]  # questions by outcome: answered, clarify, no_match, dialog
    not_helpful: int
    other_turns: int  # figures typed in a calculation, commands, greetings, choices


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _in(column: InstrumentedAttribute[datetime], period: Period) -> ColumnElement[bool]:
    return and_(column >= period.start.astimezone(UTC), column < period.end.astimezone(UTC))


QUESTION_STATUSES = ("answered", "clarify", "no_match")


def _questions() -> ColumnElement[bool]:
    """Turns that were questions (see the module docstring)."""
    return and_(
        ~QueryLog.text.startswith(CHOICE_PREFIX),
        or_(
            QueryLog.status.in_(QUESTION_STATUSES),
            and_(QueryLog.status == "dialog", QueryLog.score.is_not(None)),
        ),
    )


class Insights:
    """The insight queries over one store."""

    def __init__(self, store: Store, answer_min: float) -> None:
        """`answer_min`: the policy's answering bar (PolicyConfig.coverage_min)."""
        self.store = store
        self.answer_min = answer_min

    def _session(self) -> Session:
        return Session(self.store.engine)

    def _fail(self, what: str, exc: SQLAlchemyError) -> StoreError:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return StoreError(
            f"database error while reading {what} ({self.store.url}): {first[0] if first else exc}"
        )

    def totals(self, period: Period) -> Totals:
        try:
            with self._session() as session:
                rows = session.execute(
                    select(QueryLog.status, func.count())
                    .where(_in(QueryLog.time, period), _questions())
                    .group_by(QueryLog.status)
                ).all()
                turns = session.scalar(
                    select(func.count()).select_from(QueryLog).where(_in(QueryLog.time, period))
                )
                not_helpful = session.scalar(
                    select(func.count())
                    .select_from(Feedback)
                    .where(_in(Feedback.time, period), Feedback.helpful.is_(False))
                )
        except SQLAlchemyError as exc:
            raise self._fail("the query log", exc) from None
        by_status = {str(status): int(count) for status, count in rows}
        total = sum(by_status.values())
        return Totals(total, by_status, int(not_helpful or 0), int(turns or 0) - total)

    def _fetch(self, query: Select[*_Columns]) -> Sequence[Row[*_Columns]]:
        """The rows of one query over the log; a database error names the store."""
        try:
            with self._session() as session:
                return session.execute(query).all()
        except SQLAlchemyError as exc:
            raise self._fail("the query log", exc) from None

    def _grouped(self, condition: ColumnElement[bool], period: Period, limit: int) -> list[QuestionRow]:
        last = func.max(QueryLog.time)
        count = func.count()
        query = (
            select(
                QueryLog.text,
                count,
                last,
                func.max(QueryLog.score),
                func.min(QueryLog.status),
                func.max(QueryLog.status),
            )
            .where(_in(QueryLog.time, period), _questions(), condition)
            .group_by(QueryLog.text)
            .order_by(count.desc(), last.desc())
            .limit(limit)
        )
        rows = self._fetch(query)
        out = []
        for text, n, when, score, low, high in rows:
            statuses = str(low) if low == high else f"{low}, {high}"
            out.append(QuestionRow(str(text), int(n), _aware(when), score, statuses))
        return out

    def unanswered(self, period: Period, limit: int = 100) -> list[QuestionRow]:
        """Questions the bot answered with "not found", most frequent first."""
        return self._grouped(QueryLog.status == "no_match", period, limit)

    def low_confidence(self, period: Period, limit: int = 100) -> list[QuestionRow]:
        """Questions asked back about because the best entry scored below the answering bar."""
        condition = and_(QueryLog.status == "clarify", QueryLog.score < self.answer_min)
        return self._grouped(condition, period, limit)

    def picked_after_not_found(self, period: Period, limit: int = 100) -> list[PickRow]:
        """Not-found questions after which the person picked an entry offered under the reply.

        The entry was what they meant, and the question is a way of saying it that the
        knowledge base lacks: a candidate wording for that entry (after `kounen kb check`).
        Read from each conversation's order: a pick logged right after a not-found.
        """
        conversation = (QueryLog.channel, QueryLog.user_hash)
        in_order = (QueryLog.time, QueryLog.id)
        turns = (
            select(
                QueryLog.text,
                QueryLog.entry_id,
                QueryLog.time,
                func.lag(QueryLog.text)
                .over(partition_by=conversation, order_by=in_order)
                .label("before_text"),
                func.lag(QueryLog.status)
                .over(partition_by=conversation, order_by=in_order)
                .label("before_status"),
            )
            .where(_in(QueryLog.time, period))
            .subquery()
        )
        count = func.count()
        last = func.max(turns.c.time)
        query = (
            select(turns.c.before_text, turns.c.entry_id, count, last)
            .where(
                turns.c.text.startswith(CHOICE_PREFIX),
                turns.c.entry_id.is_not(None),
                turns.c.before_status == "no_match",
                ~turns.c.before_text.startswith(CHOICE_PREFIX),
            )
            .group_by(turns.c.before_text, turns.c.entry_id)
            .order_by(count.desc(), last.desc())
            .limit(limit)
        )
        rows = self._fetch(query)
        return [PickRow(str(text), str(entry_id), int(n), _aware(when)) for text, entry_id, n, when in rows]

    def top_entries(self, period: Period, limit: int = 20) -> list[EntryRow]:
        """The entries answered most often, with the feedback they got in the period."""
        count = func.count()
        try:
            with self._session() as session:
                rows = session.execute(
                    select(QueryLog.entry_id, count)
                    .where(
                        _in(QueryLog.time, period),
                        QueryLog.status == "answered",
                        QueryLog.entry_id.is_not(None),
                    )
                    .group_by(QueryLog.entry_id)
                    .order_by(count.desc(), QueryLog.entry_id)
                    .limit(limit)
                ).all()
                ids = [str(r[0]) for r in rows]
                votes = session.execute(
                    select(Feedback.entry_id, Feedback.helpful, func.count())
                    .where(_in(Feedback.time, period), Feedback.entry_id.in_(ids))
                    .group_by(Feedback.entry_id, Feedback.helpful)
                ).all()
        except SQLAlchemyError as exc:
            raise self._fail("the query log", exc) from None
        tally: dict[tuple[str, bool], int] = {(str(e), bool(h)): int(n) for e, h, n in votes}
        return [
            EntryRow(
                str(entry_id),
                int(n),
                tally.get((str(entry_id), True), 0),
                tally.get((str(entry_id), False), 0),
            )
            for entry_id, n in rows
        ]

    def not_helpful(self, period: Period, limit: int = 100) -> list[FeedbackRow]:
        """👎 feedback, newest first, with the question it was about when known."""
        try:
            with self._session() as session:
                rows = session.execute(
                    select(
                        Feedback.time, Feedback.entry_id, QueryLog.text, Feedback.comment, Feedback.channel
                    )
                    .outerjoin(QueryLog, Feedback.query_id == QueryLog.id)
                    .where(_in(Feedback.time, period), Feedback.helpful.is_(False))
                    .order_by(Feedback.time.desc(), Feedback.id.desc())
                    .limit(limit)
                ).all()
        except SQLAlchemyError as exc:
            raise self._fail("feedback", exc) from None
        return [
            FeedbackRow(_aware(when), str(entry), None if text is None else str(text), comment, str(channel))
            for when, entry, text, comment, channel in rows
        ]
