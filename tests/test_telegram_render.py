"""The Telegram adapter's pure parts and its helpers: rendering, settings, redaction, ordering,
retries, the update claims and the per-conversation lock of the store."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram import Update
from telegram.error import BadRequest, NetworkError

from bot.service import ServiceTurn
from bot.settings import SettingsError, load_settings, redact_in_logs
from bot.telegram import (
    MAX_MESSAGE,
    ChatOrder,
    RetryingRateLimiter,
    escape,
    file_base_url,
    keyboard,
    render_replies,
    render_turn,
    split_text,
    utf16_len,
)
from bot.telegram.render import label_width
from dialogs.types import Reply, ReplyChoice

TOKEN = "123456789:AAH-realistic_token_0123456789abcdefgh"


# -- text -------------------------------------------------------------------------------------


def test_escape_shows_markup_literally() -> None:
    assert escape("<b>太字</b> & <a href='x'>") == "&lt;b&gt;太字&lt;/b&gt; &amp; &lt;a href='x'&gt;"


def test_short_text_is_one_piece_and_empty_text_none() -> None:
    assert split_text("こんにちは\n") == ["こんにちは\n"]
    assert split_text("") == [] and split_text(" \n") == []
    exact = "あ" * MAX_MESSAGE
    assert split_text(exact) == [exact]


def test_long_text_is_cut_between_lines() -> None:
    lines = [f"{i:03d}" + "い" * 95 for i in range(120)]  # 99 characters a line
    pieces = split_text("\n".join(lines))
    assert len(pieces) == 3
    assert all(len(p) <= MAX_MESSAGE for p in pieces)
    assert [line for p in pieces for line in p.split("\n")] == lines


def test_one_over_long_line_is_cut_inside_without_halving_an_emoji() -> None:
    text = "😀" * 3000  # 2 UTF-16 units each: 6,000 units
    pieces = split_text(text)
    assert "".join(pieces) == text
    assert all(utf16_len(p) <= MAX_MESSAGE for p in pieces)
    assert [utf16_len(p) for p in pieces] == [4096, 1904]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.characters(
                blacklist_categories=("Cs",), blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
            ),
            max_size=300,
        ),
        max_size=60,
    ),
    st.integers(50, 400),
)
def test_pieces_always_fit_and_keep_every_line(lines: list[str], limit: int) -> None:
    text = "\n".join(lines)
    pieces = split_text(text, limit)
    assert all(0 < utf16_len(p) <= limit for p in pieces)
    if all(utf16_len(line) + 1 <= limit for line in lines):
        kept = [line for p in pieces for line in p.split("\n")]
        assert [line for line in kept if line.strip()] == [line for line in lines if line.strip()]


# -- keyboards -----------------------------------------------------------------------------------


def rows(markup: Any) -> list[list[tuple[str, str]]]:
    return [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard]


def test_keyboard_layout_navigation_and_feedback() -> None:
    choices = (
        ReplyChoice("はい", "yes"),
        ReplyChoice("いいえ", "no"),
        ReplyChoice("戻る", "cmd:back"),
        ReplyChoice("やめる", "cmd:cancel"),
    )
    assert rows(keyboard(choices, feedback="it2020-x")) == [
        [("はい", "yes"), ("いいえ", "no")],
        [("戻る", "cmd:back"), ("やめる", "cmd:cancel")],
        [("👍 役に立った", "fb:1:it2020-x"), ("👎 役に立たなかった", "fb:0:it2020-x")],
    ]
    long = (ReplyChoice("申請マイページにログインできない場合", "faq:a"), ReplyChoice("短い", "faq:b"))
    assert rows(keyboard(long)) == [[("申請マイページにログインできない場合", "faq:a")], [("短い", "faq:b")]]
    assert keyboard(()) is None


def test_only_the_dialogs_navigation_gets_a_row_of_its_own() -> None:
    """A recap's change buttons and はい/いいえ are choices, not navigation: never nine buttons on one row."""
    recap = tuple(
        ReplyChoice(f"{name}を変更", f"cmd:edit.{i}")
        for i, name in enumerate(["営業利益", "人件費", "年間平均労働時間"])
    )
    assert rows(keyboard(recap)) == [
        [("営業利益を変更", "cmd:edit.0"), ("人件費を変更", "cmd:edit.1")],
        [("年間平均労働時間を変更", "cmd:edit.2")],
    ]
    yes_no = (
        ReplyChoice("はい", "cmd:yes"),
        ReplyChoice("いいえ", "cmd:no"),
        ReplyChoice("戻る", "cmd:back"),
    )
    assert rows(keyboard(yes_no)) == [[("はい", "cmd:yes"), ("いいえ", "cmd:no")], [("戻る", "cmd:back")]]


