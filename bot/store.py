"""Persistence: conversation state, the query log and answer feedback (SQLAlchemy 2.0).

`Store.open(url)` accepts any SQLAlchemy URL (a SQLite file by default,
PostgreSQL via psycopg 3) and applies the Alembic migrations in
bot/migrations to head before returning, so a fresh database needs no set-up.
Concurrent start-ups are serialised (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
advisory lock held for the migration transaction).

Conversations use optimistic concurrency: `load` returns a version, `save`
writes only if the row still has that version (or, for a new conversation,
if no row exists yet) and raises `ConcurrentUpdate` otherwise, so two
processes sharing a database never overwrite each other's turn unnoticed.

An update from a channel is one transaction (`run_update`): the conversation is read and
locked (PostgreSQL: SELECT ... FOR UPDATE; SQLite: the turn runs again if another writer
overtook its read), saved, the turn logged, and the update id claimed together with the
messages to send (the outbox); `outbox` then hands them out in order to be marked sent.

Text written to the log is masked (bot.masking) and user ids are stored only
as salted hashes.  Every failure of the database surfaces as `StoreError`
with a one-line message.

A new revision after a model change (reviewed before committing):
    from alembic import command
    from bot.store import alembic_config
    command.revision(alembic_config("sqlite:////tmp/rev.db"), "what changed", autogenerate=True)
(run `command.upgrade(cfg, "head")` on that empty database first.)
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    false,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from bot.masking import hash_user, mask
from bot.settings import DEFAULT_HASH_SALT

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS = "bot:migrations"
MAX_TEXT = 2000  # characters of user text kept in the log
MAX_CHANNEL = 32
MAX_USER_ID = 128
_PG_MIGRATION_LOCK = 0x6B6F756E656E  # "kounen": key of the advisory lock taken while migrating
POOL_SIZE = 12  # PostgreSQL connections kept per process (see create_store_engine)
POOL_OVERFLOW = 4
PROCESSED_UPDATES_KEPT_DAYS = 7  # how long an update id is remembered to drop its redeliveries


class StoreError(Exception):
    """The database cannot be used; the message is one line for the user."""


class ConcurrentUpdate(StoreError):
    """Another writer saved this conversation since it was loaded: reload and try again."""


# -- schema ---------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "user_id", name="uq_conversations_channel_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(MAX_CHANNEL))
    user_id: Mapped[str] = mapped_column(String(MAX_USER_ID))
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    program: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QueryLog(Base):
    __tablename__ = "query_log"
    __table_args__ = (Index("ix_query_log_time", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str] = mapped_column(String(32))
    user_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    entry_id: Mapped[str | None] = mapped_column(String(128))
    score: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_entry_id", "entry_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str] = mapped_column(String(32))
    user_hash: Mapped[str] = mapped_column(String(64))
    entry_id: Mapped[str] = mapped_column(String(128))
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    query_id: Mapped[int | None] = mapped_column(ForeignKey("query_log.id", ondelete="SET NULL"))


class ProcessedUpdate(Base):
    """An update (Telegram update_id) whose effects are committed, and its outbox.

    The row is written in the transaction that saves the conversation and logs the turn, so
    "handled" and "its effects" are one fact.  `outbox` holds the messages to send to `chat`
    (JSON, in order); `sent` counts those delivered, and `pending` is true while some are left.
    """

    __tablename__ = "processed_updates"
    __table_args__ = (
        Index("ix_processed_updates_time", "time"),
        Index(
            "ix_processed_updates_pending",
            "source",
            "chat",
            postgresql_where=text("pending"),
            sqlite_where=text("pending"),
        ),
    )

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    chat: Mapped[str | None] = mapped_column(String(64))
    outbox: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    sent: Mapped[int] = mapped_column(Integer, server_default="0")
    pending: Mapped[bool] = mapped_column(Boolean, server_default=false())


class SendBudget(Base):
    """The bot's shared send budget (PostgreSQL): the time (database clock, seconds since the
    epoch) from which the next message may go; each committed update moves it on by its
    messages / rate (see `Store.run_update`)."""

    __tablename__ = "send_budget"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_at: Mapped[float] = mapped_column(Float)


class SharedSecret(Base):
    """A secret every process on this database must agree on (e.g. the console's cookie key)."""

    __tablename__ = "shared_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginFailure(Base):
    """Failed console logins per throttle key (a digest: no name or address in clear)."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch


# -- records returned to callers ------------------------------------------------------


@dataclass(frozen=True)
class ConversationRecord:
    state: dict[str, Any] | None
    program: str | None
    version: int  # 0: nothing stored yet
    updated_at: datetime | None = None


@dataclass(frozen=True)
class QueryRecord:
    id: int
    time: datetime
    channel: str
    user_hash: str
    status: str
    entry_id: str | None
    score: float | None
    text: str


@dataclass(frozen=True)
class FeedbackRecord:
    id: int
    time: datetime
    channel: str
    user_hash: str
    entry_id: str
    helpful: bool
    comment: str | None


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; everything stored here is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def clean_text(value: str) -> str:
    """Text any database accepts: no NUL (PostgreSQL refuses it), no lone surrogates."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _clip(value: str, limit: int = MAX_TEXT) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


# -- engine and migrations ------------------------------------------------------------


def safe_url(url: str | URL) -> str:
    """The URL for messages: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    message = str(orig if orig is not None else exc).strip()
    first = next((line.strip() for line in message.splitlines() if line.strip()), type(exc).__name__)
    return first


def alembic_config(url: str | URL | None = None) -> Config:
    """Alembic configuration without an ini file: migrations live in bot/migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        rendered = make_url(url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return cfg


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_store_engine(url: URL) -> Engine:
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {
        "json_serializer": lambda obj: json.dumps(obj, ensure_ascii=False),
        # No ping on every checkout (a round trip per transaction): a connection the server
        # dropped fails its statement, SQLAlchemy discards the pool, and the update is retried.
        "pool_pre_ping": False,
    }
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        if _is_memory_sqlite(url):
            kwargs["poolclass"] = StaticPool
    elif backend == "postgresql":
        # Sized for a worker's service threads plus the outbox senders that hold a lock each.
        kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_recycle=1800)
        if "connect_timeout" not in url.query:
            kwargs["connect_args"] = {"connect_timeout": 10}
    engine = create_engine(url, **kwargs)
    if backend == "sqlite" and not _is_memory_sqlite(url):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA busy_timeout=30000")  # writers wait for each other
                _use_wal(cursor)
            finally:
                cursor.close()

    return engine


def _use_wal(cursor: Any, attempts: int = 50) -> None:
    """WAL (readers do not block the writer), set once per database file.

    Switching needs a lock SQLite does not wait for, so a start-up racing another
    one's migration retries for a while, then carries on in the default journal mode.
    """
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    for _ in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            time.sleep(0.1)
    log.info("SQLite database busy: staying in the default journal mode for now")


def migrate(engine: Engine) -> None:
    """Apply the migrations to head, one process at a time."""
    cfg = alembic_config()
    with engine.connect() as connection:
        backend = engine.dialect.name
        if backend == "sqlite":
            # Take the write lock before looking at alembic_version; DDL then runs in this transaction.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif backend == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
        connection.commit()


# -- the statements of the update path, built once ------------------------------------------
# (Built per call they cost more CPU than the database: SQLAlchemy coerces every clause again.
# Executed as Core statements with parameters, they hit the compiled cache.)

_CONV = cast(Table, Conversation.__table__)
_LOG = cast(Table, QueryLog.__table__)
_FEEDBACK = cast(Table, Feedback.__table__)
_UPDATES = cast(Table, ProcessedUpdate.__table__)
_LOAD_FOR_UPDATE = (
    select(_CONV.c.state, _CONV.c.program, _CONV.c.version, _CONV.c.updated_at)
    .where(_CONV.c.channel == bindparam("k_channel"), _CONV.c.user_id == bindparam("k_user"))
    .with_for_update()
)
_INSERT_CONV = insert(_CONV)
_UPDATE_CONV = (
    update(_CONV)
    .where(
        _CONV.c.channel == bindparam("k_channel"),
        _CONV.c.user_id == bindparam("k_user"),
        _CONV.c.version == bindparam("k_version"),
    )
    .values(
        state=bindparam("v_state"),
        program=bindparam("v_program"),
        version=bindparam("v_version"),
        updated_at=bindparam("v_updated_at"),
    )
)
_INSERT_LOG = insert(_LOG)
_INSERT_FEEDBACK = insert(_FEEDBACK)
_CLAIM = {
    "postgresql": pg_insert(_UPDATES).on_conflict_do_nothing().returning(_UPDATES.c.update_id),
    "sqlite": sqlite_insert(_UPDATES).on_conflict_do_nothing().returning(_UPDATES.c.update_id),
}
# The claim that also takes the update's messages from the bot's send budget (PostgreSQL): a
# virtual schedule, next_at moving on by n / rate, never further back than `burst` messages.
_CLAIM_WITH_BUDGET = text(
    """
    WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now),
    slot AS (
        INSERT INTO send_budget (source, next_at)
        SELECT :source, now + :n / :rate FROM clock
        ON CONFLICT (source) DO UPDATE SET next_at =
            greatest(send_budget.next_at, (SELECT now FROM clock) - :burst / :rate) + :n / :rate
        RETURNING next_at
    )
    INSERT INTO processed_updates (source, update_id, time, chat, outbox, sent, pending)
    VALUES (:source, :update_id, :time, :chat, CAST(:outbox AS json), :sent, :pending)
    ON CONFLICT DO NOTHING
    RETURNING update_id, (SELECT next_at FROM slot) - :n / :rate - (SELECT now FROM clock) AS start
    """
)
_UNSENT = (
    select(_UPDATES.c.update_id, _UPDATES.c.outbox, _UPDATES.c.sent)
    .where(
        _UPDATES.c.source == bindparam("k_source"),
        _UPDATES.c.chat == bindparam("k_chat"),
        _UPDATES.c.pending.is_(True),
    )
    .order_by(_UPDATES.c.update_id)
)
_UNSENT_LOCKED = _UNSENT.with_for_update()
_MARK_SENT = (
    update(_UPDATES)
    .where(_UPDATES.c.source == bindparam("k_source"), _UPDATES.c.update_id == bindparam("k_update"))
    .values(sent=bindparam("v_sent"), pending=bindparam("v_pending"))
)
_MARK_DONE = (
    update(_UPDATES)
    .where(_UPDATES.c.source == bindparam("k_source"), _UPDATES.c.update_id == bindparam("k_update"))
    .values(sent=bindparam("v_sent"), pending=False, outbox=None)
)


# -- the store ------------------------------------------------------------------------


class Store:
    """Conversation state, query log and feedback in one SQL database."""

    def __init__(self, engine: Engine, salt: str = DEFAULT_HASH_SALT) -> None:
        self.engine = engine
        self._salt = salt
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str | URL, *, salt: str = DEFAULT_HASH_SALT, migrate_schema: bool = True) -> Store:
        """Connect to `url` and bring the schema to head.  Raises `StoreError` with one line."""
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StoreError(
                f"invalid database URL {str(url)!r}: expected e.g. sqlite:///path/to/kounen.db "
                "or postgresql+psycopg://user@host:5432/dbname"
            ) from None
        try:
            engine = create_store_engine(parsed)
        except NoSuchModuleError:
            raise StoreError(
                f"unsupported database URL {safe_url(parsed)}: no SQLAlchemy dialect/driver "
                f"{parsed.drivername!r} (use sqlite:/// or postgresql+psycopg://)"
            ) from None
        except (ArgumentError, ImportError, TypeError) as exc:
            raise StoreError(f"cannot use database URL {safe_url(parsed)}: {_one_line(exc)}") from None
        try:
            if migrate_schema:
                migrate(engine)
            else:
                with engine.connect():
                    pass
        except (SQLAlchemyError, OSError) as exc:
            engine.dispose()
            raise StoreError(f"cannot open database {safe_url(parsed)}: {_one_line(exc)}") from None
        except Exception as exc:  # alembic reports a database ahead of this code as a plain error
            engine.dispose()
            raise StoreError(
                f"cannot migrate database {safe_url(parsed)}: {type(exc).__name__}: {_one_line(exc)}"
            ) from None
        return cls(engine, salt)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return safe_url(self.engine.url)

    @contextmanager
    def _session(self, what: str, conflict: str | None = None) -> Iterator[Session]:
        """A transaction; database errors become `StoreError` (`ConcurrentUpdate` with `conflict`)."""
        try:
            with self._sessions() as session, session.begin():
                yield session
        except IntegrityError as exc:
            if conflict is not None:
                raise ConcurrentUpdate(conflict) from None
            raise StoreError(f"database error while {what} ({self.url}): {_one_line(exc)}") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"database error while {what} ({self.url}): {_one_line(exc)}") from None

    @staticmethod
    def _check_key(channel: str, user_id: str) -> None:
        if not 0 < len(channel) <= MAX_CHANNEL or not 0 < len(user_id) <= MAX_USER_ID:
            raise StoreError(
                f"a conversation needs a channel of 1-{MAX_CHANNEL} and a user id of 1-{MAX_USER_ID} characters"
            )

    def user_hash(self, channel: str, user_id: str) -> str:
        return hash_user(self._salt, channel, user_id)

    # -- conversations -------------------------------------------------------------

    def load(self, channel: str, user_id: str) -> ConversationRecord:
        self._check_key(channel, user_id)
        with self._session("loading a conversation") as session:
            row = session.execute(
                select(
                    Conversation.state, Conversation.program, Conversation.version, Conversation.updated_at
                ).where(Conversation.channel == channel, Conversation.user_id == user_id)
            ).one_or_none()
        if row is None:
            return ConversationRecord(None, None, 0)
        return ConversationRecord(row.state, row.program, row.version, _aware(row.updated_at))

    def save(
        self,
        channel: str,
        user_id: str,
        state: dict[str, Any] | None,
        program: str | None,
        expected_version: int,
    ) -> int:
        """Write the conversation if it is still at `expected_version` (0: not stored yet).

        Returns the new version; raises `ConcurrentUpdate` when another writer got there first.
        """
        self._check_key(channel, user_id)
        now = utcnow()
        new_version = expected_version + 1
        who = f"conversation {channel}/{user_id}"
        with self._session(
            "saving a conversation", conflict=f"{who} was created by another writer"
        ) as session:
            if expected_version == 0:
                session.execute(
                    insert(Conversation).values(
                        channel=channel,
                        user_id=user_id,
                        state=state,
                        program=program,
                        version=new_version,
                        updated_at=now,
                    )
                )
            else:
                result = session.execute(
                    update(Conversation)
                    .where(
                        Conversation.channel == channel,
                        Conversation.user_id == user_id,
                        Conversation.version == expected_version,
                    )
                    .values(state=state, program=program, version=new_version, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if getattr(result, "rowcount", 0) != 1:
                    raise ConcurrentUpdate(f"{who} changed since version {expected_version}")
        return new_version

    # -- query log and feedback ----------------------------------------------------

    def log_query(
        self,
        channel: str,
        user_id: str,
        text: str,
        status: str,
        entry_id: str | None = None,
        score: float | None = None,
    ) -> int:
        """Record one turn; the text is masked and the user id hashed.  Returns the row id."""
        row = QueryLog(
            time=utcnow(),
            channel=channel,
            user_hash=self.user_hash(channel, user_id),
            status=status,
            entry_id=entry_id,
            score=score,
            text=_clip(mask(clean_text(text))),
        )
        with self._session("logging a query") as session:
            session.add(row)
            session.flush()
            return row.id

    def add_feedback(
        self,
        channel: str,
        user_id: str,
        entry_id: str,
        helpful: bool,
        comment: str | None = None,
        query_id: int | None = None,
    ) -> int:
        row = Feedback(
            time=utcnow(),
            channel=channel,
            user_hash=self.user_hash(channel, user_id),
            entry_id=entry_id,
            helpful=helpful,
            comment=_clip(mask(clean_text(comment))) if comment else None,
            query_id=query_id,
        )
        with self._session("saving feedback") as session:
            session.add(row)
            session.flush()
            return row.id

    def recent_queries(self, limit: int = 50, channel: str | None = None) -> list[QueryRecord]:
        """The latest log rows, newest first."""
        query = select(QueryLog).order_by(QueryLog.id.desc()).limit(limit)
        if channel is not None:
            query = query.where(QueryLog.channel == channel)
        with self._session("reading the query log") as session:
            rows = session.scalars(query).all()
            return [
                QueryRecord(
                    r.id, _aware(r.time), r.channel, r.user_hash, r.status, r.entry_id, r.score, r.text
                )
                for r in rows
            ]

    def recent_feedback(self, limit: int = 50) -> list[FeedbackRecord]:
        with self._session("reading feedback") as session:
            rows = session.scalars(select(Feedback).order_by(Feedback.id.desc()).limit(limit)).all()
            return [
                FeedbackRecord(r.id, _aware(r.time), r.channel, r.user_hash, r.entry_id, r.helpful, r.comment)
                for r in rows
            ]

    # -- one update, one transaction; the outbox ----------------------------------------

    def run_update(
        self,
        channel: str,
        user_id: str,
        work: Callable[[UpdateUnit], T],
        *,
        source: str | None = None,
        update_id: int | None = None,
        attempts: int = 10,
        budget: tuple[float, float] | None = None,
    ) -> Handled[T]:
        """Run `work` in one transaction and commit what it did as one fact.

        `work` reads the conversation through the unit (the row stays locked until commit on
        PostgreSQL, so one chat's turns never interleave across workers), saves it, logs the
        turn, stores feedback and queues messages.  With `source` and `update_id` the update is
        claimed in the same transaction: when it was already committed (a redelivery), nothing
        of this run is kept and `Handled.fresh` is False.  A conflicting writer makes `work` run
        again on the fresh state, up to `attempts` times; then `ConcurrentUpdate`.
        `budget` (messages per second, burst): see `_claim`; `Handled.send_delay` says how long
        the first queued message must wait.
        Any database failure is a `StoreError` and nothing is kept.
        """
        self._check_key(channel, user_id)
        for attempt in range(1, attempts + 1):
            try:
                with self._sessions() as session, session.begin():
                    unit = UpdateUnit(self, session, channel, user_id)
                    result = work(unit)
                    delay: float | None = 0.0
                    if source is not None and update_id is not None:
                        delay = self._claim(session, source, update_id, unit, budget)
                        if delay is None:
                            raise _Redelivered
                    elif unit.outbox:
                        raise StoreError("messages queued without an update to send them from")
                if update_id is not None and update_id % 500 == 0:
                    self._forget_old_updates()
                return Handled(True, result, delay or 0.0)
            except _Redelivered:
                return Handled(False, None, 0.0)
            except (ConcurrentUpdate, IntegrityError, OperationalError) as exc:
                if isinstance(exc, OperationalError) and not _stale_sqlite_read(exc):
                    raise StoreError(
                        f"database error while handling an update ({self.url}): {_one_line(exc)}"
                    ) from None
                if attempt == attempts:
                    raise ConcurrentUpdate(f"conversation {channel}/{user_id} kept changing: {exc}") from None
                log.info("conversation %s/%s changed concurrently; running the turn again", channel, user_id)
                time.sleep(random.uniform(0, 0.01 * attempt))  # racing writers fall out of step
            except SQLAlchemyError as exc:
                raise StoreError(
                    f"database error while handling an update ({self.url}): {_one_line(exc)}"
                ) from None
        raise ConcurrentUpdate(f"conversation {channel}/{user_id} kept changing")  # pragma: no cover

    def _claim(
        self,
        session: Session,
        source: str,
        update_id: int,
        unit: UpdateUnit,
        budget: tuple[float, float] | None,
    ) -> float | None:
        """Insert the update's row (with its outbox); None when it is already there.

        With `budget` (messages per second, burst) on PostgreSQL the same statement takes the
        outbox's messages from the bot's shared send budget and returns how many seconds from
        now the first of them may go (0.0 otherwise)."""
        values = {
            "source": source,
            "update_id": update_id,
            "time": utcnow(),
            "chat": unit.user_id,
            "outbox": unit.outbox or None,
            "sent": 0,
            "pending": bool(unit.outbox),
        }
        if budget is not None and unit.outbox and self.engine.dialect.name == "postgresql":
            rate, burst = budget
            row = (
                session.connection()
                .execute(
                    _CLAIM_WITH_BUDGET,
                    values
                    | {
                        "outbox": json.dumps(unit.outbox, ensure_ascii=False),
                        "n": len(unit.outbox),
                        "rate": float(rate),
                        "burst": float(burst),
                    },
                )
                .first()
            )
            if row is None:
                return None
            return max(0.0, float(row.start))
        statement = _CLAIM["postgresql" if self.engine.dialect.name == "postgresql" else "sqlite"]
        return 0.0 if session.connection().execute(statement, values).first() is not None else None

    def _forget_old_updates(self) -> None:
        cutoff = utcnow() - timedelta(days=PROCESSED_UPDATES_KEPT_DAYS)
        try:
            with self._session("forgetting old update ids") as session:
                session.execute(
                    delete(ProcessedUpdate).where(
                        ProcessedUpdate.time < cutoff, ProcessedUpdate.pending.is_(False)
                    )
                )
        except StoreError as exc:  # only housekeeping: the next round tries again
            log.warning("%s", exc)

    def is_handled(self, source: str, update_id: int) -> bool:
        with self._session("reading an update") as session:
            row = session.execute(
                select(ProcessedUpdate.update_id).where(
                    ProcessedUpdate.source == source, ProcessedUpdate.update_id == update_id
                )
            ).one_or_none()
        return row is not None

    def outbox(self, source: str, chat: str) -> OutboxBatch:
        """The unsent messages of one chat, to send in order (see OutboxBatch)."""
        return OutboxBatch(self, source, chat)

    # -- what several processes share: secrets, the login throttle --------------------------

    def shared_secret(self, name: str, make: Callable[[], str]) -> str:
        """The secret called `name`, made with `make` by whichever process asks first."""
        values = {"name": name, "value": make(), "created": utcnow()}
        with self._session("reading a shared secret") as session:
            if self.engine.dialect.name == "postgresql":
                statement: Any = pg_insert(SharedSecret).values(values).on_conflict_do_nothing()
            else:
                statement = sqlite_insert(SharedSecret).values(values).on_conflict_do_nothing()
            session.execute(statement)
            return str(
                session.execute(select(SharedSecret.value).where(SharedSecret.name == name)).scalar_one()
            )

    def login_failures(self, keys: list[str]) -> dict[str, tuple[int, float]]:
        """key -> (failures, time of the last one) for the keys that have any."""
        with self._session("reading login failures") as session:
            rows = session.execute(
                select(LoginFailure.key, LoginFailure.failures, LoginFailure.last_at).where(
                    LoginFailure.key.in_(keys)
                )
            ).all()
        return {row.key: (int(row.failures), float(row.last_at)) for row in rows}

    def record_login_failure(self, keys: list[str], now: float, forget_before: float) -> None:
        """One more failure for each key (a count older than `forget_before` starts again)."""
        with self._session("recording a login failure") as session:
            for key in keys:
                if self.engine.dialect.name == "postgresql":
                    base: Any = pg_insert(LoginFailure)
                else:
                    base = sqlite_insert(LoginFailure)
                statement = base.values(key=key, failures=1, last_at=now)
                fresh = LoginFailure.last_at < forget_before
                session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[LoginFailure.key],
                        set_={
                            "failures": case((fresh, 1), else_=LoginFailure.failures + 1),
                            "last_at": now,
                        },
                    )
                )
            session.execute(delete(LoginFailure).where(LoginFailure.last_at < forget_before))

    def clear_login_failures(self, keys: list[str]) -> None:
        with self._session("clearing login failures") as session:
            session.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys)))

    def pause_sends(self, source: str, seconds: float) -> None:
        """Nothing more from the shared send budget for `seconds` (Telegram answered 429)."""
        if self.engine.dialect.name != "postgresql":
            return
        with self._session("pausing the send budget") as session:
            session.execute(
                text(
                    "UPDATE send_budget SET next_at = greatest(next_at, "
                    "extract(epoch FROM clock_timestamp())::float8 + :seconds) WHERE source = :source"
                ),
                {"source": source, "seconds": float(seconds)},
            )

    def chats_with_unsent(self, source: str, older_than: float = 0.0) -> list[str]:
        """Chats whose committed messages are not all sent (a send failed, or its worker died)."""
        cutoff = utcnow() - timedelta(seconds=older_than)
        with self._session("reading the outbox") as session:
            rows = session.execute(
                select(ProcessedUpdate.chat)
                .where(
                    ProcessedUpdate.source == source,
                    ProcessedUpdate.pending.is_(True),
                    ProcessedUpdate.time <= cutoff,
                )
                .distinct()
            ).all()
        return [str(row.chat) for row in rows if row.chat is not None]


