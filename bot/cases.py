"""Cases: conversations handed to staff, in the shared store (tables `cases`, `case_events`).

A case belongs to one chat (channel + user id) and is found by staff by its short number
(bot.handoff).  Its events are the transcript (user / bot / staff messages, masked) and the
staff actions (viewed / assigned / closed, with who and when).  Messages for the user
(staff replies, the closing notice) are events with a `delivery` state:

    pending        waiting to be shown
    sent           delivered by the Telegram bot
    shown          shown in the terminal chat at the user's next turn
    undeliverable  the Bot API refused it (the user blocked the bot): never retried

For Telegram a message to the user is written, in the same transaction as its event, to
the outbox (`processed_updates`, source CASE_SOURCE, update id = event id), so whichever
process runs the bot sends it exactly once (`TelegramAdapter.sweep`).

What the user deliberately gives for the case (name, 申請番号, 法人番号, e-mail) is kept
only in `cases.personal`, unmasked, visible to logged-in staff, and erased after
KOUNEN_CASE_RETENTION_DAYS (`Cases.purge_personal`).  Everything else is masked.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from bot import handoff
from bot.masking import mask
from bot.store import (
    Base,
    ProcessedUpdate,
    QueryLog,
    Store,
    StoreError,
    UpdateUnit,
    _aware,
    clean_text,
    utcnow,
)

CASE_SOURCE = "telegram:cases"  # the outbox of messages from staff (update id = event id)
TRANSCRIPT = ("user", "bot", "staff", "notice")
ACTIONS = ("opened", "viewed", "assigned", "replied", "closed", "expired", "cancelled")
OPEN = "open"
CLOSED_STATES = ("closed", "expired", "cancelled")
MAX_REPLY_TEXT = 4096
VIEW_AGAIN = timedelta(minutes=10)  # a staff member looking again within this is not a new "viewed"


class CaseSettings(BaseSettings):
    """KOUNEN_CASE_EXPIRE_HOURS, KOUNEN_CASE_RETENTION_DAYS, KOUNEN_STAFF_CHAT_ID."""

    model_config = SettingsConfigDict(env_prefix="KOUNEN_", env_ignore_empty=True, extra="ignore")

    case_expire_hours: float = Field(default=72.0, gt=0, le=24 * 365)
    case_retention_days: float = Field(default=30.0, gt=0, le=3650)
    staff_chat_id: int | None = None


class CaseRow(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    channel: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(64))
    program: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    first_question: Mapped[str | None] = mapped_column(Text)
    personal: Mapped[str | None] = mapped_column(Text)
    personal_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_reply_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(Text)


class CaseEventRow(Base):
    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text)
    entry_id: Mapped[str | None] = mapped_column(String(128))
    delivery: Mapped[str | None] = mapped_column(String(16))


class CaseContextRow(Base):
    """The last finished calculation of a chat, for the summary of a case opened later."""

    __tablename__ = "case_context"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    calculation: Mapped[dict[str, Any] | None] = mapped_column(JSON)


@dataclass(frozen=True)
class CaseEvent:
    id: int
    time: datetime
    kind: str
    actor: str | None
    text: str | None
    entry_id: str | None
    delivery: str | None


@dataclass(frozen=True)
class Case:
    id: int
    number: str
    channel: str
    user_id: str
    status: str
    assignee: str | None
    program: str | None
    reason: str
    summary: dict[str, Any]
    first_question: str | None
    personal: str | None
    opened_at: datetime
    taken_at: datetime | None
    first_reply_at: datetime | None
    closed_at: datetime | None
    resolution: str | None
    events: tuple[CaseEvent, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    @property
    def undeliverable(self) -> bool:
        return any(e.delivery == "undeliverable" for e in self.events)


def _case(row: CaseRow, events: list[CaseEventRow] | None = None) -> Case:
    return Case(
        row.id,
        row.number,
        row.channel,
        row.user_id,
        row.status,
        row.assignee,
        row.program,
        row.reason,
        dict(row.summary or {}),
        row.first_question,
        row.personal,
        _aware(row.opened_at),
        _aware(row.taken_at) if row.taken_at else None,
        _aware(row.first_reply_at) if row.first_reply_at else None,
        _aware(row.closed_at) if row.closed_at else None,
        row.resolution,
        tuple(
            CaseEvent(e.id, _aware(e.time), e.kind, e.actor, e.text, e.entry_id, e.delivery)
            for e in events or []
        ),
    )


class CaseError(Exception):
    """A staff action that cannot be done (closed case, empty reply …); the message says why."""


# -- inside a user's update (Store.run_update) ------------------------------------------------


def open_case_of(unit: UpdateUnit) -> Case | None:
    row = unit.session.scalars(
        select(CaseRow)
        .where(CaseRow.channel == unit.channel, CaseRow.user_id == unit.user_id, CaseRow.status == OPEN)
        .order_by(CaseRow.id.desc())
        .limit(1)
    ).first()
    return _case(row) if row is not None else None


def remember_calculation(unit: UpdateUnit, result: dict[str, Any]) -> None:
    row = unit.session.get(CaseContextRow, (unit.channel, unit.user_id))
    if row is None:
        unit.session.add(
            CaseContextRow(channel=unit.channel, user_id=unit.user_id, time=utcnow(), calculation=result)
        )
    else:
        row.time, row.calculation = utcnow(), result


def last_calculation(unit: UpdateUnit) -> dict[str, Any] | None:
    row = unit.session.get(CaseContextRow, (unit.channel, unit.user_id))
    return dict(row.calculation) if row is not None and row.calculation else None


def recent_turns(unit: UpdateUnit, limit: int = 5) -> list[tuple[str, str, str | None]]:
    """The user's last questions from the (masked) query log: (text, status, entry id), oldest first."""
    rows = unit.session.execute(
        select(QueryLog.text, QueryLog.status, QueryLog.entry_id)
        .where(
            QueryLog.user_hash == unit.store.user_hash(unit.channel, unit.user_id),
            QueryLog.status.in_(("answered", "no_match", "clarify", "dialog")),
        )
        .order_by(QueryLog.id.desc())
        .limit(limit)
    ).all()
    return [(str(r.text), str(r.status), r.entry_id) for r in reversed(rows)]


