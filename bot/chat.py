"""`kounen chat`: a terminal conversation over the conversation service.

  * On a TTY it is interactive: a prompt, numbered choices (type the number
    to pick one), the dialog in progress resumed on start.  /quit, Ctrl-D or
    Ctrl-C ends.  When both ends are a terminal, the line is read with
    prompt_toolkit: ← → Home End, Backspace over wide characters, ↑↓ through the
    questions asked in this session, and Japanese input methods all behave as in
    a shell; replies are wrapped to the terminal's width by display columns with
    Japanese line-break rules (bot/linebreak.py), each reply's headline is bold,
    and 「読み込み中…」 shows while the dictionary and the answers load.
    NO_COLOR or TERM=dumb turn the bold off.
  * Otherwise it reads one user message per line from stdin and prints the
    replies to each, followed by a blank line: plain text, unwrapped.
  * With --json it prints exactly one JSON line per message, flushed at once:
        {"input", "replies": [{"text", "headline", "details", "choices": [{"label", "value"}]}],
         "dialog": flow id | null, "step": step id | null, "result": {...} | null}
    A line that is exactly a choice value ("faq:…", "prog:…", "flow:…", "cmd:…"
    or a value offered in the last replies) picks that choice.

`--user ID` names the conversation; its state is stored in the database, so it
resumes after a restart.  Errors (bad settings, unreachable database, broken
knowledge base) are one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Annotated, Any, BinaryIO, TextIO

import typer

from bot.linebreak import wrap
from dialogs.engine import NAVIGATION
from dialogs.types import Reply, ReplyChoice, UserInput

if TYPE_CHECKING:  # the service, the store and the knowledge base load only when a chat starts
    from bot.service import ConversationService, ServiceTurn
    from faq import KnowledgeBase, Policy

log = logging.getLogger(__name__)

CHANNEL = "cli"
DEFAULT_USER = "local"
PROMPT = "> "
QUIT = frozenset({"/quit", "/exit"})
LOADING = "読み込み中…"
GREETING = "kounen チャット（/help で使い方、/quit で終了）"
BOLD, DIM, RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"
CLEAR_LINE = "\r\x1b[K"


class ChatError(Exception):
    """The chat cannot start or go on; the message is one line for the user."""


def _lines(stream: BinaryIO | IO[bytes]) -> Iterator[str]:
    """Lines of a byte stream as text; bytes that are not UTF-8 become U+FFFD, never an error."""
    while True:
        raw = stream.readline()
        if not raw:
            return
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _offered(replies: Sequence[Reply]) -> list[ReplyChoice]:
    return [c for r in replies for c in r.choices]


def _numbered(replies: Sequence[Reply]) -> list[ReplyChoice]:
    """The choices shown with a number: all but the dialog's navigation commands (戻る, ヘルプ, やめる)."""
    return [c for c in _offered(replies) if c.value not in NAVIGATION]


@dataclass(frozen=True)
class Terminal:
    """How replies are shown: wrapped to `columns` (None: not at all), with or without bold.

    A terminal found by `detect` is measured again for every reply (`live`), so the
    wrapping follows a window that was resized since the chat started.
    """

    columns: int | None = None
    styled: bool = False
    live: bool = False

    @classmethod
    def detect(cls, stream: TextIO) -> Terminal:
        """The terminal behind `stream`; plain (no wrapping, no escapes) when it is not one."""
        if not stream.isatty():
            return cls()
        styled = not os.environ.get("NO_COLOR") and os.environ.get("TERM", "") != "dumb"
        return cls(shutil.get_terminal_size().columns, styled, live=True)

    def width(self) -> int | None:
        return shutil.get_terminal_size().columns if self.live else self.columns

    def show(self, text: str, style: str = "") -> str:
        columns = self.width()
        if columns is not None:
            text = wrap(text, columns)
        if not (self.styled and style and text):
            return text
        return "\n".join(f"{style}{line}{RESET}" for line in text.split("\n"))


PLAIN = Terminal()


