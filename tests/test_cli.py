"""The `kounen` command line, run in-process (CliRunner) and once as the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app
from faq import KnowledgeBase

ROOT = Path(__file__).parents[1]
DEV_QUERIES = ROOT / "tests" / "data" / "dev_queries.jsonl"
GBIZ_PHONE = "06-6225-7877"
NUMBERS_2023 = ("0570-666-376", "050-3133-3272")


def run(*args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def assert_clean_exit(result: Result) -> None:
    """Exit 0 and no Python exception escaped the command."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 0, result.output


def assert_user_error(result: Result, *names: str) -> None:
    """Non-zero exit, one line on stderr naming the file, no traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
    for name in names:
        assert name in lines[0], f"{name!r} not named in {lines[0]!r}"


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# -- ask -------------------------------------------------------------------------


def test_ask_answers_with_the_gbizid_contact() -> None:
    result = run("ask", "申請マイページのIDがわからない")
    assert_clean_exit(result)
    assert "gBizID" in result.stdout
    assert GBIZ_PHONE in result.stdout
    assert "{{contact:" not in result.stdout


def test_ask_json_prints_one_json_line() -> None:
    result = run("ask", "--json", "申請マイページのIDがわからない")
    assert_clean_exit(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    obj = json.loads(lines[0])
    assert set(obj) >= {"query", "status", "answer", "candidates", "dialog"}
    assert obj["query"] == "申請マイページのIDがわからない"
    assert obj["status"] == "answered"
    assert set(obj["answer"]) >= {"id", "question", "text", "program", "source"}
    assert obj["answer"]["id"] == "it2020-mypage-id-forgotten"
    assert GBIZ_PHONE in obj["answer"]["text"]
    assert isinstance(obj["candidates"], list) and obj["candidates"]
    assert obj["candidates"][0]["id"] == obj["answer"]["id"]
    assert obj["suggestions"] == []  # answered: nothing offered beside it


def test_ask_json_lists_the_entries_offered_under_a_not_found() -> None:
    question = "効果報告の入力途中で保存できる？一回で全部入力しきれない"
    obj = json.loads(run("ask", "--json", question).stdout)
    assert obj["status"] == "no_match" and obj["answer"] is None
    assert "it2023-report-temporary-save" in [s["id"] for s in obj["suggestions"]]
    assert all(s["label"] in obj["text"] for s in obj["suggestions"])  # the text lists them too


def test_ask_stdin_answers_each_line_in_order() -> None:
    questions = ["申請マイページのIDがわからない", "こんにちは", "効果報告は何回必要ですか"]
    result = run("ask", "--json", input="\n".join(questions) + "\n")
    assert_clean_exit(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    assert [json.loads(line)["query"] for line in lines] == questions


def test_ask_stdin_plain_text() -> None:
    result = run("ask", input="申請マイページのIDがわからない\nありがとう\n")
    assert_clean_exit(result)
    assert GBIZ_PHONE in result.stdout


PROGRAM_QUERIES = [
    "効果報告は何回必要ですか",
    "コールセンターの電話番号を教えて",
    "ツールを一部解約したら辞退届いる？",
    "労働生産性の計算方法",
    "申請マイページのIDがわからない",
    "ログインできません",
    "今日の天気は？",
]


def test_program_option_restricts_answers(kb: KnowledgeBase) -> None:
    result = run("ask", "--json", "--program", "it2020", input="\n".join(PROGRAM_QUERIES) + "\n")
    assert_clean_exit(result)
    outcomes = json_lines(result)
    assert [o["query"] for o in outcomes] == PROGRAM_QUERIES
    allowed = {"it2020", "common"}
    for o in outcomes:
        if o["answer"] is not None:
            assert o["answer"]["program"] in allowed, o
        for cand in o["candidates"]:
            assert kb.by_id[cand["id"]].program in allowed, (o["query"], cand)
        for choice in o.get("choices", []):
            if choice.get("id"):
                assert kb.by_id[choice["id"]].program in allowed, (o["query"], choice)
        text = o["answer"]["text"] if o["answer"] else o.get("text", "")
        assert not [n for n in NUMBERS_2023 if n in text], (o["query"], text)
    assert any(o["status"] == "answered" for o in outcomes)


def test_invalid_program_is_a_usage_error() -> None:
    result = run("ask", "--program", "x", "申請マイページのIDがわからない")
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "--program" in result.stderr


# -- kb check -------------------------------------------------------------------------


def test_kb_check_passes_on_the_shipped_kb() -> None:
    result = run("kb", "check")
    assert_clean_exit(result)
    assert "Traceback" not in result.output


# -- eval -----------------------------------------------------------------------------


def test_eval_json_reports_the_metrics() -> None:
    result = run("eval", "--queries", str(DEV_QUERIES), "--json")
    assert_clean_exit(result)
    report = json.loads(result.stdout)
    assert set(report) >= {
        "sr1",
        "sr5",
        "mrr10",
        "in_correct",
        "in_wrong",
        "in_clarify",
        "in_no_match",
        "out_refused",
        "ndcg10",
        "recall10",
        "p50_ms",
        "p99_ms",
        "n",
    }
    lines = DEV_QUERIES.read_text(encoding="utf-8").splitlines()
    n_lines = sum(1 for line in lines if line.strip() and not line.startswith("#"))
    assert report["n"] == n_lines
    shares = ("in_correct", "in_wrong", "in_clarify", "in_no_match")
    assert abs(sum(report[k] for k in shares) - 1.0) < 0.01, "every in-scope question has one outcome"
    for key in ("sr1", "sr5", "mrr10", "ndcg10", "recall10", *shares, "out_refused"):
        assert 0.0 <= report[key] <= 1.0, (key, report[key])
    assert report["sr1"] <= report["sr5"]
    assert 0.0 <= report["p50_ms"] <= report["p99_ms"]


# -- user mistakes: one line on stderr, no traceback ------------------------------------


def test_eval_missing_queries_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    assert_user_error(run("eval", "--queries", str(missing)), str(missing))


def test_eval_queries_is_a_directory(tmp_path: Path) -> None:
    assert_user_error(run("eval", "--queries", str(tmp_path)), str(tmp_path))


def test_eval_queries_with_a_broken_line(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_text(
        '{"query": "ログインできません", "gold_ids": ["it2020-login-failed"]}\n{"query": "途中で切れた\n',
        encoding="utf-8",
    )
    assert_user_error(run("eval", "--queries", str(path)), f"{path}:2")


def test_eval_queries_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "queries-sjis.jsonl"
    path.write_bytes('{"query": "ログインできません", "gold_ids": []}\n'.encode("shift_jis"))
    assert_user_error(run("eval", "--queries", str(path)), str(path))


def test_eval_missing_kb_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing-kb.jsonl"
    assert_user_error(run("eval", "--queries", str(DEV_QUERIES), "--kb", str(missing)), str(missing))


def test_eval_kb_is_a_directory(tmp_path: Path) -> None:
    assert_user_error(run("eval", "--queries", str(DEV_QUERIES), "--kb", str(tmp_path)), str(tmp_path))


def test_ask_missing_kb_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing-kb.jsonl"
    assert_user_error(run("ask", "--kb", str(missing), "ログインできない"), str(missing))


def test_ask_kb_with_a_broken_line(tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl"
    path.write_text(
        '{"id": "a", "question": "ログインできない", "answer": "A"}\nnot json\n', encoding="utf-8"
    )
    assert_user_error(run("ask", "--kb", str(path), "ログインできない"), f"{path}:2")


def test_ask_with_a_jsonl_kb(tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl"
    rows = [
        {
            "id": "login",
            "question": "ログインできないときはどうすればいいですか",
            "answer": "IDを確認してください",
        },
        {"id": "cancel", "question": "ツールを解約したい", "answer": "辞退届を出してください"},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    result = run("ask", "--json", "--kb", str(path), "ログインできない")
    assert_clean_exit(result)
    (obj,) = json_lines(result)
    assert obj["candidates"] and obj["candidates"][0]["id"] == "login"


# -- the installed console script ---------------------------------------------------------


def test_console_script_runs() -> None:
    script = Path(sys.executable).parent / "kounen"
    assert script.is_file(), f"console script not installed at {script}"
    env = {**os.environ, "PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [str(script), "ask", "申請マイページのIDがわからない"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "gBizID" in proc.stdout
    assert GBIZ_PHONE in proc.stdout


@pytest.mark.parametrize("args", [["--help"], ["ask", "--help"], ["eval", "--help"], ["kb", "--help"]])
def test_help(args: list[str]) -> None:
    assert_clean_exit(run(*args))