def create_case(
    unit: UpdateUnit,
    *,
    program: str | None,
    reason: str,
    summary: dict[str, Any],
    first_question: str | None,
    personal: str | None,
    settings: CaseSettings,
    program_label: str | None = None,
    attempts: int = 8,
) -> Case:
    """A new open case for the unit's chat, with a fresh number (another on a collision)."""
    now = utcnow()
    for _ in range(attempts):
        number = handoff.new_case_number()
        taken = unit.session.scalar(select(CaseRow.id).where(CaseRow.number == number))
        if taken is not None:
            continue
        row = CaseRow(
            number=number,
            channel=unit.channel,
            user_id=unit.user_id,
            status=OPEN,
            program=program,
            reason=reason,
            summary=summary,
            first_question=mask(first_question)[:500] if first_question else None,
            personal=clean_text(personal)[: handoff.MAX_DETAILS] if personal else None,
            personal_until=now + timedelta(days=settings.case_retention_days) if personal else None,
            opened_at=now,
        )
        unit.session.add(row)
        unit.session.flush()
        unit.session.add(CaseEventRow(case_id=row.id, time=now, kind="opened", actor=None, text=reason))
        if settings.staff_chat_id is not None:
            label = program_label or "制度未指定"
            notice = f"新しいお問い合わせ {number}（{label}・{handoff.REASONS.get(reason, reason)}）"
            unit.session.add(
                ProcessedUpdate(
                    source=CASE_SOURCE,
                    update_id=-row.id,
                    time=now,
                    chat=str(settings.staff_chat_id),
                    outbox=[{"method": "sendMessage", "text": html.escape(notice, quote=False)}],
                    sent=0,
                    pending=True,
                )
            )
        return _case(row)
    raise StoreError("could not find a free case number")  # pragma: no cover - 64 million numbers


def attach(unit: UpdateUnit, case_id: int, kind: str, text: str, entry_id: str | None = None) -> None:
    """One transcript line (masked)."""
    unit.session.add(
        CaseEventRow(
            case_id=case_id,
            time=utcnow(),
            kind=kind,
            text=mask(clean_text(text))[:4000],
            entry_id=entry_id,
        )
    )


def take_unshown(unit: UpdateUnit, case_number: str) -> list[str]:
    """Messages for the user of a chat without push (the terminal chat): shown now, once."""
    case_id = unit.session.scalar(select(CaseRow.id).where(CaseRow.number == case_number))
    if case_id is None:
        return []
    rows = unit.session.scalars(
        select(CaseEventRow)
        .where(CaseEventRow.case_id == case_id, CaseEventRow.delivery == "pending")
        .order_by(CaseEventRow.id)
        .with_for_update()
    ).all()
    for row in rows:
        row.delivery = "shown"
    return [row.text or "" for row in rows]


def case_by_number_in(unit: UpdateUnit, number: str) -> Case | None:
    row = unit.session.scalars(select(CaseRow).where(CaseRow.number == number)).first()
    return _case(row) if row is not None else None