def render_text(replies: Sequence[Reply], terminal: Terminal = PLAIN) -> str:
    """Replies for a terminal: texts, numbered choices, and the commands as one hint line.

    On a styled terminal each reply's headline (its first line when it has none: the
    question asked) is bold and the hint line dim.
    """
    lines: list[str] = []
    number = 0
    for reply in replies:
        if reply.text:
            headline = reply.headline.strip()
            if headline and reply.text.startswith(headline):
                head, rest = headline, reply.text[len(headline) :].removeprefix("\n")
            else:
                head, _, rest = reply.text.partition("\n")
            lines.append(terminal.show(head, BOLD))
            if rest:
                lines.append(terminal.show(rest))
        commands = [c.label for c in reply.choices if c.value in NAVIGATION]
        for choice in reply.choices:
            if choice.value not in NAVIGATION:
                number += 1
                lines.append(terminal.show(f"  {number}. {choice.label}"))
        if commands:
            lines.append(terminal.show("  （" + "・".join(commands) + " と入力できます）", DIM))
    return "\n".join(lines)


def turn_json(text: str, turn: ServiceTurn) -> dict[str, Any]:
    return {
        "input": text,
        "replies": [
            {
                "text": r.text,
                "headline": r.headline,
                "details": r.details,
                "choices": [{"label": c.label, "value": c.value} for c in r.choices],
            }
            for r in turn.replies
        ],
        "dialog": turn.dialog,
        "step": turn.step,
        "result": turn.result,
    }


def to_input(text: str, last: Sequence[Reply], numbers: bool) -> UserInput:
    """What a typed line means: a choice by number or by its exact label (when numbered) or by
    exact value, else text.  A label is what the list shows, so typing it (「詳しく」) means that
    choice, as a press would on a phone."""
    stripped = text.strip()
    offered = _offered(last)
    if any(c.value == stripped for c in offered):
        return UserInput(choice=stripped)
    if numbers:
        numbered = _numbered(last)
        labelled = [c for c in numbered if c.label == stripped]
        if len(labelled) == 1:
            return UserInput(choice=labelled[0].value)
        digits = unicodedata.normalize("NFKC", stripped).rstrip(".")
        if digits.isascii() and digits.isdigit() and 1 <= int(digits) <= len(numbered):
            return UserInput(choice=numbered[int(digits) - 1].value)
    return UserInput(text=text)


def open_service(
    database_url: str | None,
    kb: KnowledgeBase | None = None,
    policy: Policy | None = None,
) -> ConversationService:
    """Settings -> store (migrated) -> knowledge base -> service.  Raises `ChatError` with one line."""
    from bot.service import ConversationService
    from bot.settings import DEFAULT_HASH_SALT, SettingsError, configure_logging, load_settings
    from bot.store import Store, StoreError
    from faq import KBError, Policy, load_kb

    try:
        settings = load_settings(database_url=database_url)
        configure_logging(settings)
        settings.prepare_data_dir()
        salt = settings.hash_salt.get_secret_value()
        store = Store.open(settings.database_url, salt=salt)
        if salt == DEFAULT_HASH_SALT and store.engine.dialect.name != "sqlite":
            log.warning("KOUNEN_HASH_SALT is not set: user pseudonyms use the public default salt")
    except (SettingsError, StoreError) as exc:
        raise ChatError(str(exc)) from None
    try:
        kb = kb if kb is not None else load_kb()
        policy = policy if policy is not None else Policy(kb)
    except KBError as exc:
        store.close()
        raise ChatError(f"invalid knowledge base: {exc}") from None
    return ConversationService(kb, policy, store)


