"""Webhook mode (`kounen serve`) and the start-up errors of `kounen bot` / `kounen serve`.

The ASGI app runs in-process (Starlette's TestClient, lifespan included) against the fake
Bot API server; the multi-worker test starts real `kounen serve` processes on PostgreSQL
(skipped with the reason when the server on 127.0.0.1:5432 does not answer).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fake_telegram import FakeTelegram
from pydantic import SecretStr
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from typer.testing import CliRunner, Result

from bot.cli import app as cli_app
from bot.service import CONFLICT, ConversationService
from bot.settings import Settings, load_settings
from bot.store import ProcessedUpdate, Store
from bot.telegram import ERROR_TEXT
from bot.web import HEALTH_PATH, WEBHOOK_PATH, create_app
from faq import KnowledgeBase, Policy

SECRET = "webhook-secret_0123456789"
GBIZ_PHONE = "06-6225-7877"
KOUNEN = Path(sys.executable).parent / "kounen"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def web_settings(fake: FakeTelegram, db_url: str, **more: Any) -> Settings:
    return load_settings(
        telegram_token=fake.token,
        telegram_api_base_url=fake.base_url,
        webhook_secret=SECRET,
        database_url=db_url,
        **more,
    )


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'web.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened


@pytest.fixture
def service(kb: KnowledgeBase, policy: Policy, store: Store) -> ConversationService:
    return ConversationService(kb, policy, store)


def hello() -> Starlette:
    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse("console")

    return Starlette(routes=[Route("/", page)])


class AppServer:
    """An ASGI app on uvicorn in a thread (lifespan included), reached over real HTTP."""

    def __init__(self, app: Starlette) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the app did not start"
            time.sleep(0.01)
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def client(fake: FakeTelegram, db_url: str, service: ConversationService) -> Iterator[httpx.Client]:
    settings = web_settings(
        fake, db_url, webhook_url="https://bot.example.jp/telegram/webhook", set_webhook_on_start=True
    )
    app = create_app(settings, service=service, extra_routes=[Mount("/console", app=hello())])
    server = AppServer(app)
    try:
        yield server.http
    finally:
        server.stop()


def post(client: httpx.Client, update: dict[str, Any], secret: str | bytes | None = SECRET) -> int:
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    return client.post(WEBHOOK_PATH, json=update, headers=headers).status_code


# -- the app in-process ---------------------------------------------------------------------


def test_start_registers_the_webhook_with_its_secret_and_the_health_is_ok(
    fake: FakeTelegram, client: httpx.Client
) -> None:
    assert fake.webhook == {
        "url": "https://bot.example.jp/telegram/webhook",
        "secret_token": SECRET,
        "allowed_updates": ["message", "edited_message", "callback_query"],
    }
    assert fake.commands and fake.commands[0]["command"] == "start"
    health = client.get(HEALTH_PATH)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["bot"] == fake.username
    # Extra routes (the console) are served beside the webhook, without its secret.
    assert client.get("/console/").text == "console"
    assert client.get("/console").status_code in (200, 307)


def test_a_webhook_with_a_missing_or_wrong_secret_is_rejected(
    fake: FakeTelegram, client: httpx.Client
) -> None:
    update = fake.make_message(601, "申請マイページのIDがわからない")
    assert post(client, update, secret=None) == 403
    assert post(client, update, secret="wrong") == 403
    assert post(client, update, secret=SECRET[:-1]) == 403
    assert post(client, update, secret=SECRET + "x") == 403
    assert post(client, update, secret="ｓｅｃｒｅｔ".encode()) == 403  # non-ASCII never raises
    assert client.get(WEBHOOK_PATH).status_code == 405
    assert fake.chat_messages(601) == []
    assert post(client, update) == 200
    [answer] = fake.chat_messages(601)  # handled before the response
    assert GBIZ_PHONE in answer.text


def test_a_redelivered_webhook_update_is_answered_once_and_bad_bodies_refused(
    fake: FakeTelegram, client: httpx.Client
) -> None:
    update = fake.make_message(602, "申請マイページのIDがわからない")
    assert post(client, update) == 200
    assert post(client, update) == 200
    assert len(fake.chat_messages(602)) == 1
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert client.post(WEBHOOK_PATH, content=b"{not json", headers=headers).status_code == 400
    assert client.post(WEBHOOK_PATH, json=[1, 2], headers=headers).status_code == 400
    assert client.post(WEBHOOK_PATH, json={"update_id": "x"}, headers=headers).status_code == 400


def test_a_huge_chunked_body_is_refused_while_it_is_read(fake: FakeTelegram, client: httpx.Client) -> None:
    """50 MB sent chunked (no Content-Length): the 413 comes back after about 1 MiB, while
    the client is still sending, so the worker never holds the body."""
    host, port = client.base_url.host, client.base_url.port or 80
    chunk = b"x" * 65536
    sent, response = 0, b""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        sock.setblocking(False)
        try:
            while sent < 50 << 20 and not response:
                try:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
                except BlockingIOError:
                    time.sleep(0.01)
                with contextlib.suppress(BlockingIOError):
                    response = sock.recv(4096)
        except OSError:  # the server closed the connection after answering
            pass
        if not response:
            sock.setblocking(True)
            response = sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 413"), response[:80]
    assert sent < 8 << 20, sent  # answered after about 1 MiB (plus socket buffers), not 50 MB
    assert post(client, fake.make_message(603, "申請マイページのIDがわからない")) == 200  # still serving


def test_malformed_updates_get_400_not_500(fake: FakeTelegram, client: httpx.Client) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    deep = b'{"update_id": 1, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert client.post(WEBHOOK_PATH, content=deep, headers=headers).status_code == 400
    for field in ("message", "callback_query", "edited_message"):
        assert post(client, {"update_id": 5, field: "a string"}) == 400
    broken = fake.make_message(604, "x")
    broken["message"]["chat"] = "not a chat"
    assert post(client, broken) == 400
    assert post(client, {"update_id": 6, "message": {"text": "no chat, no date"}}) == 400
    assert post(client, fake.make_message(604, "申請マイページのIDがわからない")) == 200


def test_the_app_refuses_to_start_without_a_secret(fake: FakeTelegram, db_url: str) -> None:
    from bot.settings import SettingsError

    settings = load_settings(
        telegram_token=fake.token, telegram_api_base_url=fake.base_url, database_url=db_url
    )
    with pytest.raises(SettingsError, match="KOUNEN_WEBHOOK_SECRET"):
        create_app(settings)


# -- several workers on PostgreSQL ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOUNEN_")}
    env.update({"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"), **values})
    return env


class Worker:
    """A `kounen serve` process."""

    def __init__(self, env: dict[str, str], cwd: Path, workers: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"serve-{self.port}.log"
        self.proc = subprocess.Popen(
            [str(KOUNEN), "serve", "--port", str(self.port), "--workers", str(workers)],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kounen serve exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(self.url + HEALTH_PATH, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"kounen serve not ready: {self.log.read_text()}")

    def post(self, update: dict[str, Any]) -> None:
        response = httpx.post(
            self.url + WEBHOOK_PATH,
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            timeout=60,
        )
        assert response.status_code == 200, response.text

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _dialog(fake: FakeTelegram, chat: int, workers: list[Worker], offset: int) -> list[int]:
    """The productivity dialog for `chat`, its updates alternating between the workers, each
    also redelivered to the other worker.  Returns the update ids sent."""
    sent: list[int] = []

    def deliver(update: dict[str, Any], turn: int) -> None:
        workers[(turn + offset) % 2].post(update)
        workers[(turn + offset + 1) % 2].post(update)  # Telegram retrying on the other worker
        sent.append(int(update["update_id"]))

    steps: list[str | tuple[str, str]] = [
        "/calc",
        "3000万",
        "2000万",
        "500万",
        "10",
        "1800",
        ("yes", "実績値"),
    ]
    steps += ["4,000", ("1", "年度目"), ("no", "2022")]
    for turn, step in enumerate(steps):
        if isinstance(step, str):
            deliver(fake.make_message(chat, step), turn)
        else:
            value, asked = step
            prompt = next(m for m in reversed(fake.chat_messages(chat)) if asked in m.text)
            deliver(fake.make_press(chat, prompt, value), turn)
    return sent


def test_two_webhook_workers_on_postgresql_share_chats_without_losing_or_doubling_updates(
    fake: FakeTelegram, pg_url: str, tmp_path: Path
) -> None:
    env = _clean_env(
        tmp_path,
        KOUNEN_TELEGRAM_TOKEN=fake.token,
        KOUNEN_TELEGRAM_API_BASE_URL=fake.base_url,
        KOUNEN_WEBHOOK_SECRET=SECRET,
        KOUNEN_WEBHOOK_URL="https://bot.example.jp/telegram/webhook",
        KOUNEN_SET_WEBHOOK_ON_START="true",
        KOUNEN_DATABASE_URL=pg_url,
    )
    # One process with two uvicorn workers, one with one: updates land on three workers.
    workers = [Worker(env, tmp_path, workers=2), Worker(env, tmp_path, workers=1)]
    try:
        for worker in workers:
            worker.wait_ready()
        assert fake.webhook is not None and fake.webhook["secret_token"] == SECRET
        assert len(fake.method_calls("setWebhook")) == 2  # once per `kounen serve`, not per worker
        chats = random.sample(range(10_000, 99_999), 3)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            dialogs = [
                pool.submit(_dialog, fake, chat, workers, offset) for offset, chat in enumerate(chats[:2])
            ]
            # Meanwhile a burst of one chat's messages hits both workers at once.
            burst = [fake.make_message(chats[2], f"申請マイページのIDがわからない {i}") for i in range(6)]
            list(pool.map(lambda pair: workers[pair[0] % 2].post(pair[1]), enumerate(burst)))
            sent = {chat: future.result() for chat, future in zip(chats, dialogs, strict=False)}
        for chat in chats[:2]:
            messages = fake.chat_messages(chat)
            summary = [m for m in messages if "伸び率は年率" in m.text]  # the result's headline
            assert len(summary) == 1 and "3,055.56" in summary[0].text, [m.text[:40] for m in messages]
            for prompt in (
                "人件費（円）を入力",
                "減価償却費（円）を入力",
                "従業員数（人）を入力",
                "何年度目",
            ):
                assert sum(prompt in m.text for m in messages) == 1, prompt
        burst_answers = fake.chat_messages(chats[2])
        assert len(burst_answers) == 6 and all(GBIZ_PHONE in m.text for m in burst_answers)
        for message in fake.messages:
            assert message.text not in (CONFLICT, ERROR_TEXT)
        with Store.open(pg_url) as store:
            for chat in chats[:2]:
                logged = [
                    q
                    for q in store.recent_queries(limit=500, channel="telegram")
                    if q.user_hash == store.user_hash("telegram", str(chat))
                ]
                assert len(logged) == len(sent[chat])  # every update once: none lost, none doubled
            with store.engine.connect() as connection:
                claimed = connection.execute(select(func.count()).select_from(ProcessedUpdate)).scalar_one()
            assert claimed == sum(len(ids) for ids in sent.values()) + len(burst)
    finally:
        for worker in workers:
            worker.stop()


# -- start-up errors: one line, exit 2, no traceback ---------------------------------------------


def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str, **env: str) -> Result:
    for name in list(os.environ):
        if name.startswith("KOUNEN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(cli_app, list(args))


def assert_one_line(result: Result, *needles: str, absent: tuple[str, ...] = ()) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    for secret in absent:
        assert secret not in result.output
    return lines[0]


@pytest.mark.parametrize("command", ["bot", "serve"])
def test_a_missing_token_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str) -> None:
    result = run_cli(monkeypatch, tmp_path, command, KOUNEN_WEBHOOK_SECRET=SECRET)
    assert_one_line(result, "KOUNEN_TELEGRAM_TOKEN", "@BotFather")


@pytest.mark.parametrize("command", ["bot", "serve"])
def test_a_malformed_token_is_one_line_without_the_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str
) -> None:
    token = "12345:short-Secretish"
    result = run_cli(monkeypatch, tmp_path, command, KOUNEN_TELEGRAM_TOKEN=token)
    assert_one_line(result, "KOUNEN_TELEGRAM_TOKEN", "malformed", absent=(token, "Secretish"))


def test_a_token_the_api_rejects_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: FakeTelegram
) -> None:
    other = "987654321:ANOTHER-token-abcdefghijklmnopqrstuv"
    result = run_cli(
        monkeypatch, tmp_path, "bot", KOUNEN_TELEGRAM_TOKEN=other, KOUNEN_TELEGRAM_API_BASE_URL=fake.base_url
    )
    assert_one_line(result, "rejected", "@BotFather", absent=(other,))


@pytest.mark.parametrize("command", ["bot", "serve"])
def test_a_bad_database_url_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str
) -> None:
    result = run_cli(
        monkeypatch,
        tmp_path,
        command,
        KOUNEN_TELEGRAM_TOKEN="123456789:TEST-fake-token-abcdefghijklmnopqrstuv",
        KOUNEN_WEBHOOK_SECRET=SECRET,
        KOUNEN_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none",
    )
    assert_one_line(result, "database", "127.0.0.1:1")
    result = run_cli(monkeypatch, tmp_path, command, KOUNEN_DATABASE_URL="no database here")
    assert_one_line(result, "KOUNEN_DATABASE_URL")


def test_serve_needs_the_webhook_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = run_cli(
        monkeypatch,
        tmp_path,
        "serve",
        KOUNEN_TELEGRAM_TOKEN="123456789:TEST-fake-token-abcdefghijklmnopqrstuv",
    )
    assert_one_line(result, "KOUNEN_WEBHOOK_SECRET")


def test_an_unreachable_api_is_one_line_from_the_real_command(tmp_path: Path) -> None:
    token = "123456789:TEST-fake-token-abcdefghijklmnopqrstuv"
    base = f"http://127.0.0.1:{_free_port()}/bot"  # nothing listens there
    env = _clean_env(
        tmp_path,
        KOUNEN_TELEGRAM_TOKEN=token,
        KOUNEN_TELEGRAM_API_BASE_URL=base,
        KOUNEN_DATABASE_URL=f"sqlite:///{tmp_path / 'k.db'}",
    )
    proc = subprocess.run(
        [str(KOUNEN), "bot"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "cannot reach the Telegram Bot API" in lines[0] and base in lines[0]
    assert token not in proc.stderr and "Traceback" not in proc.stderr


# -- the real console mounted beside the webhook ---------------------------------------------


def test_the_console_is_mounted_behind_its_own_login_and_the_webhook_secret_does_not_open_it(
    fake: FakeTelegram, db_url: str, service: ConversationService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.web import served_routes

    for name in list(os.environ):
        if name.startswith("KOUNEN_CONSOLE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KOUNEN_CONSOLE_TOKENS", '{"kiosk": "kiosk-token-0123456789abcdef0123456789"}')
    settings = web_settings(fake, db_url)
    server = AppServer(create_app(settings, service=service, extra_routes=served_routes(settings, service)))
    try:
        page = server.http.get("/console/", follow_redirects=False)
        assert page.status_code in (302, 303, 307) and "/console/login" in page.headers["location"]
        with_secret = server.http.get(
            "/console/", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}, follow_redirects=False
        )
        assert with_secret.status_code in (302, 303, 307)
        assert server.http.get("/console/login").status_code == 200
        # The webhook is not behind the console login: the secret alone lets an update in.
        assert (
            post(
                server.http,
                {
                    "update_id": 990001,
                    "message": {
                        "message_id": 1,
                        "date": 0,
                        "chat": {"id": 4242, "type": "private"},
                        "from": {"id": 4242, "is_bot": False, "first_name": "A"},
                        "text": "こんにちは",
                    },
                },
            )
            == 200
        )
    finally:
        server.stop()


def test_serve_refuses_a_webhook_secret_that_is_also_a_console_credential(
    fake: FakeTelegram, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.settings import SettingsError
    from bot.web import console_settings

    for name in list(os.environ):
        if name.startswith("KOUNEN_CONSOLE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KOUNEN_CONSOLE_TOKENS", '{"kiosk": "' + SECRET + '0123456789"}')
    settings = web_settings(fake, db_url).model_copy(
        update={"webhook_secret": SecretStr(SECRET + "0123456789")}
    )
    with pytest.raises(SettingsError, match="KOUNEN_WEBHOOK_SECRET"):
        console_settings(settings)
