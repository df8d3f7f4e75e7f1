"""The transcript suite through the real `kounen chat` console script, line by line.

The conversations of tests/test_transcripts.py that do not depend on today's date
(the console script runs on the real clock) are typed into one `kounen chat --json`
process, with /reset between them, and their results are checked against the same
values computed from the sources' formulas.  Unmounting `kounen chat` from the CLI
fails this test: there is no skip.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.service import ServiceTurn
from dialogs.types import Reply, ReplyChoice
from tests.test_transcripts import CONVERSATIONS, Conversation, check_result

ROOT = Path(__file__).parents[1]
KOUNEN = Path(sys.executable).parent / "kounen"
RELATIVE = ("今日", "本日", "昨日", "先月", "去年", "今年")


def _dated(conversation: Conversation) -> bool:
    return any(word in message for message in conversation.say for word in RELATIVE)


SELECTED = [c for c in CONVERSATIONS if not _dated(c)]


def _line(message: str) -> str:
    # A choice is sent as its value: the console script takes an offered value as picking it.
    return message[1:] if message.startswith("@") else message


def _turn(data: dict[str, Any]) -> ServiceTurn:
    replies = [
        Reply(
            r["text"],
            tuple(ReplyChoice(c["label"], c["value"]) for c in r["choices"]),
            headline=r["headline"],
            details=r["details"],
        )
        for r in data["replies"]
    ]
    return ServiceTurn(replies, data["dialog"], data["step"], data["result"])


class Chat:
    """A `kounen chat --json` process: one line in, wait for its JSON line, then the next."""

    def __init__(self, tmp_path: Path) -> None:
        env = {**os.environ, "KOUNEN_DATABASE_URL": f"sqlite:///{tmp_path / 'chat.db'}"}
        self.proc = subprocess.Popen(
            [str(KOUNEN), "chat", "--json", "--user", "phone"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)

    def say(self, line: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        assert self.selector.select(timeout=60), f"no reply to {line!r} within 60 s"
        data: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return data

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def test_the_suite_has_console_conversations() -> None:
    assert len(SELECTED) >= 60


def test_conversations_through_the_kounen_chat_console_script(tmp_path: Path) -> None:
    chat = Chat(tmp_path)
    failures: list[str] = []
    try:
        for conversation in SELECTED:
            chat.say("/reset")
            turns = [_turn(chat.say(_line(m))) for m in conversation.say]
            results = [i for i, t in enumerate(turns) if t.result is not None]
            expected_at = conversation.results_at or (
                (len(turns) - 1,) if conversation.expect is not None else ()
            )
            try:
                assert results == list(expected_at), results
                if conversation.expect is not None:
                    result = turns[expected_at[-1]].result
                    assert result is not None
                    check_result(result, conversation.expect)
                if conversation.check is not None:
                    conversation.check(turns)
            except (AssertionError, pytest.fail.Exception) as exc:
                failures.append(f"{conversation.id}: {exc}")
    finally:
        assert chat.close() == 0
    assert not failures, "\n".join(failures)
