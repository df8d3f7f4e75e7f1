"""`kounen chat`: in-process over byte streams, and as a real process talking line by line."""

from __future__ import annotations

import io
import json
import os
import selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bot.chat import ChatError, chat, chat_command, render_text, to_input
from bot.service import ConversationService
from bot.settings import DEFAULT_HASH_SALT, Settings, SettingsError, load_settings
from bot.store import Store
from dialogs.engine import Flow, Invalid, Step
from dialogs.types import Reply, ReplyChoice, UserInput
from faq import KnowledgeBase, Policy

ROOT = Path(__file__).parents[1]
GBIZ_PHONE = "06-6225-7877"
IT2023_PHONE = "0570-666-376"
JSON_KEYS = {"input", "replies", "dialog", "step", "result"}


def _count(text: str, values: Any) -> int:
    if not text.isdigit():
        raise Invalid("数字で入力してください（例：10）。")
    return int(text)


# A small flow under the real flow's id, so the chat is tested apart from the real flows' wording.
TOY_FLOWS = {
    "productivity": Flow(
        id="productivity",
        title="労働生産性の試算",
        intro="労働生産性の試算をご案内します。",
        steps=(
            Step("employees", "従業員数は？", _count, "従業員数の説明"),
            Step("hours", "年間の平均労働時間は？", _count, "労働時間の説明"),
        ),
        finish=lambda v: [
            Reply(
                f"総労働時間は {v['employees'] * v['hours']} 時間です。",
                result={"total_hours": v["employees"] * v["hours"]},
            )
        ],
    )
}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'chat.db'}"


@pytest.fixture
def service(kb: KnowledgeBase, policy: Policy, db_url: str) -> Iterator[ConversationService]:
    with Store.open(db_url) as store:
        yield ConversationService(kb, policy, store, flows=TOY_FLOWS)


def run_chat(service: ConversationService, data: bytes, **kwargs: Any) -> str:
    out = io.StringIO()
    chat(stdin=io.BytesIO(data), stdout=out, service=service, **kwargs)
    return out.getvalue()


def json_turns(output: str) -> list[dict[str, Any]]:
    lines = output.splitlines()
    turns = [json.loads(line) for line in lines]
    assert all(set(t) == JSON_KEYS for t in turns)
    return turns


# -- in-process -----------------------------------------------------------------------


def test_json_mode_prints_one_line_per_message(service: ConversationService) -> None:
    data = (
        "申請マイページのIDがわからない\n\n労働生産性を計算したい\n10\n".encode()
        + b"\xff\xfe\x80\n"
        + b"1800\n"
    )
    turns = json_turns(run_chat(service, data, as_json=True))
    assert [t["input"] for t in turns] == [
        "申請マイページのIDがわからない",
        "",
        "労働生産性を計算したい",
        "10",
        "\ufffd\ufffd\ufffd",
        "1800",
    ]
    assert GBIZ_PHONE in turns[0]["replies"][0]["text"]
    assert turns[0]["dialog"] is None and turns[0]["result"] is None
    assert turns[1]["replies"][0]["text"]  # an empty line gets an answer too
    assert (turns[2]["dialog"], turns[2]["step"]) == ("productivity", "employees")
    assert {"label": "ヘルプ", "value": "cmd:help"} in turns[2]["replies"][-1]["choices"]
    assert turns[3]["step"] == "hours"
    assert turns[4]["step"] == "hours"  # invalid UTF-8: re-asked, no crash
    assert turns[5] == {**turns[5], "dialog": None, "step": None, "result": {"total_hours": 18000}}


def test_json_mode_accepts_choice_values_as_lines(service: ConversationService) -> None:
    data = "問い合わせの電話番号を教えて\nprog:it2023-multi\n".encode()
    clarify, answer = json_turns(run_chat(service, data, as_json=True))
    offered = [c["value"] for c in clarify["replies"][0]["choices"]]
    assert offered[:4] == ["prog:it2020", "prog:it2023-multi", "prog:other", "prog:unknown"]
    assert set(offered[4:]) == {"more:it2020-contact", "more:it2023-contact"}
    assert IT2023_PHONE in answer["replies"][0]["text"]


def test_json_mode_does_not_turn_numbers_into_choices(service: ConversationService) -> None:
    data = "問い合わせの電話番号を教えて\n1\n".encode()
    _, second = json_turns(run_chat(service, data, as_json=True))
    # "1" is not the first choice (IT導入補助金2020): no answer given within that program.
    assert "でお答えしています" not in second["replies"][0]["text"]


def test_text_mode_numbers_choices_and_accepts_the_number(service: ConversationService) -> None:
    output = run_chat(service, "問い合わせの電話番号を教えて\n２\n".encode())
    first, second = output.split("  4. わからない", 1)
    assert "  1. 2020" in first and "  2. 2023複数社連携" in first  # the program buttons used everywhere
    assert IT2023_PHONE in second and "IT導入補助金2023 複数社連携 でお答えしています" in second