def expire_if_due(unit: UpdateUnit, case: Case, settings: CaseSettings) -> bool:
    """Expire the chat's own case when nobody took it in time (channels without a sweeper see it
    at their next turn); True when it was expired now."""
    now = utcnow()
    if not case.is_open or case.assignee is not None:
        return False
    if now - case.opened_at < timedelta(hours=settings.case_expire_hours):
        return False
    row = unit.session.get(CaseRow, case.id)
    if row is None or row.status != OPEN:
        return False
    row.status, row.closed_at = "expired", now
    unit.session.add(CaseEventRow(case_id=case.id, time=now, kind="expired"))
    unit.session.add(
        CaseEventRow(
            case_id=case.id,
            time=now,
            kind="notice",
            text=handoff.expired_text(case.number),
            delivery="pending",
        )
    )
    return True


def end_case(unit: UpdateUnit, case_id: int, status: str) -> None:
    """The user ended it (/cancel)."""
    now = utcnow()
    unit.session.execute(
        update(CaseRow)
        .where(CaseRow.id == case_id, CaseRow.status == OPEN)
        .values(status=status, closed_at=now)
    )
    unit.session.add(CaseEventRow(case_id=case_id, time=now, kind=status, actor=None, text=None))


# -- staff side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    total: int
    open: int
    by_reason: dict[str, int]
    first_reply_minutes: float | None  # median over cases with a staff reply
    gaps: list[tuple[str, str]]  # (case number, first question) of closed cases


