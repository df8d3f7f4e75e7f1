"""The terminal chat as a person at a terminal sees it: wrapping, bold headings, line editing.

The last test drives a real `kounen chat` in a tmux pane (`bash scripts/install-tmux.sh`
installs tmux; without it that test is skipped with the reason): it types a question with a
← key and a Backspace over a kanji and reads back the screen and the stored question.  The
screen is saved to test-artifacts/chat/ (or $KOUNEN_SCREENSHOT_DIR/../chat).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from bot.chat import BOLD, DIM, RESET, Terminal, render_text
from bot.linebreak import NO_END, NO_START, width, wrap
from bot.store import QueryLog, Store
from dialogs.types import Reply, ReplyChoice

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = (
    Path(os.environ["KOUNEN_SCREENSHOT_DIR"]).parent / "chat"
    if os.environ.get("KOUNEN_SCREENSHOT_DIR")
    else ROOT / "test-artifacts" / "chat"
)
ANSWER = (
    "申請マイページは gBizID でのログインとなります。IDがわからない場合は「gBizID 窓口」"
    "（06-6225-7877）へお問い合わせください。制度を選ぶには /program it2023-multi と入力します。"
)


def _check_lines(lines: list[str], columns: int) -> None:
    for number, line in enumerate(lines):
        assert width(line) <= columns, (line, columns)
        if number:
            assert line.lstrip(" ")[:1] not in NO_START, lines
        assert line[-1:] not in NO_END, lines


@pytest.mark.parametrize("columns", [22, 30, 33, 40, 41, 60, 80])
def test_wrap_by_display_width_with_japanese_line_breaks(columns: int) -> None:
    lines = wrap(ANSWER, columns).split("\n")
    _check_lines(lines, columns)
    assert "".join(lines).replace(" ", "") == ANSWER.replace(" ", "")  # nothing lost or added
    joined = "\n".join(lines)
    for whole in ("06-6225-7877", "gBizID", "/program it2023-multi"):
        assert whole in joined  # a number, a word and a command are never split


def test_a_full_stop_never_starts_a_line() -> None:
    # 20 columns hold ten kanji: the 。 would be the 11th, so the 10th is carried with it.
    lines = wrap("あいうえおかきくけこ。さしすせそ", 20).split("\n")
    assert lines == ["あいうえおかきくけ", "こ。さしすせそ"]
    lines = wrap("あいうえおかきく「けこ」です", 18).split("\n")
    assert lines == ["あいうえおかきく", "「けこ」です"]  # no 「 at the end of a line


def test_continuation_lines_keep_the_list_indent() -> None:
    lines = wrap("  1. IT導入補助金2023 複数社連携の効果報告について知りたい", 24).split("\n")
    assert lines[0].startswith("  1. ")
    assert all(line.startswith("     ") for line in lines[1:])
    _check_lines(lines, 24)


def test_a_run_wider_than_the_line_is_cut_by_columns() -> None:
    url = "https://www.it-hojo.jp/past-it/r1-it/"
    lines = wrap(url, 12).split("\n")
    assert "".join(lines) == url and all(width(line) <= 12 for line in lines)


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("あいう漢字カナー。、「」（）ゃっ・？abc 0123-/ ")),
        max_size=120,
    ),
    st.integers(min_value=10, max_value=50),
)
def test_wrap_never_exceeds_the_width_or_loses_text(text: str, columns: int) -> None:
    lines = wrap(text, columns).split("\n")
    assert all(width(line) <= columns for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_styled_terminal_bolds_the_first_line_of_each_reply_and_wraps() -> None:
    replies = [
        Reply("どちらの制度ですか？\n" + ANSWER, (ReplyChoice("IT導入補助金2020", "prog:it2020"),)),
        Reply("従業員数は？", (ReplyChoice("ヘルプ", "cmd:help"),)),
    ]
    shown = render_text(replies, Terminal(columns=30, styled=True))
    lines = shown.split("\n")
    assert lines[0] == f"{BOLD}どちらの制度ですか？{RESET}"
    assert f"{BOLD}従業員数は？{RESET}" in lines
    assert lines[-1] == f"{DIM}  （ヘルプ と入力できます）{RESET}"
    plain = [line.replace(BOLD, "").replace(DIM, "").replace(RESET, "") for line in lines]
    _check_lines(plain, 30)
    assert "  1. IT導入補助金2020" in plain
    # Piped or unknown terminal: exactly the text, no escapes, no wrapping.
    assert render_text(replies) == render_text(replies, Terminal())
    assert "\x1b" not in render_text(replies) and ANSWER in render_text(replies)


def test_terminal_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "72")
    assert Terminal.detect(Tty()) == Terminal(72, True, live=True)  # type: ignore[arg-type]
    monkeypatch.setenv("COLUMNS", "50")  # the window was resized: the next reply follows
    assert Terminal.detect(Tty()).width() == 50  # type: ignore[arg-type]
    assert Terminal(72, True, live=True).width() == 50
    monkeypatch.setenv("NO_COLOR", "1")
    assert Terminal.detect(Tty()) == Terminal(50, False, live=True)  # type: ignore[arg-type]
    assert Terminal.detect(_NotTty()) == Terminal()  # type: ignore[arg-type]


class _NotTty:
    def isatty(self) -> bool:
        return False


# ---------------------------------------------------------------- a real terminal


def test_piped_chat_is_plain_and_line_by_line(tmp_path: Path) -> None:
    kounen = Path(sys.executable).parent / "kounen"
    env = {**os.environ, "KOUNEN_DATABASE_URL": f"sqlite:///{tmp_path / 'pipe.db'}", "TERM": "xterm-256color"}
    done = subprocess.run(
        [str(kounen), "chat"],
        input="申請マイページのIDがわからない\n".encode(),
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "\x1b" not in out and "読み込み中" not in out and "kounen チャット" not in out
    assert out.startswith("【IT導入補助金2020") and "06-6225-7877" in out
    assert out.endswith("\n\n")


class Tmux:
    """One tmux server of our own (its own socket), one pane running a command."""

    def __init__(self, command: list[str], env: dict[str, str], columns: int, rows: int) -> None:
        self.socket = f"kounen-test-{uuid.uuid4().hex[:8]}"
        exports = [f"{k}={v}" for k, v in env.items()]
        self.run("new-session", "-d", "-x", str(columns), "-y", str(rows), "env", *exports, *command)

    def run(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "0")

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", "0", *(["-l"] if literal else []), *keys)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.05)
        pytest.fail(f"{text!r} did not appear within {timeout} s; the screen:\n{self.screen()}")

    def wait_for_prompt(self, timeout: float = 60) -> str:
        """The screen once its last line is an empty prompt (tmux drops the trailing space)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if screen.rstrip().split("\n")[-1] == ">":
                return screen
            time.sleep(0.05)
        pytest.fail(f"no prompt within {timeout} s; the screen:\n{self.screen()}")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "-L", self.socket, "has-session"], capture_output=True).returncode == 0

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def test_line_editing_in_a_real_terminal(tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: run `bash scripts/install-tmux.sh`")
    kounen = Path(sys.executable).parent / "kounen"
    database = tmp_path / "chat.db"
    env = {
        "KOUNEN_DATABASE_URL": f"sqlite:///{database}",
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "HOME": str(tmp_path),
    }
    columns = 60
    tmux = Tmux([str(kounen), "chat"], env, columns, 40)
    try:
        deadline = time.monotonic() + 60
        first = ""
        while not first.strip() and time.monotonic() < deadline:
            first = tmux.screen()
            time.sleep(0.02)
        assert "読み込み中…" in first, first  # the first thing on screen while the dictionary loads
        tmux.wait_for_prompt()
        # A question with a missing が, a stray kanji: Backspace over the kanji, ← five times, type が.
        tmux.keys("申請マイページのIDわからない漢", literal=True)
        tmux.wait_for("わからない漢")
        tmux.keys("BSpace", "Left", "Left", "Left", "Left", "Left")
        tmux.keys("が", literal=True)
        typed = tmux.wait_for("> 申請マイページのIDがわからない")
        assert "漢" not in typed and "[D" not in typed and "^[" not in typed
        tmux.keys("Enter")
        tmux.wait_for("06-6225-7877")
        screen = tmux.wait_for_prompt()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "tmux-chat.txt").write_text(screen, encoding="utf-8")
        styled = tmux.run("capture-pane", "-p", "-e", "-t", "0")
        assert "\x1b[1m【IT導入補助金2020" in styled  # the answer's first line is bold on a terminal
        lines = screen.rstrip("\n").split("\n")
        assert "> 申請マイページのIDがわからない" in lines
        assert not any(ch in screen for ch in "\ufffd\x1b")
        _check_lines([line.rstrip(" ") for line in lines], columns)
        assert "gBiz\n" not in screen and "06-6225-\n" not in screen  # wrapped by the chat, not the terminal
        tmux.keys("C-d")
        deadline = time.monotonic() + 30
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not tmux.alive(), "Ctrl-D did not end the chat"
    finally:
        tmux.close()
    with Store.open(f"sqlite:///{database}") as store, DbSession(store.engine) as session:
        stored = session.scalars(select(QueryLog.text)).all()
    assert stored == ["申請マイページのIDがわからない"]
