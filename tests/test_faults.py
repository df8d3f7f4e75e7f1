"""Faults under load: real `kounen serve` and `kounen bot` processes, the fake Bot API and the
local PostgreSQL, all on 127.0.0.1.

Each test sends about 100 updates (20 chats × 5 questions, each answered with one message),
breaks something in the middle, and then checks that every update got exactly its reply and
was logged exactly once:
- kill -9 of one `kounen serve` worker, the updates it dropped redelivered as Telegram does;
- the database unreachable for a few seconds (a TCP proxy of this test's own between the bot
  and PostgreSQL is cut; the shared server itself is never stopped);
- `kounen bot` (polling) killed with SIGKILL and started again.
(The concurrent-tokenizer test is tests/test_concurrency.py.)  `make bench-bot` runs the
full-size load; these are sized for CI and bounded in time.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fake_telegram import FakeTelegram
from sqlalchemy.engine import make_url
from tcp_proxy import TcpProxy
from test_telegram_web import GBIZ_PHONE, KOUNEN, SECRET, Worker, _clean_env

from bot.store import Store
from bot.web import HEALTH_PATH, WEBHOOK_PATH

CHATS = 20
PER_CHAT = 5
QUESTION = "申請マイページのIDがわからない"
DEADLINE = 90.0  # seconds any one test may take to deliver everything


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def serve_env(fake: FakeTelegram, db_url: str, tmp_path: Path) -> dict[str, str]:
    return _clean_env(
        tmp_path,
        KOUNEN_TELEGRAM_TOKEN=fake.token,
        KOUNEN_TELEGRAM_API_BASE_URL=fake.base_url,
        KOUNEN_WEBHOOK_SECRET=SECRET,
        KOUNEN_DATABASE_URL=db_url,
        KOUNEN_LOG_LEVEL="INFO",
    )


def children(pid: int) -> list[int]:
    """The child processes of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def workers_of(pid: int) -> list[int]:
    """The uvicorn workers of a `kounen serve` (not multiprocessing's resource tracker)."""
    found = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Telegram:
    """Webhook delivery as Telegram does it: one chat's updates one after the other, each POSTed
    again (after a pause) until it gets a 200; chats side by side."""

    def __init__(self, fake: FakeTelegram, url: str) -> None:
        self.fake, self.url = fake, url
        self.attempts = Counter[int]()
        self.delivered = 0
        self._lock = threading.Lock()

    def chat(self, chat: int, count: int, deadline: float) -> list[int]:
        ids = []
        with httpx.Client(timeout=30) as client:
            for _ in range(count):
                update = self.fake.make_message(chat, QUESTION)
                ids.append(int(update["update_id"]))
                while True:
                    self.attempts[update["update_id"]] += 1
                    try:
                        response = client.post(
                            self.url + WEBHOOK_PATH,
                            json=update,
                            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                        )
                        if response.status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise AssertionError(f"update {update['update_id']} never got a 200")
                    time.sleep(0.3)
                with self._lock:
                    self.delivered += 1
        return ids

    def run(self, chats: list[int], during: Callable[[], None]) -> dict[int, list[int]]:
        """Deliver PER_CHAT updates to each chat while `during` breaks something."""
        deadline = time.monotonic() + DEADLINE
        with concurrent.futures.ThreadPoolExecutor(len(chats)) as pool:
            futures = {chat: pool.submit(self.chat, chat, PER_CHAT, deadline) for chat in chats}
            during()
            return {chat: future.result() for chat, future in futures.items()}

    def wait_delivered(self, count: int) -> None:
        self.fake.wait_for(lambda: self.delivered >= count, timeout=60, what=f"{count} updates delivered")


def assert_exactly_once(
    fake: FakeTelegram, db_url: str, sent: dict[int, list[int]], *, killed: bool = False
) -> int:
    """Every update: its reply sent, and one line in the query log (its effects, once).

    Without `killed`, every reply is sent exactly once.  After a SIGKILL one message per chat
    may come twice: the one whose sendMessage the Bot API had accepted when the process died,
    before it could mark it sent (the at-least-once that remains; see README).  Returns how
    many messages came twice.
    """
    total = sum(len(ids) for ids in sent.values())
    fake.wait_for(
        lambda: sum(len(fake.chat_messages(chat)) for chat in sent) >= total,
        timeout=30,
        what=f"{total} replies",
    )
    time.sleep(0.5)  # anything doubled would arrive now
    doubled = 0
    for chat, ids in sent.items():
        messages = fake.chat_messages(chat)
        assert all(GBIZ_PHONE in m.text for m in messages)
        extra = len(messages) - len(ids)
        assert extra >= 0, ("lost", chat, len(messages), len(ids))
        assert extra <= (1 if killed else 0), ("doubled", chat, len(messages), len(ids))
        doubled += extra
    with Store.open(db_url) as store:
        logged = Counter(q.user_hash for q in store.recent_queries(limit=10_000, channel="telegram"))
        for chat, ids in sent.items():
            assert logged[store.user_hash("telegram", str(chat))] == len(ids), chat
    return doubled