def test_buttons_share_a_row_only_while_every_label_fits_its_share() -> None:
    assert label_width("計算する") == 4 and label_width("2020") == pytest.approx(2.4)
    quick = [
        ("よくある質問", "go:faq"),
        ("計算する", "go:calc"),
        ("問い合わせ先", "go:contacts"),
        ("最初から", "go:reset"),
    ]
    # Six full-width characters do not fit a third of a phone's width: two rows of two.
    assert rows(keyboard(tuple(ReplyChoice(*c) for c in quick))) == [quick[:2], quick[2:]]
    short = [("はい", "a"), ("いいえ", "b"), ("不明", "c"), ("戻す", "d")]
    assert rows(keyboard(tuple(ReplyChoice(*c) for c in short))) == [short[:3], short[3:]]
    programs = [
        ("2020", "prog:a"),
        ("2023複数社連携", "prog:b"),
        ("詳しく（2023 複数社連携）", "more:b"),
        ("x", "y"),
    ]
    assert rows(keyboard(tuple(ReplyChoice(*c) for c in programs))) == [
        programs[:2],
        programs[2:3],
        programs[3:],
    ]


def test_buttons_whose_data_telegram_would_refuse_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    choices = (
        ReplyChoice("長すぎ", "faq:" + "x" * 61),
        ReplyChoice("全角", "faq:あ"),
        ReplyChoice("ok", "faq:ok"),
    )
    assert rows(keyboard(choices)) == [[("ok", "faq:ok")]]
    assert "not 1-64 bytes" in caplog.text
    assert keyboard((), feedback="x" * 70) is None  # no 👍/👎 rather than a refused message


def test_labels_are_one_line_and_cut() -> None:
    [[(label, _)]] = rows(keyboard((ReplyChoice("改行\nあり" + "あ" * 80, "faq:a"),)))
    assert "\n" not in label and len(label) == 60 and label.endswith("…")


def test_feedback_goes_under_the_answer_or_the_summary() -> None:
    answer = ServiceTurn(
        [Reply("答え"), Reply("続きの質問", (ReplyChoice("戻る", "cmd:back"),))], "p", "s", None, "e1"
    )
    out = render_turn(answer)
    assert [m.markup is not None for m in out] == [True, True]
    assert rows(out[0].markup)[-1][0][1] == "fb:1:e1"
    summary = ServiceTurn(
        [Reply("前置き"), Reply("結果", result={"x": 1}), Reply("関連")], None, None, {"x": 1}, "flow:p"
    )
    out = render_turn(summary)
    assert [m.markup is not None for m in out] == [False, True, False]
    plain = ServiceTurn([Reply("<こんにちは>")], None, None, None)
    assert render_turn(plain)[0].html == "&lt;こんにちは&gt;" and render_turn(plain)[0].markup is None


def test_a_reply_with_buttons_but_no_text_still_has_a_text() -> None:
    [message] = render_replies([Reply("", (ReplyChoice("はい", "yes"),))])
    assert message.html and message.markup is not None
    assert render_replies([Reply("")]) == []


def test_file_base_url_follows_the_api_base() -> None:
    assert file_base_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_base_url("http://127.0.0.1:8081/bot{token}") == "http://127.0.0.1:8081/file/bot{token}"


# -- settings and logs --------------------------------------------------------------------------


def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("KOUNEN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_telegram_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env(monkeypatch, tmp_path)
    defaults = load_settings()
    assert (
        defaults.telegram_token is None and defaults.telegram_api_base_url == "https://api.telegram.org/bot"
    )
    assert (defaults.listen_host, defaults.listen_port, defaults.workers) == ("127.0.0.1", 8080, 1)
    assert defaults.set_webhook_on_start is False
    with pytest.raises(SettingsError, match="KOUNEN_TELEGRAM_TOKEN is not set"):
        defaults.require_token()
    monkeypatch.setenv("KOUNEN_TELEGRAM_TOKEN", f" {TOKEN} ")
    monkeypatch.setenv("KOUNEN_TELEGRAM_API_BASE_URL", "http://127.0.0.1:8081/bot")
    monkeypatch.setenv("KOUNEN_WEBHOOK_URL", "https://bot.example.jp/telegram/webhook")
    monkeypatch.setenv("KOUNEN_WEBHOOK_SECRET", "abc_DEF-123")
    monkeypatch.setenv("KOUNEN_SET_WEBHOOK_ON_START", "true")
    monkeypatch.setenv("KOUNEN_WORKERS", "4")
    loaded = load_settings()
    assert loaded.require_token() == TOKEN and loaded.require_webhook_secret() == "abc_DEF-123"
    assert loaded.set_webhook_on_start and loaded.workers == 4
    assert TOKEN not in repr(loaded) and "abc_DEF-123" not in repr(loaded)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("KOUNEN_TELEGRAM_TOKEN", "1234:short", "malformed bot token"),
        ("KOUNEN_TELEGRAM_TOKEN", "no colon at all but long enough 123", "malformed bot token"),
        ("KOUNEN_WEBHOOK_SECRET", "has spaces in it", "1-256 characters"),
        ("KOUNEN_WEBHOOK_SECRET", "x" * 257, "1-256 characters"),
        ("KOUNEN_TELEGRAM_API_BASE_URL", "api.telegram.org/bot", "not an http(s) URL"),
        ("KOUNEN_WEBHOOK_URL", "ftp://x/y", "not an http(s) URL"),
        ("KOUNEN_LISTEN_PORT", "70000", "KOUNEN_LISTEN_PORT"),
        ("KOUNEN_WORKERS", "0", "KOUNEN_WORKERS"),
    ],
)
def test_bad_telegram_settings_are_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, message: str
) -> None:
    clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    text = str(raised.value)
    assert name in text and message in text and "\n" not in text
    if "TOKEN" in name or "SECRET" in name:
        assert value not in text


