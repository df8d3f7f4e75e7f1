"""End to end: a real `kounen serve` (webhook) with the fake Bot API on 127.0.0.1, the local
PostgreSQL, and real headless Chromium for the staff side.

The user asks twice without an answer after a calculation, takes the offered handoff and
gets the case number; staff see the case appear without reloading, open it, see the summary
with the calculation and reply; the user receives the reply once; staff close the case, the
user is told, and the bot answers the next question.  Run with one worker; with two workers
and a restart in the middle; and with two `kounen serve` processes (the user's messages go to
one, the staff use the console of the other).  Everything stays on loopback.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_telegram import FakeTelegram
from test_console_browser import PASSWORD, _context, _log_in, shot
from test_console_browser import browser as browser
from test_telegram_web import KOUNEN, SECRET, Worker, _clean_env, _dialog

from bot.handoff import STAFF_PREFIX

CHAT = 7301
DEADLINE = 30.0  # seconds for the sweeper (every 5 s) to deliver what staff sent


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def serve_env(fake: FakeTelegram, pg_url: str, tmp_path: Path) -> dict[str, str]:
    from argon2 import PasswordHasher

    hashed = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    return _clean_env(
        tmp_path,
        KOUNEN_TELEGRAM_TOKEN=fake.token,
        KOUNEN_TELEGRAM_API_BASE_URL=fake.base_url,
        KOUNEN_WEBHOOK_SECRET=SECRET,
        KOUNEN_DATABASE_URL=pg_url,
        KOUNEN_CONSOLE_USERS=json.dumps({"yamada": hashed}),
    )


def staff_messages(fake: FakeTelegram) -> list[str]:
    return [m.text for m in fake.chat_messages(CHAT) if m.text.startswith(STAFF_PREFIX.strip())]


def run_scenario(
    fake: FakeTelegram,
    browser: Any,
    user_side: list[Worker],
    staff_side: Worker,
    restart: Any = None,
    capsys: pytest.CaptureFixture[str] | None = None,
    name: str = "e2e",
) -> None:
    context = _context(browser, staff_side.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/console/cases")
    _log_in(page)
    loads: list[str] = []
    page.on("load", lambda _p: loads.append("load"))
    # A calculation, then two questions without an answer: the handoff is offered.
    _dialog(fake, CHAT, [*user_side, *user_side][:2], 0)
    user_side[0].post(fake.make_message(CHAT, "ほげほげふがふが"))
    user_side[-1].post(fake.make_message(CHAT, "ぴよぴよぱやぱや"))
    offered = fake.chat_messages(CHAT)[-1]
    assert offered.data_for("担当者に相談") == "hand:not_found"
    user_side[0].post(fake.make_press(CHAT, offered, "hand:not_found"))
    confirm = fake.chat_messages(CHAT)[-1]
    assert "計算・判定の入力と結果" in confirm.text
    user_side[-1].post(fake.make_press(CHAT, confirm, "hand:p-it2020"))
    opened = fake.chat_messages(CHAT)[-1].text
    number = next(w for w in opened.split() if len(w) == 7 and w[3] == "-")
    assert "受付時間" in opened and "0570-002-551" in opened
    # Staff: the case appears without reloading.
    link = page.get_by_role("link", name=number)
    link.wait_for(timeout=15_000)
    assert loads == []
    if restart is not None:
        restart()  # the middle: the case is committed, nothing sent yet by staff
    with page.expect_navigation():
        link.click()
    summary = page.locator(".case-summary").inner_text()
    assert "労働生産性" in summary and "入力：営業利益" in summary and "ぴよぴよぱやぱや" in summary
    if capsys is not None:
        shot(page, f"{name}-case", capsys)
    page.locator("#reply").fill("担当の山田です。計算結果を確認しました。")
    page.get_by_role("button", name="送信", exact=True).click()
    assert "返信を送りました" in page.locator(".notice").inner_text()
    fake.wait_for(lambda: staff_messages(fake) or None, timeout=DEADLINE, what="the staff reply")
    time.sleep(6)  # another sweep on every process: still once
    assert staff_messages(fake) == [STAFF_PREFIX + "担当の山田です。計算結果を確認しました。"]
    page.locator("#note").fill("計算結果を確認して案内")
    page.get_by_role("button", name="終了する").click()
    assert "終了しました" in page.locator(".notice").inner_text()
    fake.wait_for(
        lambda: any("終了しました" in m.text for m in fake.chat_messages(CHAT)) or None,
        timeout=DEADLINE,
        what="the closing notice",
    )
    user_side[0].post(fake.make_message(CHAT, "申請マイページのIDがわからない"))
    answer = fake.chat_messages(CHAT)[-1]
    assert answer.text.startswith("【") and "担当者" not in answer.text[:10]
    assert answer.data_for("👍").startswith("fb:1:")
    context.close()


def test_handoff_end_to_end_one_worker(
    fake: FakeTelegram, pg_url: str, tmp_path: Path, browser: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = Worker(serve_env(fake, pg_url, tmp_path), tmp_path, 1)
    try:
        worker.wait_ready()
        run_scenario(fake, browser, [worker], worker, capsys=capsys, name="e2e-one-worker")
    finally:
        worker.stop()


def test_handoff_end_to_end_two_workers_and_a_restart(
    fake: FakeTelegram, pg_url: str, tmp_path: Path, browser: Any
) -> None:
    env = serve_env(fake, pg_url, tmp_path)
    servers = [Worker(env, tmp_path, 2)]
    servers[0].wait_ready()
    port = servers[0].port

    def restart() -> None:
        servers[0].stop()
        servers[0] = _on_port(env, tmp_path, 2, port)  # the browser keeps its address
        servers[0].wait_ready()

    try:
        run_scenario(fake, browser, servers, servers[0], restart=restart)
    finally:
        servers[0].stop()


def _on_port(env: dict[str, str], cwd: Path, workers: int, port: int) -> Worker:
    """A `kounen serve` on a given port (after a restart, where the console's browser still is)."""
    worker = Worker.__new__(Worker)
    worker.port, worker.url = port, f"http://127.0.0.1:{port}"
    worker.log = cwd / f"serve-{port}-again.log"
    worker.proc = subprocess.Popen(
        [str(KOUNEN), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=worker.log.open("wb"),
    )
    return worker


def test_handoff_end_to_end_across_two_serve_processes(
    fake: FakeTelegram, pg_url: str, tmp_path: Path, browser: Any
) -> None:
    env = serve_env(fake, pg_url, tmp_path)
    first, second = Worker(env, tmp_path, 1), Worker(env, tmp_path, 1)
    try:
        first.wait_ready()
        second.wait_ready()
        run_scenario(fake, browser, [first], second)
    finally:
        first.stop()
        second.stop()
