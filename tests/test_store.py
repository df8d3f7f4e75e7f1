"""The store contract, run against SQLite (a temporary file) and PostgreSQL (127.0.0.1:5432, database `test`).

Each PostgreSQL test gets a schema of its own (search_path in the URL), dropped
afterwards.  When the server is unreachable the PostgreSQL half is skipped with
the reason.  KOUNEN_TEST_POSTGRES_URL overrides the server
(postgresql+psycopg://user@host:port/db).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from bot.masking import PHONE_MASK
from bot.store import ConcurrentUpdate, Store, StoreError, alembic_config

SALT = "test-salt-0123456789"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kounen.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    with Store.open(url, salt=SALT) as opened:
        yield opened


# -- migrations -----------------------------------------------------------------------


def test_migrations_create_the_schema_on_an_empty_database(url: str) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with Store.open(url) as store:
        with store.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        assert {"conversations", "query_log", "feedback", "alembic_version"} <= tables
        assert version == head
        store.save("cli", "u1", {"k": 1}, None, 0)
    # Opening again is a no-op migration and keeps the data.
    with Store.open(url) as again:
        assert again.load("cli", "u1").state == {"k": 1}


def test_concurrent_start_ups_migrate_once(url: str) -> None:
    errors: list[BaseException] = []
    stores: list[Store] = []
    barrier = threading.Barrier(3)

    def open_it() -> None:
        barrier.wait()
        try:
            stores.append(Store.open(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors, errors
        assert len(stores) == 3
        stores[0].save("cli", "u", None, None, 0)
        assert stores[1].load("cli", "u").version == 1
    finally:
        for s in stores:
            s.close()


# -- conversations --------------------------------------------------------------------


def test_unknown_conversation_is_empty_at_version_zero(store: Store) -> None:
    record = store.load("cli", "nobody")
    assert (record.state, record.program, record.version) == (None, None, 0)


def test_save_and_load_round_trip(store: Store) -> None:
    state = {
        "dialog": {
            "flow": "productivity",
            "step": "hours",
            "values": {"employees": 10, "profit": "1200万円"},
        },
        "pending_query": "問い合わせの電話番号を教えて",
        "nested": [1, 2.5, None, True, {"深い": "値"}],
    }
    assert store.save("cli", "u1", state, "it2020", 0) == 1
    record = store.load("cli", "u1")
    assert record.state == state
    assert record.program == "it2020"
    assert record.version == 1
    assert record.updated_at is not None and record.updated_at.tzinfo is not None
    assert store.save("cli", "u1", None, None, 1) == 2
    cleared = store.load("cli", "u1")
    assert (cleared.state, cleared.program, cleared.version) == (None, None, 2)


def test_conversations_are_keyed_by_channel_and_user(store: Store) -> None:
    store.save("cli", "u1", {"who": "cli/u1"}, None, 0)
    store.save("telegram", "u1", {"who": "telegram/u1"}, None, 0)
    store.save("cli", "u2", {"who": "cli/u2"}, None, 0)
    assert store.load("cli", "u1").state == {"who": "cli/u1"}
    assert store.load("telegram", "u1").state == {"who": "telegram/u1"}
    assert store.load("cli", "u2").state == {"who": "cli/u2"}


def test_stale_version_is_refused_and_nothing_is_overwritten(store: Store) -> None:
    store.save("cli", "u1", {"n": 1}, None, 0)
    first = store.load("cli", "u1")
    second = store.load("cli", "u1")
    store.save("cli", "u1", {"n": 2}, None, first.version)
    with pytest.raises(ConcurrentUpdate):
        store.save("cli", "u1", {"n": 99}, None, second.version)
    assert store.load("cli", "u1").state == {"n": 2}
    with pytest.raises(ConcurrentUpdate):
        store.save("cli", "u1", {"n": 99}, None, 7)  # a version that never existed


def test_two_first_saves_race_on_the_unique_key(url: str) -> None:
    with Store.open(url) as a, Store.open(url) as b:
        assert a.load("cli", "new").version == b.load("cli", "new").version == 0
        a.save("cli", "new", {"by": "a"}, None, 0)
        with pytest.raises(ConcurrentUpdate):
            b.save("cli", "new", {"by": "b"}, None, 0)
        assert b.load("cli", "new").state == {"by": "a"}


def test_two_concurrent_writers_never_lose_an_update(url: str) -> None:
    """Two stores (two processes' worth of engines), two threads, one conversation, retry on conflict."""
    per_writer = 15
    stores = [Store.open(url), Store.open(url)]
    conflicts = [0, 0]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def writer(index: int) -> None:
        store = stores[index]
        barrier.wait()
        try:
            for i in range(per_writer):
                while True:
                    record = store.load("cli", "shared")
                    state = record.state or {"items": []}
                    state = {"items": [*state["items"], f"w{index}-{i}"]}
                    try:
                        store.save("cli", "shared", state, None, record.version)
                        break
                    except ConcurrentUpdate:
                        conflicts[index] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not errors, errors
        final = stores[0].load("cli", "shared")
        items = final.state["items"] if final.state else []
        expected = {f"w{w}-{i}" for w in range(2) for i in range(per_writer)}
        assert sorted(items) == sorted(expected)  # every update, each exactly once
        assert final.version == 2 * per_writer
        # Each writer's own updates stay in order.
        for w in range(2):
            mine = [x for x in items if x.startswith(f"w{w}-")]
            assert mine == [f"w{w}-{i}" for i in range(per_writer)]
    finally:
        for s in stores:
            s.close()


# -- query log and feedback -----------------------------------------------------------


def test_query_log_masks_text_and_hashes_the_user(store: Store) -> None:
    row_id = store.log_query(
        "telegram",
        "987654321",
        "電話０３－１２３４－５６７８かtaro@example.jpへ。法人番号1234567890123",
        "answered",
        "it2020-contact",
        0.8123,
    )
    (row,) = store.recent_queries()
    assert row.id == row_id
    assert row.status == "answered" and row.entry_id == "it2020-contact"
    assert row.score == pytest.approx(0.8123)
    assert row.text == f"電話{PHONE_MASK}か[メール]へ。法人番号[番号]"
    assert "987654321" not in row.user_hash and re.fullmatch(r"[0-9a-f]{64}", row.user_hash)
    assert row.user_hash == store.user_hash("telegram", "987654321")
    assert row.time.tzinfo is not None
    # The raw text is nowhere in the table.
    with store.engine.connect() as conn:
        dump = " ".join(str(v) for r in conn.execute(text("SELECT * FROM query_log")) for v in r)
    assert "1234-5678" not in dump and "taro@" not in dump and "987654321" not in dump


def test_recent_queries_newest_first_and_by_channel(store: Store) -> None:
    for i, channel in enumerate(["cli", "telegram", "cli"]):
        store.log_query(channel, "u", f"質問{i}", "no_match")
    assert [r.text for r in store.recent_queries()] == ["質問2", "質問1", "質問0"]
    assert [r.text for r in store.recent_queries(channel="cli")] == ["質問2", "質問0"]
    assert [r.text for r in store.recent_queries(limit=1)] == ["質問2"]


@pytest.mark.parametrize(
    "awkward",
    ["NUL\x00inside", "lone surrogate \ud800", "絵文字😀", "x" * 5000, "", "'; DROP TABLE query_log; --"],
)
def test_any_text_can_be_logged(store: Store, awkward: str) -> None:
    store.log_query("cli", "u\x00", awkward, "no_match")
    (row,) = store.recent_queries()
    assert "\x00" not in row.text
    assert len(row.text) <= 2000


def test_feedback_is_stored_masked(store: Store) -> None:
    query_id = store.log_query("cli", "u1", "IDがわからない", "answered", "it2020-mypage-id-forgotten", 0.9)
    store.add_feedback("cli", "u1", "it2020-mypage-id-forgotten", True, query_id=query_id)
    store.add_feedback("cli", "u1", "it2020-contact", False, "090-1234-5678に電話しても繋がらない")
    bad, good = store.recent_feedback()
    assert (good.entry_id, good.helpful, good.comment) == ("it2020-mypage-id-forgotten", True, None)
    assert (bad.entry_id, bad.helpful) == ("it2020-contact", False)
    assert bad.comment == f"{PHONE_MASK}に電話しても繋がらない"
    assert bad.user_hash == store.user_hash("cli", "u1")


# -- errors ---------------------------------------------------------------------------


def _one_line_error(url: str) -> str:
    with pytest.raises(StoreError) as info:
        Store.open(url)
    message = str(info.value)
    assert "\n" not in message and message
    return message


def test_bad_urls_are_one_line_store_errors(tmp_path: Path) -> None:
    assert "invalid database URL" in _one_line_error("not a url")
    assert "unsupported database URL" in _one_line_error("nosuchdb://host/db")
    assert "unable to open" in _one_line_error(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")


def test_conversation_keys_are_checked(store: Store) -> None:
    for channel, user in (("", "u"), ("cli", ""), ("c" * 33, "u"), ("cli", "u" * 129)):
        with pytest.raises(StoreError, match="user id of 1-128"):
            store.load(channel, user)
        with pytest.raises(StoreError):
            store.save(channel, user, None, None, 0)
    store.save("c" * 32, "u" * 128, {"ok": True}, None, 0)
    assert store.load("c" * 32, "u" * 128).state == {"ok": True}


def test_unreachable_server_is_a_one_line_store_error_without_password() -> None:
    message = _one_line_error("postgresql+psycopg://kounen:s3cret@127.0.0.1:1/test")
    assert "cannot open database" in message
    assert "s3cret" not in message
