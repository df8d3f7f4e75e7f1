"""`kounen cases` lists cases from the shared store; `kounen console` starts without a bot token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.service import ConversationService
from bot.store import Store
from dialogs.types import UserInput
from faq import KnowledgeBase, Policy


def test_cases_lists_and_shows_a_case(kb: KnowledgeBase, policy: Policy, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    with Store.open(url) as store:
        service = ConversationService(kb, policy, store)
        service.handle("chat", "u1", UserInput("申請マイページのIDがわからない"))
        service.handle("chat", "u1", UserInput("/human"))
        turn = service.handle("chat", "u1", UserInput(choice="hand:p-it2020"))
    number = next(w for r in turn.replies for w in r.text.split() if len(w) == 7 and w[3] == "-")
    runner = CliRunner()
    listed = runner.invoke(app, ["cases", "--database-url", url])
    assert listed.exit_code == 0 and number in listed.output and "IT導入補助金2020" in listed.output
    shown = runner.invoke(app, ["cases", "--number", number.lower().replace("-", " "), "--database-url", url])
    assert shown.exit_code == 0 and "申請マイページのIDがわからない" in shown.output
    missing = runner.invoke(app, ["cases", "--number", "AAA-AAA", "--database-url", url])
    assert missing.exit_code == 1 and "no case" in missing.output
    mine = runner.invoke(app, ["cases", "--view", "mine", "--database-url", url])
    assert mine.exit_code == 2 and "--staff" in mine.output


def test_console_runs_without_a_bot_token(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOUNEN_")}
    env.update(KOUNEN_CONSOLE_TOKENS='{"desk": "' + "t" * 40 + '"}', KOUNEN_CONSOLE_SECRET_KEY="s" * 48)
    cmd = [
        str(Path(sys.executable).parent / "kounen"),
        "console",
        "--port",
        str(port),
        "--database-url",
        f"sqlite:///{tmp_path / 'c.db'}",
    ]
    process = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "kounen console did not start"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/console/login", timeout=5) as page:
            assert page.status == 200
    finally:
        process.terminate()
        process.wait(timeout=15)
