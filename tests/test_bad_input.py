"""Whatever is typed or piped in, the bot replies: no exception, an honest status, some text."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bot.cli import app
from faq import KnowledgeBase, Policy
from faq.replies import outcome_text
from rules import TOKYO

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO)  # a Friday morning: every line is open

STATUSES = {"answered", "clarify", "no_match", "smalltalk", "dialog"}
HONEST = {"no_match", "smalltalk"}

BAD_INPUTS = {
    "empty": "",
    "whitespace": " \t 　 \u3000  ",
    "long-japanese": ("吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。" * 400)[:10_000],
    "emoji": "😀😂🎉👍🏻🇯🇵",
    "control": "\x00\x07\x1b[31m",
    "mixed-scripts": "Hello Привет 안녕하세요 مرحبا 東京の天気",
    "punctuation": "「！？。、…」",
    "replacement-chars": "\ufffd\ufffd\ufffd",
}


@pytest.mark.parametrize("text", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_policy_handles_bad_input(policy: Policy, kb: KnowledgeBase, text: str) -> None:
    outcome = policy.decide(text)
    assert outcome.status in HONEST, (outcome.status, outcome.reason, outcome.entry and outcome.entry.id)
    assert outcome.query == text
    assert outcome_text(kb, outcome, NOW).strip()


@pytest.mark.parametrize("program", ["it2020", "it2023-multi"])
@pytest.mark.parametrize("text", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_policy_handles_bad_input_with_program(
    policy: Policy, kb: KnowledgeBase, text: str, program: str
) -> None:
    outcome = policy.decide(text, program=program)
    assert outcome.status in HONEST
    assert outcome_text(kb, outcome, NOW).strip()


STDIN_CASES = {name: text.encode("utf-8") + b"\n" for name, text in BAD_INPUTS.items()}
STDIN_CASES["invalid-utf8"] = b"\xff\xfe\x80\n"
STDIN_CASES["crlf-empty"] = b"\r\n"


@pytest.mark.parametrize("data", STDIN_CASES.values(), ids=STDIN_CASES.keys())
def test_cli_stdin_handles_bad_input(data: bytes) -> None:
    result = CliRunner().invoke(app, ["ask", "--json"], input=data)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    obj = json.loads(lines[0])
    assert obj["status"] in HONEST, obj["status"]
    assert obj["text"].strip()


def test_cli_stdin_all_bad_lines_at_once_plain_text() -> None:
    data = b"".join(STDIN_CASES.values())
    result = CliRunner().invoke(app, ["ask"], input=data)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


def test_cli_stdin_all_bad_lines_at_once_json() -> None:
    data = b"".join(STDIN_CASES.values())
    result = CliRunner().invoke(app, ["ask", "--json"], input=data)
    assert result.exit_code == 0, result.output
    outcomes = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outcomes) == len(STDIN_CASES)
    assert all(o["status"] in HONEST and o["text"].strip() for o in outcomes)


@settings(max_examples=200, deadline=None)
@given(text=st.text(), program=st.sampled_from([None, "it2020", "it2023-multi"]))
def test_decide_never_raises(policy: Policy, kb: KnowledgeBase, text: str, program: str | None) -> None:
    outcome = policy.decide(text, program=program)
    assert outcome.status in STATUSES
    assert outcome_text(kb, outcome, NOW).strip()