def _stale_sqlite_read(exc: OperationalError) -> bool:
    """SQLite refuses the write of a transaction whose reads another writer has overtaken
    (SQLITE_BUSY_SNAPSHOT, "database is locked"): the turn is run again on the fresh state.
    (PostgreSQL needs no such retry: the conversation row is locked from the read on.)"""
    return isinstance(exc.orig, sqlite3.OperationalError) and "locked" in str(exc.orig)


class _Redelivered(Exception):
    """Raised inside `run_update` to roll back a run whose update was already committed."""


@dataclass(frozen=True)
class Handled(Generic[T]):
    fresh: bool  # False: the update had been committed before; this run changed nothing
    result: T | None
    send_delay: float = 0.0  # seconds before its first message may go (the shared send budget)


class UpdateUnit:
    """What one update changes, written through one open transaction (`Store.run_update`)."""

    def __init__(self, store: Store, session: Session, channel: str, user_id: str) -> None:
        self.store, self.session = store, session
        self.channel, self.user_id = channel, user_id
        self.outbox: list[dict[str, Any]] = []
        self._record: ConversationRecord | None = None
        self._connection = session.connection()

    def conversation(self) -> ConversationRecord:
        """The stored conversation, locked until commit on PostgreSQL (read once per unit)."""
        if self._record is None:
            row = self._connection.execute(
                _LOAD_FOR_UPDATE, {"k_channel": self.channel, "k_user": self.user_id}
            ).one_or_none()
            self._record = (
                ConversationRecord(None, None, 0)
                if row is None
                else ConversationRecord(row.state, row.program, row.version, _aware(row.updated_at))
            )
        return self._record

    def save(self, state: dict[str, Any] | None, program: str | None) -> None:
        record = self.conversation()
        now, new_version = utcnow(), record.version + 1
        if record.version == 0:
            self._connection.execute(
                _INSERT_CONV,
                {
                    "channel": self.channel,
                    "user_id": self.user_id,
                    "state": state,
                    "program": program,
                    "version": new_version,
                    "updated_at": now,
                },
            )
        else:
            result = self._connection.execute(
                _UPDATE_CONV,
                {
                    "k_channel": self.channel,
                    "k_user": self.user_id,
                    "k_version": record.version,
                    "v_state": state,
                    "v_program": program,
                    "v_version": new_version,
                    "v_updated_at": now,
                },
            )
            if getattr(result, "rowcount", 0) != 1:
                raise ConcurrentUpdate(f"conversation changed since version {record.version}")
        self._record = ConversationRecord(state, program, new_version, now)

    def log_query(
        self, text: str, status: str, entry_id: str | None = None, score: float | None = None
    ) -> None:
        """One turn in the query log: the text masked, the user id hashed."""
        self._connection.execute(
            _INSERT_LOG,
            {
                "time": utcnow(),
                "channel": self.channel,
                "user_hash": self.store.user_hash(self.channel, self.user_id),
                "status": status,
                "entry_id": entry_id,
                "score": score,
                "text": _clip(mask(clean_text(text))),
            },
        )

    def add_feedback(self, entry_id: str, helpful: bool, comment: str | None = None) -> None:
        self._connection.execute(
            _INSERT_FEEDBACK,
            {
                "time": utcnow(),
                "channel": self.channel,
                "user_hash": self.store.user_hash(self.channel, self.user_id),
                "entry_id": entry_id,
                "helpful": helpful,
                "comment": _clip(mask(clean_text(comment))) if comment else None,
                "query_id": None,
            },
        )

    def send(self, *messages: dict[str, Any]) -> None:
        """Queue messages (JSON objects the channel understands) for this update's chat."""
        self.outbox.extend(messages)