def test_a_number_after_the_details_picks_from_the_list_still_above(service: ConversationService) -> None:
    # 5 = 詳しく（2020）: the details have no choices of their own, so 2 is still 2023複数社連携.
    output = run_chat(service, "ツールを半年で解約したらどうなる？\n5\n2\n".encode())
    answers = output.split("出典：", 1)[1]
    assert "見つかりませんでした" not in answers
    assert "【IT導入補助金2023 複数社連携】" in answers and "でお答えしています" in answers


def test_text_mode_shows_dialog_commands_as_a_hint_and_numbers_stay_answers(
    service: ConversationService,
) -> None:
    output = run_chat(service, "労働生産性を計算したい\n2\n3\n".encode())
    assert "（ヘルプ・やめる と入力できます）" in output
    assert "総労働時間は 6 時間です。" in output  # "2" was an answer, not the 2nd command


def test_interactive_mode_prompts_resumes_and_quits(service: ConversationService) -> None:
    run_chat(service, "労働生産性を計算したい\n".encode(), as_json=True, user="tty")
    output = run_chat(service, b"\n5\n/quit\n10\n", interactive=True, user="tty")
    assert output.startswith("kounen チャット")
    assert "「労働生産性の試算」の途中です。続きからどうぞ。\n従業員数は？" in output
    assert output.count("> ") == 3  # greeting, after the empty line, after "5"
    assert "年間の平均労働時間は？" in output
    assert "総労働時間" not in output  # /quit ended the chat before "10"


def test_conversation_resumes_in_a_new_chat_on_the_same_database(
    kb: KnowledgeBase, policy: Policy, db_url: str
) -> None:
    for data, expected_step in (
        (b"/program it2023-multi\n", None),
        ("労働生産性を計算したい\n".encode(), "employees"),
    ):
        with Store.open(db_url) as store:
            service = ConversationService(kb, policy, store, flows=TOY_FLOWS)
            (turn,) = json_turns(run_chat(service, data, as_json=True, user="u1"))
            assert turn["step"] == expected_step
    with Store.open(db_url) as store:
        service = ConversationService(kb, policy, store, flows=TOY_FLOWS)
        (turn,) = json_turns(run_chat(service, b"12\n", as_json=True, user="u1"))
        assert turn["step"] == "hours"
        assert store.load("cli", "u1").program == "it2023-multi"


def test_to_input_and_render_text() -> None:
    replies = [
        Reply("どちら？", (ReplyChoice("A", "faq:a"), ReplyChoice("B", "faq:b"))),
        Reply("質問", (ReplyChoice("ヘルプ", "cmd:help"),)),
    ]
    assert to_input("2", replies, numbers=True) == UserInput(choice="faq:b")
    assert to_input("３", replies, numbers=True) == UserInput(text="３")
    assert to_input("2", replies, numbers=False) == UserInput(text="2")
    assert to_input("faq:a", replies, numbers=False) == UserInput(choice="faq:a")
    # The exact label of a numbered choice picks it, as its number does.
    assert to_input(" B ", replies, numbers=True) == UserInput(choice="faq:b")
    assert to_input("B", replies, numbers=False) == UserInput(text="B")
    assert to_input("Bです", replies, numbers=True) == UserInput(text="Bです")
    assert render_text(replies) == "どちら？\n  1. A\n  2. B\n質問\n  （ヘルプ と入力できます）"


def test_typing_詳しく_shows_the_details_like_its_number(
    kb: KnowledgeBase, policy: Policy, tmp_path: Path
) -> None:
    typed = "辞退にあたるか確認したい\n1\n2\n2021/4/1\n2021/12/1\n2021/9/30\n"
    with Store.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        output = run_chat(ConversationService(kb, policy, store), f"{typed}詳しく\n".encode())
    shown = output.rsplit("> 詳しく", 1)[-1] if "> 詳しく" in output else output.rsplit("入力した値", 1)[1]
    assert "見つかりません" not in shown and "基準日：2021年4月1日" in shown


def test_bad_database_url_is_one_line_and_exit_2(kb: KnowledgeBase, policy: Policy) -> None:
    with pytest.raises(ChatError, match="invalid setting --database-url"):
        chat(database_url="nonsense", stdin=io.BytesIO(b""), stdout=io.StringIO(), kb=kb, policy=policy)
    app = typer.Typer()
    app.command()(chat_command)
    result = CliRunner().invoke(app, ["--database-url", "postgresql+psycopg://u:pw@127.0.0.1:1/x"], input="")
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("kounen: cannot open database") and ":pw@" not in line


def test_user_must_be_a_sensible_id(service: ConversationService) -> None:
    for user in ("", "  ", "x" * 129):
        with pytest.raises(ChatError, match="--user"):
            run_chat(service, b"hi\n", user=user)


def test_bad_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOUNEN_LOG_LEVEL", "LOUD")
    with pytest.raises(ChatError, match="KOUNEN_LOG_LEVEL"):
        chat(stdin=io.BytesIO(b""), stdout=io.StringIO())