class Cases:
    """What staff do with cases (console, `kounen cases`), each action one transaction."""

    def __init__(self, store: Store, settings: CaseSettings | None = None) -> None:
        self.store = store
        self.settings = settings or CaseSettings()

    def _session(self, what: str) -> Any:
        return self.store._session(what)

    def list(
        self, view: str = "open", staff: str | None = None, number: str | None = None, limit: int = 200
    ) -> list[Case]:
        """open: not closed; mine: open and taken by `staff`; closed: closed, expired, cancelled."""
        query = select(CaseRow).order_by(CaseRow.id.desc()).limit(limit)
        if number:
            query = query.where(CaseRow.number == handoff.normal_case_number(number))
        elif view == "mine":
            query = query.where(CaseRow.status == OPEN, CaseRow.assignee == staff)
        elif view == "closed":
            query = query.where(CaseRow.status.in_(CLOSED_STATES))
        else:
            query = query.where(CaseRow.status == OPEN)
        with self._session("reading cases") as session:
            return [_case(row) for row in session.scalars(query).all()]

    def get(self, number: str, viewer: str | None = None) -> Case | None:
        """The case with its events; `viewer` records a 'viewed' action."""
        with self._session("reading a case") as session:
            row = session.scalars(select(CaseRow).where(CaseRow.number == number)).first()
            if row is None:
                return None
            if viewer is not None:
                last = session.scalars(
                    select(CaseEventRow)
                    .where(CaseEventRow.case_id == row.id)
                    .order_by(CaseEventRow.id.desc())
                    .limit(1)
                ).first()
                again = (
                    last is not None
                    and last.kind == "viewed"
                    and last.actor == viewer[:64]
                    and utcnow() - _aware(last.time) < VIEW_AGAIN
                )
                if not again:  # one line per look, not one per reload
                    session.add(CaseEventRow(case_id=row.id, time=utcnow(), kind="viewed", actor=viewer[:64]))
                    session.flush()
            events = session.scalars(
                select(CaseEventRow).where(CaseEventRow.case_id == row.id).order_by(CaseEventRow.id)
            ).all()
            return _case(row, list(events))

    def latest_id(self) -> int:
        with self._session("reading cases") as session:
            return int(session.scalar(select(func.max(CaseRow.id))) or 0)

    def _locked(self, session: Session, number: str) -> CaseRow:
        row = session.scalars(select(CaseRow).where(CaseRow.number == number).with_for_update()).first()
        if row is None:
            raise CaseError("この受付番号のお問い合わせはありません。")
        return row

    def assign(self, number: str, staff: str) -> None:
        with self._session("assigning a case") as session:
            row = self._locked(session, number)
            if row.status != OPEN:
                raise CaseError("終了したお問い合わせは担当できません。")
            row.assignee, row.taken_at = staff[:64], row.taken_at or utcnow()
            session.add(CaseEventRow(case_id=row.id, time=utcnow(), kind="assigned", actor=staff[:64]))

    def _to_user(self, session: Session, row: CaseRow, kind: str, text: str, actor: str | None) -> int:
        event = CaseEventRow(
            case_id=row.id, time=utcnow(), kind=kind, actor=actor, text=text, delivery="pending"
        )
        session.add(event)
        session.flush()
        if row.channel == "telegram":
            session.add(
                ProcessedUpdate(
                    source=CASE_SOURCE,
                    update_id=event.id,
                    time=utcnow(),
                    chat=row.user_id,
                    outbox=[
                        {
                            "method": "sendMessage",
                            "text": html.escape(text, quote=False),
                            "case_event": event.id,
                        }
                    ],
                    sent=0,
                    pending=True,
                )
            )
        return event.id

    def reply(self, number: str, staff: str, text: str) -> int:
        """A staff message to the user, delivered exactly once; the event id."""
        message = handoff.staff_message(clean_text(text))
        problem = reply_problem(text)
        if problem:
            raise CaseError(problem)
        with self._session("sending a staff reply") as session:
            row = self._locked(session, number)
            if row.status != OPEN:
                raise CaseError("終了したお問い合わせには返信できません。")
            now = utcnow()
            if row.assignee is None:
                row.assignee, row.taken_at = staff[:64], now
                session.add(CaseEventRow(case_id=row.id, time=now, kind="assigned", actor=staff[:64]))
            row.first_reply_at = row.first_reply_at or now
            return self._to_user(session, row, "staff", message, staff[:64])

    def close(self, number: str, staff: str, note: str) -> None:
        note = clean_text(note).strip()
        if not note:
            raise CaseError("対応結果（メモ）を入力してください。")
        with self._session("closing a case") as session:
            row = self._locked(session, number)
            if row.status != OPEN:
                raise CaseError("このお問い合わせはすでに終了しています。")
            now = utcnow()
            row.status, row.closed_at, row.resolution = "closed", now, note[:2000]
            row.assignee = row.assignee or staff[:64]
            session.add(
                CaseEventRow(case_id=row.id, time=now, kind="closed", actor=staff[:64], text=note[:2000])
            )
            self._to_user(session, row, "notice", handoff.closed_text(row.number, None), None)

    def expire_due(self, now: datetime | None = None) -> int:
        """Close open cases nobody has taken for KOUNEN_CASE_EXPIRE_HOURS, telling the user."""
        now = now or utcnow()
        cutoff = now - timedelta(hours=self.settings.case_expire_hours)
        with self._session("expiring cases") as session:
            rows = session.scalars(
                select(CaseRow)
                .where(CaseRow.status == OPEN, CaseRow.assignee.is_(None), CaseRow.opened_at < cutoff)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                row.status, row.closed_at = "expired", now
                session.add(CaseEventRow(case_id=row.id, time=now, kind="expired"))
                self._to_user(session, row, "notice", handoff.expired_text(row.number), None)
            return len(rows)

    def purge_personal(self, now: datetime | None = None) -> int:
        """Erase what users gave for their cases once its retention has passed."""
        now = now or utcnow()
        with self._session("erasing personal data of old cases") as session:
            result = session.execute(
                update(CaseRow)
                .where(CaseRow.personal_until.is_not(None), CaseRow.personal_until < now)
                .values(personal=None, personal_until=None)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def housekeeping(self) -> None:
        try:
            self.expire_due()
            self.purge_personal()
        except (StoreError, IntegrityError):
            pass  # the next round tries again

    def mark_delivery(self, event_id: int, delivery: str) -> None:
        with self._session("recording a delivery") as session:
            session.execute(
                update(CaseEventRow)
                .where(CaseEventRow.id == event_id, CaseEventRow.delivery == "pending")
                .values(delivery=delivery)
            )

    def stats(self, start: datetime, end: datetime) -> Stats:
        with self._session("reading case figures") as session:
            rows = session.scalars(
                select(CaseRow)
                .where(CaseRow.opened_at >= start, CaseRow.opened_at < end)
                .order_by(CaseRow.id)
            ).all()
            cases = [_case(r) for r in rows]
        by_reason: dict[str, int] = {}
        for case in cases:
            by_reason[case.reason] = by_reason.get(case.reason, 0) + 1
        waits = sorted(
            (c.first_reply_at - c.opened_at).total_seconds() / 60 for c in cases if c.first_reply_at
        )
        median = None
        if waits:
            middle = len(waits) // 2
            median = waits[middle] if len(waits) % 2 else (waits[middle - 1] + waits[middle]) / 2
        gaps = [
            (c.number, c.first_question)
            for c in cases
            if c.status == "closed" and c.first_question is not None
        ]
        return Stats(len(cases), sum(c.is_open for c in cases), by_reason, median, gaps)


def reply_problem(text: str) -> str | None:
    """Why a staff reply cannot be sent, or None: empty, or over Telegram's 4,096 UTF-16 units
    once the staff prefix is added."""
    if not text.strip():
        return "返信が空です。"
    length = len(handoff.staff_message(clean_text(text)).encode("utf-16-le")) // 2
    if length > MAX_REPLY_TEXT:
        over = length - MAX_REPLY_TEXT
        return (
            f"返信が長すぎます（見出し「{handoff.STAFF_PREFIX.strip()}」を含めて {length} 文字、上限 {MAX_REPLY_TEXT} 文字。"
            f"{over} 文字減らしてください。絵文字などは2文字と数えます）。"
        )
    return None
