"""`kounen chat`: a terminal conversation over the conversation service.

  * On a TTY it is interactive: a prompt, numbered choices (type the number
    to pick one), the dialog in progress resumed on start.  /quit or Ctrl-D ends.
  * Otherwise it reads one user message per line from stdin and prints the
    replies to each, followed by a blank line.
  * With --json it prints exactly one JSON line per message, flushed at once:
        {"input", "replies": [{"text", "choices": [{"label", "value"}]}],
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
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Annotated, Any, BinaryIO, TextIO

import typer

from dialogs.types import Reply, ReplyChoice, UserInput

if TYPE_CHECKING:  # the service, the store and the knowledge base load only when a chat starts
    from bot.service import ConversationService, ServiceTurn
    from faq import KnowledgeBase, Policy

log = logging.getLogger(__name__)

CHANNEL = "cli"
DEFAULT_USER = "local"
PROMPT = "> "
QUIT = frozenset({"/quit", "/exit"})


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
    return [c for c in _offered(replies) if not c.value.startswith("cmd:")]


def render_text(replies: Sequence[Reply]) -> str:
    """Replies for a terminal: texts, numbered choices, and the commands as one hint line."""
    lines: list[str] = []
    number = 0
    for reply in replies:
        if reply.text:
            lines.append(reply.text)
        commands = [c.label for c in reply.choices if c.value.startswith("cmd:")]
        for choice in reply.choices:
            if not choice.value.startswith("cmd:"):
                number += 1
                lines.append(f"  {number}. {choice.label}")
        if commands:
            lines.append("  （" + "・".join(commands) + " と入力できます）")
    return "\n".join(lines)


def turn_json(text: str, turn: ServiceTurn) -> dict[str, Any]:
    return {
        "input": text,
        "replies": [
            {"text": r.text, "choices": [{"label": c.label, "value": c.value} for c in r.choices]}
            for r in turn.replies
        ],
        "dialog": turn.dialog,
        "step": turn.step,
        "result": turn.result,
    }


def to_input(text: str, last: Sequence[Reply], numbers: bool) -> UserInput:
    """What a typed line means: a choice by number (when numbered) or by exact value, else text."""
    stripped = text.strip()
    offered = _offered(last)
    if any(c.value == stripped for c in offered):
        return UserInput(choice=stripped)
    if numbers:
        digits = unicodedata.normalize("NFKC", stripped).rstrip(".")
        numbered = _numbered(last)
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
    own = service is None
    service = service if service is not None else open_service(database_url, kb, policy)
    try:
        _loop(service, user, source, out, as_json, interactive)
    except StoreError as exc:
        raise ChatError(str(exc)) from None
    finally:
        if own:
            service.store.close()


def _write(out: TextIO, text: str) -> None:
    out.write(text)
    out.flush()


def _loop(
    service: ConversationService,
    user: str,
    source: BinaryIO | IO[bytes],
    out: TextIO,
    as_json: bool,
    interactive: bool,
) -> None:
    last: list[Reply] = []
    if interactive:
        last = service.resume(CHANNEL, user)
        greeting = "kounen チャット（/help で使い方、/quit で終了）"
        _write(out, greeting + "\n" + (render_text(last) + "\n" if last else "") + PROMPT)
    for text in _lines(source):
        if interactive and text.strip().lower() in QUIT:
            return
        if interactive and not text.strip():
            _write(out, PROMPT)
            continue
        user_input = to_input(text, last, numbers=not as_json)
        turn = service.handle(CHANNEL, user, user_input)
        last = turn.replies
        if as_json:
            _write(out, json.dumps(turn_json(text, turn), ensure_ascii=False) + "\n")
        elif interactive:
            _write(out, render_text(turn.replies) + "\n\n" + PROMPT)
        else:
            _write(out, render_text(turn.replies) + "\n\n")
    if interactive:
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