def chat(
    user: str = DEFAULT_USER,
    as_json: bool = False,
    database_url: str | None = None,
    *,
    stdin: BinaryIO | IO[bytes] | None = None,
    stdout: TextIO | None = None,
    interactive: bool | None = None,
    service: ConversationService | None = None,
    kb: KnowledgeBase | None = None,
    policy: Policy | None = None,
) -> None:
    """Converse over stdin/stdout until end of input.  Raises `ChatError` (one line) on failure.

    The keyword arguments are for tests and embedding: streams, TTY mode, a ready service or
    an already loaded knowledge base and policy.
    """
    from bot.store import StoreError

    if not 0 < len(user.strip()) <= 128:
        raise ChatError("--user must be 1 to 128 characters")
    source = stdin if stdin is not None else sys.stdin.buffer
    out = stdout if stdout is not None else sys.stdout
    if interactive is None:
        interactive = not as_json and sys.stdin.isatty() and stdin is None
    # A real terminal at both ends: prompt_toolkit reads the line, replies fit the screen.
    terminal = interactive and stdin is None and stdout is None and sys.stdin.isatty() and out.isatty()
    screen = Terminal.detect(out) if terminal else PLAIN
    own = service is None
    if own and terminal:
        _write(out, LOADING)
    try:
        with _no_echo(terminal):
            service = service if service is not None else open_service(database_url, kb, policy)
    finally:
        if own and terminal:
            _write(out, CLEAR_LINE)
    lines = _prompted_lines() if terminal else _lines(source)
    try:
        _loop(service, user, lines, out, as_json, interactive, screen, prompts=not terminal)
    except StoreError as exc:
        raise ChatError(str(exc)) from None
    finally:
        if own:
            service.store.close()


@contextmanager
def _no_echo(active: bool) -> Iterator[None]:
    """While loading, keys typed ahead are not echoed over 「読み込み中…」: the prompt shows them."""
    if not active:
        yield
        return
    try:
        import termios

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        quiet = termios.tcgetattr(fd)
        quiet[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    except (ImportError, OSError, ValueError):  # not a POSIX terminal: echo stays on
        yield
        return
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


def _prompted_lines() -> Iterator[str]:
    """Lines typed at the terminal, edited with prompt_toolkit; Ctrl-D or Ctrl-C ends."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import InMemoryHistory

    # In memory only: questions may hold personal details and are not written to a file.
    session: PromptSession[str] = PromptSession(history=InMemoryHistory())
    while True:
        try:
            yield session.prompt(PROMPT)
        except (EOFError, KeyboardInterrupt):
            return


def _write(out: TextIO, text: str) -> None:
    out.write(text)
    out.flush()


def _loop(
    service: ConversationService,
    user: str,
    lines: Iterator[str],
    out: TextIO,
    as_json: bool,
    interactive: bool,
    screen: Terminal = PLAIN,
    *,
    prompts: bool = True,
) -> None:
    """The conversation.  `prompts`: write the prompt here (False when the line reader shows it)."""
    prompt = PROMPT if prompts else ""
    last: list[Reply] = []
    if interactive:
        last = service.resume(CHANNEL, user)
        resumed = render_text(last, screen) + "\n" if last else ""
        _write(out, screen.show(GREETING) + "\n" + resumed + prompt)
    for text in lines:
        if interactive and text.strip().lower() in QUIT:
            return
        if interactive and not text.strip():
            _write(out, prompt)
            continue
        user_input = to_input(text, last, numbers=not as_json)
        turn = service.handle(CHANNEL, user, user_input)
        # What 「詳しく」 shows has no choices: the list above it stays on screen and in force, its
        # numbers still pick, as its buttons still would on a phone.  Any other reply replaces it.
        shown_details = (user_input.choice or "").startswith("more:") and not _offered(turn.replies)
        last = last if shown_details else turn.replies
        if as_json:
            _write(out, json.dumps(turn_json(text, turn), ensure_ascii=False) + "\n")
        elif interactive:
            _write(out, render_text(turn.replies, screen) + "\n\n" + prompt)
        else:
            _write(out, render_text(turn.replies) + "\n\n")
    if interactive and prompts:
        _write(out, "\n")


def chat_command(
    user: Annotated[str, typer.Option("--user", help="会話の ID（再起動しても続きから）")] = DEFAULT_USER,
    as_json: Annotated[bool, typer.Option("--json", help="1メッセージにつき1行の JSON で出力する")] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy の URL（省略時は KOUNEN_DATABASE_URL、なければ既定の SQLite ファイル）",
        ),
    ] = None,
) -> None:
    """ターミナルで会話する（TTY では対話、それ以外は1行1メッセージ）。"""
    try:
        chat(user=user, as_json=as_json, database_url=database_url)
    except ChatError as exc:
        typer.echo(f"kounen: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:  # Ctrl-C while loading or reading a line: end quietly, no traceback
        typer.echo("", err=True)
        raise typer.Exit(130) from None