def test_secrets_are_redacted_from_log_lines_and_tracebacks() -> None:
    logger = logging.getLogger("kounen-test-redaction")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    try:
        redact_in_logs([TOKEN], logger)
        redact_in_logs(["second-secret"], logger)  # adds to the same formatter
        try:
            raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/getMe failed")
        except RuntimeError:
            logger.exception("call failed for %s and second-secret", TOKEN)
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert TOKEN not in logged and "second-secret" not in logged
    assert logged.count("<redacted>") == 3 and "Traceback" in logged


# -- ordering and retries ----------------------------------------------------------------------


def update_of(chat: int, update_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": chat, "type": "private"},
                "text": "x",
            },
        },
        None,
    )


def test_chat_order_keeps_one_chats_order_and_runs_chats_side_by_side() -> None:
    events: list[str] = []
    order = ChatOrder()

    async def work(chat: str, name: str, seconds: float) -> None:
        async with order(chat):
            events.append(f"start {name}")
            await asyncio.sleep(seconds)
            events.append(f"end {name}")

    async def main() -> None:
        await asyncio.gather(work("1", "a1", 0.2), work("1", "a2", 0.0), work("2", "b1", 0.0))
        assert order.idle  # nothing kept for idle chats

    asyncio.run(main())
    assert events.index("end a1") < events.index("start a2")
    assert events.index("end b1") < events.index("end a1")


def test_network_errors_are_retried_with_backoff_but_bad_requests_are_not() -> None:
    calls: list[str] = []

    async def flaky(*_args: Any, **_kwargs: Any) -> Any:
        calls.append("flaky")
        if calls.count("flaky") < 3:
            raise NetworkError("connection reset")
        return {"ok": True}

    async def bad(*_args: Any, **_kwargs: Any) -> Any:
        calls.append("bad")
        raise BadRequest("message is too long")

    async def down(*_args: Any, **_kwargs: Any) -> Any:
        calls.append("down")
        raise NetworkError("Internal Server Error")

    async def main() -> None:
        limiter = RetryingRateLimiter(network_retries=3, backoff=0.01)
        started = time.monotonic()
        assert await limiter.process_request(flaky, (), {}, "sendMessage", {"chat_id": 1}, None) == {
            "ok": True
        }
        assert time.monotonic() - started >= 0.03  # waited 0.01 + 0.02
        with pytest.raises(BadRequest):
            await limiter.process_request(bad, (), {}, "sendMessage", {"chat_id": 1}, None)
        with pytest.raises(NetworkError):
            await RetryingRateLimiter(network_retries=1, backoff=0).process_request(
                down, (), {}, "sendMessage", {}, None
            )

    asyncio.run(main())
    assert (calls.count("flaky"), calls.count("bad"), calls.count("down")) == (3, 1, 2)


def test_questions_too_long_for_a_button_are_listed_and_numbered() -> None:
    from bot.telegram.render import numbered_long_labels

    long_one = ReplyChoice("ITツールの導入から1年以上経過後に解約する場合、何か手続きは必要ですか。", "faq:a")
    short_q = ReplyChoice("辞退届はどこから提出しますか。", "faq:b")
    quick = ReplyChoice("計算する", "go:calc")
    text, shown = numbered_long_labels("近い質問があります。", [long_one, short_q, quick])
    # Every sentence-long label is listed in order; a word that fits beside another stays a button.
    assert text == f"近い質問があります。\n\n1. {long_one.label}\n2. {short_q.label}"
    assert [(c.label, c.value) for c in shown] == [("1", "faq:a"), ("2", "faq:b"), ("計算する", "go:calc")]


def test_labels_that_fit_are_left_as_they_are() -> None:
    from bot.telegram.render import numbered_long_labels

    choices = [ReplyChoice("辞退届はどこから提出しますか。", "faq:b"), ReplyChoice("計算する", "go:calc")]
    assert numbered_long_labels("本文", choices) == ("本文", tuple(choices))
