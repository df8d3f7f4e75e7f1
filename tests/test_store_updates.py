"""The store's contract for one update: its effects and its claim in one transaction, and the
outbox they leave.  Every test runs on a SQLite file and on the local PostgreSQL."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from bot.store import Store, StoreError, UpdateUnit

SOURCE = "telegram:1"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'updates.db'}"
    return str(request.getfixturevalue("pg_url"))


def count_turn(unit: UpdateUnit, text: str = "質問") -> int:
    """A turn: count in the state, log, and one message."""
    record = unit.conversation()
    count = int((record.state or {}).get("count", 0)) + 1
    unit.save({"count": count}, record.program)
    unit.log_query(text, "answered")
    unit.send({"method": "sendMessage", "text": f"reply {count}"})
    return count


def test_an_update_is_committed_once_and_a_redelivery_changes_nothing(url: str) -> None:
    with Store.open(url) as first, Store.open(url) as second:
        handled = first.run_update("telegram", "7", count_turn, source=SOURCE, update_id=10)
        assert handled.fresh and handled.result == 1
        again = second.run_update("telegram", "7", count_turn, source=SOURCE, update_id=10)
        assert not again.fresh and again.result is None
        assert second.load("telegram", "7").state == {"count": 1}
        assert len(second.recent_queries()) == 1
        assert second.run_update("telegram", "7", count_turn, source="telegram:2", update_id=10).fresh
        assert first.is_handled(SOURCE, 10) and not first.is_handled(SOURCE, 11)


def test_a_failed_run_keeps_nothing_and_the_update_is_handled_again(url: str) -> None:
    def broken(unit: UpdateUnit) -> None:
        count_turn(unit)
        raise RuntimeError("routing bug")

    with Store.open(url) as store:
        with pytest.raises(RuntimeError):
            store.run_update("telegram", "7", broken, source=SOURCE, update_id=20)
        assert store.load("telegram", "7").version == 0
        assert store.recent_queries() == [] and store.chats_with_unsent(SOURCE) == []
        assert store.run_update("telegram", "7", count_turn, source=SOURCE, update_id=20).fresh


def test_the_outbox_is_taken_in_update_order_and_marked_as_sent(url: str) -> None:
    with Store.open(url) as store:
        for update_id in (31, 30, 32):
            store.run_update("telegram", "7", count_turn, source=SOURCE, update_id=update_id)
        store.run_update("telegram", "8", count_turn, source=SOURCE, update_id=33)
        assert sorted(store.chats_with_unsent(SOURCE)) == ["7", "8"]
        batch = store.outbox(SOURCE, "7")
        taken = batch.take()
        assert [u.update_id for u in taken] == [30, 31, 32]
        assert [u.messages[0]["text"] for u in taken] == ["reply 2", "reply 1", "reply 3"]
        batch.finish({30: (1, True), 31: (0, False)})  # 31 failed: it stays, and 32 too
        left = store.outbox(SOURCE, "7")
        assert [(u.update_id, u.sent) for u in left.take()] == [(31, 0), (32, 0)]
        left.finish({31: (1, True), 32: (1, True)})
        assert store.chats_with_unsent(SOURCE) == ["8"]


def test_messages_without_an_update_are_refused(url: str) -> None:
    with Store.open(url) as store, pytest.raises(StoreError):
        store.run_update("telegram", "7", count_turn)


def test_concurrent_turns_of_one_conversation_are_serialised(url: str) -> None:
    """Eight workers (Store objects) at once on one conversation: every turn sees the last."""
    stores = [Store.open(url) for _ in range(4)]
    results: list[int] = []
    try:

        def worker(index: int) -> None:
            store = stores[index % len(stores)]
            for n in range(5):
                handled = store.run_update(
                    "telegram", "9", count_turn, source=SOURCE, update_id=100 + index * 10 + n
                )
                results.append(int(handled.result or 0))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(results) == list(range(1, 41))  # no turn lost, none saw a stale state
        assert stores[0].load("telegram", "9").state == {"count": 40}
    finally:
        for store in stores:
            store.close()


def test_on_postgresql_one_chats_outbox_is_sent_by_one_worker_at_a_time(pg_url: str) -> None:
    with Store.open(pg_url) as first, Store.open(pg_url) as second:
        first.run_update("telegram", "7", count_turn, source=SOURCE, update_id=1)
        sending = first.outbox(SOURCE, "7")
        assert [u.update_id for u in sending.take()] == [1]
        second.run_update("telegram", "7", count_turn, source=SOURCE, update_id=2)
        seen: list[list[int]] = []

        def other_worker() -> None:
            batch = second.outbox(SOURCE, "7")
            seen.append([u.update_id for u in batch.take()])  # waits for the first sender
            batch.finish({})

        thread = threading.Thread(target=other_worker)
        thread.start()
        time.sleep(0.3)
        assert seen == []  # still waiting: update 2 must not overtake update 1
        sending.finish({1: (1, True)})
        thread.join(timeout=10)
        assert seen == [[2]]


def test_on_postgresql_the_send_budget_is_one_for_every_worker(pg_url: str) -> None:
    """Ten updates of two messages each, committed by two workers at 10 messages/s: each is
    told to wait until its messages fit the one budget; a redelivery takes nothing from it."""
    with Store.open(pg_url) as first, Store.open(pg_url) as second:

        def two_messages(unit: UpdateUnit) -> None:
            unit.send({"method": "sendMessage", "text": "a"}, {"method": "sendMessage", "text": "b"})

        delays = []
        for n in range(10):
            store = (first, second)[n % 2]
            handled = store.run_update(
                "telegram", str(n), two_messages, source=SOURCE, update_id=n, budget=(10, 1)
            )
            delays.append(handled.send_delay)
        again = first.run_update("telegram", "0", two_messages, source=SOURCE, update_id=0, budget=(10, 1))
        assert not again.fresh and again.send_delay == 0.0
        later = second.run_update("telegram", "x", two_messages, source=SOURCE, update_id=99, budget=(10, 1))
    assert delays[0] == 0.0
    assert all(b >= a - 0.05 for a, b in itertools.pairwise(delays))  # queued in order
    # 20 messages at 10/s: the tenth update's pair goes about 1.8 s after the first pair
    # (less the time these commits took), the one after it about 2 s.
    assert 1.3 <= delays[-1] <= 1.85, delays
    assert later.send_delay >= delays[-1] + 0.1


def test_on_postgresql_a_429_pauses_the_budget_for_every_worker(pg_url: str) -> None:
    with Store.open(pg_url) as first, Store.open(pg_url) as second:

        def one_message(unit: UpdateUnit) -> None:
            unit.send({"method": "sendMessage", "text": "a"})

        assert first.run_update(
            "telegram", "1", one_message, source=SOURCE, update_id=1, budget=(30, 30)
        ).fresh
        first.pause_sends(SOURCE, 2.0)  # the worker that got the 429
        handled = second.run_update("telegram", "2", one_message, source=SOURCE, update_id=2, budget=(30, 30))
    assert 1.8 <= handled.send_delay <= 2.05