# -- kill -9 of a webhook worker ---------------------------------------------------------------


def test_a_worker_killed_mid_load_loses_and_doubles_nothing(
    fake: FakeTelegram, pg_url: str, tmp_path: Path
) -> None:
    server = Worker(serve_env(fake, pg_url, tmp_path), tmp_path, workers=2)
    try:
        server.wait_ready()
        telegram = Telegram(fake, server.url)
        killed: list[int] = []

        def kill_a_worker() -> None:
            telegram.wait_delivered(30)
            victim = workers_of(server.proc.pid)[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

        sent = telegram.run(list(range(7_000, 7_000 + CHATS)), kill_a_worker)
        assert killed and not alive(killed[0])
        doubled = assert_exactly_once(fake, pg_url, sent, killed=True)
        redelivered = sum(1 for n in telegram.attempts.values() if n > 1)
        print(f"kill -9: {redelivered} of {sum(map(len, sent.values()))} redelivered, {doubled} sent twice")
    finally:
        server.stop()


def test_workers_exit_when_their_master_is_killed(fake: FakeTelegram, pg_url: str, tmp_path: Path) -> None:
    server = Worker(serve_env(fake, pg_url, tmp_path), tmp_path, workers=2)
    try:
        server.wait_ready()
        workers = workers_of(server.proc.pid)
        assert len(workers) == 2
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(pid) for pid in workers), "orphaned workers kept serving"
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url + HEALTH_PATH, timeout=2)
    finally:
        for pid in children(server.proc.pid):
            os.kill(pid, signal.SIGKILL)
        server.stop()


# -- the database unreachable for a few seconds -------------------------------------------------


def test_a_database_outage_mid_load_loses_and_doubles_nothing(
    fake: FakeTelegram, pg_url: str, tmp_path: Path
) -> None:
    url = make_url(pg_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = Worker(serve_env(fake, proxied, tmp_path), tmp_path, workers=1)
    health: list[int] = []
    try:
        server.wait_ready()
        telegram = Telegram(fake, server.url)

        def outage() -> None:
            telegram.wait_delivered(30)
            proxy.cut()
            time.sleep(1)
            health.append(httpx.get(server.url + HEALTH_PATH, timeout=10).status_code)
            time.sleep(2)  # three seconds without the database
            proxy.restore()

        sent = telegram.run(list(range(8_000, 8_000 + CHATS)), outage)
        assert health == [503]  # /healthz said so while the database was away
        assert_exactly_once(fake, pg_url, sent)
        refused = sum(1 for n in telegram.attempts.values() if n > 1)
        print(
            f"outage: {refused} of {sum(map(len, sent.values()))} updates were answered 503 and redelivered"
        )
        assert refused > 0  # the outage really hit the load
        assert httpx.get(server.url + HEALTH_PATH, timeout=10).status_code == 200
    finally:
        server.stop()
        proxy.close()


# -- polling killed and restarted ---------------------------------------------------------------


class Poller:
    """A `kounen bot` process."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str) -> None:
        self.log = cwd / f"bot-{name}.log"
        self.proc = subprocess.Popen(
            [str(KOUNEN), "bot", "--poll-timeout", "1"],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_polling_killed_and_restarted_loses_and_doubles_nothing(
    fake: FakeTelegram, pg_url: str, tmp_path: Path
) -> None:
    env = serve_env(fake, pg_url, tmp_path)
    sent: dict[int, list[int]] = {}
    for chat in range(9_000, 9_000 + CHATS):
        sent[chat] = [fake.message(chat, QUESTION) for _ in range(PER_CHAT)]
    total = CHATS * PER_CHAT

    def replies() -> int:
        return sum(len(fake.chat_messages(chat)) for chat in sent)

    first = Poller(env, tmp_path, "first")
    try:
        fake.wait_for(lambda: replies() >= 20, timeout=60, what="the first replies")
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
    finally:
        first.stop()
    assert replies() < total, "killed too late to test anything"
    second = Poller(env, tmp_path, "second")
    try:
        doubled = assert_exactly_once(fake, pg_url, sent, killed=True)
        print(f"polling killed: {doubled} of {total} replies sent twice")
    finally:
        second.stop()
    assert not any("Traceback" in p.read_text() for p in tmp_path.glob("bot-*.log"))