@dataclass(frozen=True)
class Unsent:
    update_id: int
    messages: list[dict[str, Any]]
    sent: int  # how many of `messages` were already delivered


class OutboxBatch:
    """The unsent messages of one chat, taken in update order and marked as they are delivered.

    On PostgreSQL `take` locks the rows until `finish`, so two workers never send one chat's
    messages at the same time or out of order: the second waits, then finds only what is still
    unsent.  (SQLite serves one process, whose own per-chat order suffices: no lock held.)
    `take` and `finish` block; call them off the event loop.
    """

    def __init__(self, store: Store, source: str, chat: str) -> None:
        self._store, self._source, self._chat = store, source, chat
        self._connection: Connection | None = None

    def _params(self) -> dict[str, Any]:
        return {"k_source": self._source, "k_chat": self._chat}

    def take(self) -> list[Unsent]:
        store = self._store
        try:
            if store.engine.dialect.name == "postgresql":
                connection = store.engine.connect()
                try:
                    rows = connection.execute(_UNSENT_LOCKED, self._params()).all()
                except BaseException:
                    connection.close()
                    raise
                self._connection = connection
            else:
                with store.engine.connect() as connection:
                    rows = connection.execute(_UNSENT, self._params()).all()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"database error while reading the outbox ({store.url}): {_one_line(exc)}"
            ) from None
        return [Unsent(int(r.update_id), list(r.outbox or []), int(r.sent)) for r in rows]

    def finish(self, progress: dict[int, tuple[int, bool]]) -> None:
        """Record `progress`: update id -> (messages sent so far, all done); release the rows."""
        store = self._store
        connection, self._connection = self._connection, None
        try:
            if connection is None:
                connection = store.engine.connect()
            with connection:
                for update_id, (sent, done) in progress.items():
                    # A sent outbox is dropped: replies may quote what the user typed.
                    connection.execute(
                        _MARK_DONE if done else _MARK_SENT,
                        {"k_source": self._source, "k_update": update_id, "v_sent": sent}
                        | ({} if done else {"v_pending": True}),
                    )
                connection.commit()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"database error while marking messages sent ({store.url}): {_one_line(exc)}"
            ) from None