# -- settings -------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No KOUNEN_ variables, no .env, and a data dir of our own."""
    for name in list(os.environ):
        if name.startswith("KOUNEN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_settings_defaults(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{clean_env / 'xdg' / 'kounen' / 'kounen.db'}"
    assert settings.uses_default_database
    assert settings.hash_salt.get_secret_value() == DEFAULT_HASH_SALT
    assert DEFAULT_HASH_SALT not in repr(settings)
    assert settings.log_level == "WARNING"


def test_settings_from_environment_and_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text(
        "KOUNEN_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test\nKOUNEN_LOG_LEVEL=debug\nOTHER=1\n"
    )
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert settings.log_level == "DEBUG"
    monkeypatch.setenv("KOUNEN_LOG_LEVEL", "error")
    monkeypatch.setenv("KOUNEN_HASH_SALT", "a-long-secret-salt")
    assert load_settings().log_level == "ERROR"  # the environment wins over .env
    assert load_settings().hash_salt.get_secret_value() == "a-long-secret-salt"
    assert load_settings(database_url="sqlite:///x.db").database_url == "sqlite:///x.db"  # and --options win
    monkeypatch.setenv("KOUNEN_DATABASE_URL", "")
    assert load_settings().database_url.startswith("postgresql")  # empty counts as unset


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("KOUNEN_DATABASE_URL", "not a url", "KOUNEN_DATABASE_URL"),
        ("KOUNEN_HASH_SALT", "short", "KOUNEN_HASH_SALT"),
        ("KOUNEN_LOG_LEVEL", "LOUD", "KOUNEN_LOG_LEVEL"),
    ],
)
def test_invalid_settings_are_one_line(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"invalid setting {named}: ") and "\n" not in message


def test_default_database_is_created_in_the_data_dir(
    clean_env: Path, kb: KnowledgeBase, policy: Policy
) -> None:
    out = io.StringIO()
    chat(as_json=True, stdin=io.BytesIO(b"/program it2020\n"), stdout=out, kb=kb, policy=policy)
    assert json_turns(out.getvalue())[0]["dialog"] is None
    database = clean_env / "xdg" / "kounen" / "kounen.db"
    assert database.is_file()
    with Store.open(Settings().database_url) as store:
        assert store.load("cli", "local").program == "it2020"


# -- as a process ---------------------------------------------------------------------


def _converse(command: list[str], env: dict[str, str], messages: list[str]) -> list[dict[str, Any]]:
    """Send one line, wait for its JSON line, then send the next: proves each line is flushed."""
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    assert proc.stdin is not None and proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    turns = []
    try:
        for message in messages:
            proc.stdin.write(message.encode() + b"\n")
            proc.stdin.flush()
            assert selector.select(timeout=60), "no reply within 60 s (output not flushed?)"
            turns.append(json.loads(proc.stdout.readline()))
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        assert proc.stdout.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return turns


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "KOUNEN_DATABASE_URL": f"sqlite:///{tmp_path / 'proc.db'}"}


def test_chat_process_converses_line_by_line_and_resumes_after_restart(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-c",
        "import typer; from bot.chat import chat_command; typer.run(chat_command)",
        "--json",
        "--user",
        "u1",
    ]
    env = _env(tmp_path)
    first = _converse(command, env, ["問い合わせの電話番号を教えて", "/program it2023-multi"])
    assert [c["value"] for c in first[0]["replies"][0]["choices"]][:2] == ["prog:it2020", "prog:it2023-multi"]
    second = _converse(command, env, ["問い合わせの電話番号を教えて"])
    assert IT2023_PHONE in second[0]["replies"][0]["text"]  # the program set before the restart


def test_kounen_chat_console_script(tmp_path: Path) -> None:
    kounen = Path(sys.executable).parent / "kounen"
    env = _env(tmp_path)
    turns = _converse(
        [str(kounen), "chat", "--json", "--user", "u1"], env, ["申請マイページのIDがわからない"]
    )
    assert GBIZ_PHONE in turns[0]["replies"][0]["text"]
    bad = subprocess.run(
        [str(kounen), "chat", "--database-url", "nosuchdb://x"],
        input=b"",
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2
    assert len(bad.stderr.decode().strip().splitlines()) == 1


def test_the_recaps_change_buttons_are_numbered_and_a_number_changes_that_value(
    kb: KnowledgeBase, policy: Policy, tmp_path: Path
) -> None:
    typed = "辞退にあたるか確認したい\n1\n2\n2021/4/1\n2021/12/1\n2021/9/30\n"
    with Store.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        output = run_chat(ConversationService(kb, policy, store), typed.encode())  # the shipped flows
    recap = output.rsplit("入力した値", 1)[1]
    number = next(line.split(".")[0].strip() for line in recap.splitlines() if "解約日を変更" in line)
    assert number.isdigit()
    with Store.open(f"sqlite:///{tmp_path / 'b.db'}") as store:
        again = run_chat(ConversationService(kb, policy, store), f"{typed}{number}\n".encode())
    asked = again.rsplit("入力した値", 1)[1]
    assert "解約・利用停止" in asked and "いまの値：2021年12月1日" in asked
