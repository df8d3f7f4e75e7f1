"""The call-center console over plain HTTP (Starlette's TestClient): access, CSRF, pages, CSV.

The console is mounted under /console the way `kounen serve` mounts it, over a temporary
SQLite store seeded with query-log and feedback rows at known times, with the clock
fixed on a Monday morning (the contact lines are open) unless a test says otherwise.
The browser half is tests/test_console_browser.py.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from argon2 import PasswordHasher
from httpx import Response
from sqlalchemy import update
from sqlalchemy.orm import Session as DbSession
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from typer.testing import CliRunner

from bot.cli_rules import calc_app, check_app
from bot.console import ConsoleSettings, ConsoleSettingsError, create_console_app, load_console_settings
from bot.console.auth import COOKIE_NAME, Session, SessionCodec
from bot.console.hash_password import main as hash_password_main
from bot.console.highlight import highlight
from bot.store import Feedback, QueryLog, Store
from faq import KnowledgeBase, Policy, answer_text
from rules import TOKYO

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery staple"
TOKEN = "tok-" + "k" * 40
SECRET_KEY = "s" * 48
# Cheap parameters: the hashes are verified many times in these tests.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
USER_HASH = FAST.hash(PASSWORD)
MONDAY_10 = datetime(2024, 6, 3, 10, 0, tzinfo=TOKYO)  # lines open 9:30-17:30
SATURDAY_10 = datetime(2024, 6, 8, 10, 0, tzinfo=TOKYO)


# ---------------------------------------------------------------- fixtures


def _at(store: Store, model: type[QueryLog] | type[Feedback], row_id: int, when: datetime) -> None:
    with DbSession(store.engine) as session, session.begin():
        session.execute(update(model).where(model.id == row_id).values(time=when.astimezone(UTC)))


def seed(store: Store, now: datetime) -> None:
    """Log rows of the last days, and one from three weeks ago (outside the default week)."""

    def query(
        text: str, status: str, entry: str | None = None, score: float | None = None, hours: float = 1
    ) -> int:
        qid = store.log_query("telegram", f"user-{hours}", text, status, entry, score)
        _at(store, QueryLog, qid, now - timedelta(hours=hours))
        return qid

    query("ゲームのログインボーナスは？", "no_match", hours=2)
    query("ゲームのログインボーナスは？", "no_match", hours=30)
    query("090-1234-5678 に折り返してほしい", "no_match", hours=3)
    query('=HYPERLINK("http://example.invalid","x")', "no_match", hours=4)
    query("ログイン", "clarify", "it2020-login-failed", 0.94, hours=5)  # close entries, all above the bar
    query("ツールの手続き", "clarify", None, 0.38, hours=5)  # nothing reached the answering bar
    query("IDがわからない", "answered", "it2020-portal-id-forgotten", 0.5, hours=6)
    asked = query("申請マイページのIDがわからない", "answered", "it2020-mypage-id-forgotten", 0.83, hours=7)
    query("申請マイページのIDがわからない", "answered", "it2020-mypage-id-forgotten", 0.83, hours=8)
    query("[choice] 1", "clarify", hours=9)
    query("労働生産性を計算したい", "dialog", None, 0.71, hours=10)  # a request: a question
    query("3000万", "dialog", hours=10)  # figures typed in the calculation: not questions
    query("10人", "dialog", hours=10)
    query("/program it2020", "command", hours=10)
    query("三週間前の質問", "no_match", hours=21 * 24)
    bad = store.add_feedback(
        "telegram", "u9", "it2020-mypage-id-forgotten", False, "電話番号が載っていない", asked
    )
    _at(store, Feedback, bad, now - timedelta(hours=6))
    good = store.add_feedback("telegram", "u8", "it2020-mypage-id-forgotten", True)
    _at(store, Feedback, good, now - timedelta(hours=6))


@pytest.fixture(autouse=True)
def _no_console_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come from each test only: no KOUNEN_CONSOLE_* variable, no .env file."""
    for name in list(os.environ):
        if name.startswith("KOUNEN_CONSOLE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'console.db'}") as opened:
        seed(opened, MONDAY_10)
        yield opened


def settings(**overrides: object) -> ConsoleSettings:
    values: dict[str, object] = {
        "users": {"yamada": USER_HASH},
        "tokens": {"kiosk": TOKEN},
        "secret_key": SECRET_KEY,
    }
    values.update(overrides)
    return ConsoleSettings.model_validate(values)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def mounted(console: Starlette) -> Starlette:
    """The console where `kounen serve` puts it, next to a stand-in for the webhook."""

    async def webhook(_request: object) -> object:
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("webhook")

    return Starlette(
        routes=[Route("/telegram/webhook", webhook, methods=["POST"]), Mount("/console", console)]
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(kb: KnowledgeBase, policy: Policy, store: Store, clock: FakeClock) -> Starlette:
    console = create_console_app(
        kb=kb, policy=policy, store=store, settings=settings(), now=lambda: MONDAY_10, clock=clock
    )
    return mounted(console)


@pytest.fixture
def client(app: Starlette) -> TestClient:
    return TestClient(app, follow_redirects=False)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF field in the page"
    return found.group(1)


def login(client: TestClient, user: str = "yamada", password: str = PASSWORD, next_url: str = "") -> Response:
    token = csrf_of(client.get("/console/login").text)
    response: Response = client.post(
        "/console/login",
        data={
            "csrf_token": token,
            "mode": "password",
            "username": user,
            "password": password,
            "next": next_url,
        },
    )
    return response


@pytest.fixture
def staff(client: TestClient) -> TestClient:
    response = login(client)
    assert response.status_code == 303
    return client


def text_of(page: str) -> str:
    """Visible text, roughly: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


# ---------------------------------------------------------------- access


PAGES = [
    "/console/",
    "/console/?q=ログイン",
    "/console/entries",
    "/console/entries/it2020-login-failed",
    "/console/calc/productivity",
    "/console/calc/withdrawal",
    "/console/insights",
    "/console/insights.csv?kind=unanswered",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_login(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")


def test_static_files_and_login_page_are_public(client: TestClient) -> None:
    page = client.get("/console/login")
    assert page.status_code == 200
    css = re.search(r'href="(/console/static/console\.css\?v=\w+)"', page.text)
    assert css, page.text
    assert client.get(css.group(1)).status_code == 200
    assert client.get("/console/static/console.js").status_code == 200


def test_login_sets_a_signed_session_cookie_scoped_to_the_console(client: TestClient) -> None:
    response = login(client, next_url="/console/entries")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/entries"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    for attribute in ("HttpOnly", "Path=/console", "SameSite=lax", "Max-Age=36000"):
        assert attribute in cookie
    assert "Secure" not in cookie  # served on http://127.0.0.1 by default
    assert client.get("/console/entries").status_code == 200


def test_secure_cookie_on_request(kb: KnowledgeBase, policy: Policy, store: Store) -> None:
    console = create_console_app(kb=kb, policy=policy, store=store, settings=settings(cookie_secure=True))
    client = TestClient(mounted(console), follow_redirects=False)
    assert "Secure" in client.get("/console/login").headers["set-cookie"]


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/console/", "/elsewhere", "/console\\@evil", "javascript:x"],
)
def test_login_never_redirects_outside_the_console(client: TestClient, target: str) -> None:
    response = login(client, next_url=target)
    assert response.headers["location"] == "/console/"


@pytest.mark.parametrize(
    ("user", "password"), [("yamada", "wrong password"), ("nobody", PASSWORD), ("yamada", ""), ("", "")]
)
def test_wrong_password_is_refused_with_one_message(client: TestClient, user: str, password: str) -> None:
    response = login(client, user=user, password=password)
    assert response.status_code == 401
    assert "ユーザー名またはパスワードが正しくありません" in response.text
    assert client.get("/console/").status_code == 303


def test_token_login(client: TestClient) -> None:
    token = csrf_of(client.get("/console/login").text)
    wrong = client.post("/console/login", data={"csrf_token": token, "mode": "token", "token": TOKEN + "x"})
    assert wrong.status_code == 401
    assert "トークンが正しくありません" in wrong.text
    right = client.post("/console/login", data={"csrf_token": token, "mode": "token", "token": TOKEN})
    assert right.status_code == 303
    page = client.get("/console/")
    assert page.status_code == 200
    assert "kiosk" in page.text


def test_login_is_rate_limited_per_client(app: Starlette, clock: FakeClock) -> None:
    attacker = TestClient(app, follow_redirects=False, client=("203.0.113.7", 5000))
    for _ in range(5):
        assert login(attacker, password="guess").status_code == 401
    blocked = login(attacker)  # even the right password is not checked now
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "しばらく受け付けません" in blocked.text
    other = TestClient(app, follow_redirects=False, client=("198.51.100.2", 5000))
    assert login(other).status_code == 303
    clock.now += 301  # the window (300 s) has passed
    assert login(attacker).status_code == 303


def test_logout_ends_the_session(staff: TestClient) -> None:
    page = staff.get("/console/")
    response = staff.post("/console/logout", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?bye=1"
    assert staff.get("/console/").status_code == 303
    assert "ログアウトしました" in staff.get("/console/login?bye=1").text


def test_a_tampered_or_foreign_cookie_opens_nothing(staff: TestClient) -> None:
    cookie = staff.cookies.get(COOKIE_NAME)
    assert cookie
    staff.cookies.set(
        COOKIE_NAME, cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"), path="/console"
    )
    assert staff.get("/console/").status_code == 303
    forged = SessionCodec("another key " * 4, 3600).dumps(Session("c", "yamada", "password", "0" * 20))
    staff.cookies.clear()
    staff.cookies.set(COOKIE_NAME, forged, path="/console")
    assert staff.get("/console/").status_code == 303


def test_changing_a_password_in_the_settings_ends_its_sessions(
    kb: KnowledgeBase, policy: Policy, store: Store, staff: TestClient
) -> None:
    cookie = staff.cookies.get(COOKIE_NAME)
    same = create_console_app(kb=kb, policy=policy, store=store, settings=settings())
    changed = create_console_app(
        kb=kb, policy=policy, store=store, settings=settings(users={"yamada": FAST.hash("a new password!")})
    )
    for console, expected in ((same, 200), (changed, 303)):
        other = TestClient(mounted(console), follow_redirects=False)
        other.cookies.set(COOKIE_NAME, cookie or "", path="/console")
        assert other.get("/console/").status_code == expected


def test_sessions_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = SessionCodec(SECRET_KEY, max_age=60)
    cookie = codec.dumps(Session("csrf", "yamada", "password", "f" * 20))
    assert codec.loads(cookie) == Session("csrf", "yamada", "password", "f" * 20)
    later = time.time() + 120  # itsdangerous reads time.time()
    monkeypatch.setattr(time, "time", lambda: later)
    assert codec.loads(cookie) is None


def test_the_webhook_secret_does_not_open_the_console(client: TestClient) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": TOKEN, "Authorization": f"Bearer {TOKEN}"}
    assert client.get("/console/", headers=headers).status_code == 303
    assert client.post("/telegram/webhook").text == "webhook"  # the webhook is not behind the login
    assert settings().reuses_secret(TOKEN)
    assert settings().reuses_secret(PASSWORD)
    assert settings().reuses_secret(SECRET_KEY)
    assert not settings().reuses_secret("the-telegram-webhook-secret-0123456789")


def test_the_console_does_not_import_the_webhook() -> None:
    code = (
        "import sys, bot.console, bot.console.app;"
        "bad = sorted(m for m in sys.modules if m.startswith(('telegram', 'bot.web', 'bot.telegram', 'bot.cli')));"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_credentials_configured_says_so(kb: KnowledgeBase, policy: Policy, store: Store) -> None:
    console = create_console_app(
        kb=kb, policy=policy, store=store, settings=ConsoleSettings.model_validate({})
    )
    page = TestClient(mounted(console)).get("/console/login")
    assert "ログイン情報が設定されていません" in page.text


# ---------------------------------------------------------------- CSRF


def test_post_without_or_with_a_bad_csrf_token_is_rejected(staff: TestClient) -> None:
    form = {
        "operating_profit": "3000万",
        "labor_cost": "2000万",
        "depreciation": "500万",
        "employees": "10",
        "annual_hours": "1800",
    }
    missing = staff.post("/console/calc/productivity", data=form)
    assert missing.status_code == 403
    assert "確認用トークンが一致しません" in missing.text
    bad = staff.post("/console/calc/productivity", data={**form, "csrf_token": "not-the-token"})
    assert bad.status_code == 403
    good_token = csrf_of(staff.get("/console/calc/productivity").text)
    assert (
        staff.post("/console/calc/productivity", data={**form, "csrf_token": good_token}).status_code == 200
    )
    cross = staff.post(
        "/console/calc/productivity",
        data={**form, "csrf_token": good_token},
        headers={"origin": "http://evil.example"},
    )
    assert cross.status_code == 403
    cross_site = staff.post(
        "/console/calc/productivity",
        data={**form, "csrf_token": good_token},
        headers={"sec-fetch-site": "cross-site"},
    )
    assert cross_site.status_code == 403


def test_a_token_of_another_session_is_rejected(app: Starlette, staff: TestClient) -> None:
    other = TestClient(app, follow_redirects=False)
    login(other)
    foreign = csrf_of(other.get("/console/").text)
    assert staff.post("/console/calc/withdrawal", data={"csrf_token": foreign}).status_code == 403


def test_every_post_route_checks_the_csrf_token(app: Starlette, staff: TestClient) -> None:
    console = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/console")
    posts = [r.path for r in console.routes if isinstance(r, Route) and r.methods and "POST" in r.methods]
    assert sorted(posts) == [
        "/calc/productivity",
        "/calc/withdrawal",
        "/cases/{number}/close",
        "/cases/{number}/reply",
        "/cases/{number}/take",
        "/login",
        "/logout",
    ]
    for path in posts:
        assert staff.post("/console" + path, data={"csrf_token": "x"}).status_code == 403, path
    assert staff.get("/console/").status_code == 200  # still logged in: logout was refused


def test_login_form_needs_its_csrf_token(client: TestClient) -> None:
    client.get("/console/login")
    response = client.post(
        "/console/login", data={"mode": "password", "username": "yamada", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert client.get("/console/").status_code == 303


def test_post_when_logged_out_is_forbidden(client: TestClient) -> None:
    assert client.post("/console/calc/productivity", data={"csrf_token": "x"}).status_code == 403


def test_oversized_and_non_form_bodies(staff: TestClient) -> None:
    token = csrf_of(staff.get("/console/").text)
    big = staff.post(
        "/console/calc/productivity", data={"csrf_token": token, "operating_profit": "1" * 70_000}
    )
    assert big.status_code == 413
    as_json = staff.post("/console/calc/productivity", json={"csrf_token": token})
    assert as_json.status_code == 415


def test_security_headers(staff: TestClient) -> None:
    response = staff.get("/console/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "style=" not in response.text and "<script>" not in response.text  # nothing inline


# ---------------------------------------------------------------- search and browse


def test_search_shows_scored_highlighted_results_with_contacts(staff: TestClient, kb: KnowledgeBase) -> None:
    page = staff.get("/console/", params={"q": "申請マイページのIDがわからない"})
    assert page.status_code == 200
    body = page.text
    assert "ボットはこの回答を返します" in body
    assert re.search(r"一致度 0\.\d\d", body)
    assert 'class="badge program-it2020"' in body and "IT導入補助金2020" in body
    assert "ログイン・ID" in body  # the category
    assert "<mark>マイページ</mark>" in body or "<mark>申請マイページ</mark>" in body
    entry = kb.by_id["it2020-mypage-id-forgotten"]
    assert html.escape(answer_text(kb, entry).splitlines()[0]) in body
    assert 'data-copy-target="r1-answer"' in body
    assert "出典：" in body
    assert "受付中（17:30まで）" in body  # Monday 10:00
    assert '/console/entries/it2020-portal-id-forgotten"' in body  # a related entry


def test_closed_lines_say_when_they_open(kb: KnowledgeBase, policy: Policy, store: Store) -> None:
    console = create_console_app(
        kb=kb, policy=policy, store=store, settings=settings(), now=lambda: SATURDAY_10
    )
    client = TestClient(mounted(console), follow_redirects=False)
    login(client)
    page = text_of(client.get("/console/entries/it2020-mypage-id-forgotten").text)
    assert "受付時間外（次は月曜 9:00）" in page  # gBizID, named in the answer
    assert "受付時間外（次は月曜 9:30）" in page  # the program's own line
    assert page.index("gBizID 窓口") < page.index("後年窓口")


def test_search_output_is_escaped(staff: TestClient) -> None:
    page = staff.get("/console/", params={"q": '<script>alert("x")</script> ログイン'})
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;" in page.text


def test_highlight_escapes_text_and_terms() -> None:
    marked = highlight("<b>ＩＤ</b> と ID", ["id", "<b>"])
    assert str(marked) == "<mark>&lt;b&gt;</mark><mark>ＩＤ</mark>&lt;/b&gt; と <mark>ID</mark>"
    assert str(highlight("性能", ["性", "~セイ"])) == "性能"  # single characters and readings are not marked


def test_search_fragment_for_results_as_you_type(staff: TestClient) -> None:
    fragment = staff.get("/console/", params={"q": "ログイン"}, headers={"X-Kounen-Fragment": "1"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'class="result' in fragment.text


@pytest.mark.parametrize(
    ("query", "expected", "line"),
    [
        ("GビズID", "it2020-mypage-id-forgotten", "06-6225-7877"),
        ("ジービズ", "it2020-mypage-id-forgotten", "06-6225-7877"),
        ("gbiz", "it2020-mypage-id-forgotten", "06-6225-7877"),
        ("かいやく", "it2020-cancel-within-year", "0570-002-551"),
        ("住所変更", "it2020-vendor-info-change", "0570-002-551"),
        ("口座 変更", "it2020-vendor-info-change", "0570-002-551"),
    ],
)
def test_staff_spellings_are_found(staff: TestClient, query: str, expected: str, line: str) -> None:
    page = staff.get("/console/", params={"q": query}).text
    results = page.split('class="result-list"', 1)[1]
    first = re.search(r'href="/console/entries/([a-z0-9-]+)"', results)
    assert first and first.group(1) == expected, query
    header = results.split('class="result-line"', 1)[1].split("</p>", 1)[0]
    assert f'href="tel:{line}"' in header  # the line that applies, in the result's header
    assert "該当なしのときの案内先" not in page  # no "not found" box over the right answer


def test_only_plausible_results_by_the_policys_bars(staff: TestClient, policy: Policy) -> None:
    for query in ("申請マイページのIDがわからない", "ログイン", "解約したい", "効果報告の期限"):
        page = staff.get("/console/", params={"q": query}).text
        scores = [float(s) for s in re.findall(r"一致度 (\d\.\d\d)</span>", page)]
        assert 1 <= len(scores) <= 5, (query, scores)
        assert min(scores) >= policy.config.coverage_min - 0.005, (query, scores)  # shown rounded
    refused = staff.get("/console/", params={"q": "ものづくり補助金の返還について"}).text
    assert 'class="result-list"' not in refused and "対象外" in refused
    assert "該当する回答はありません" in refused


def test_ask_back_says_why(staff: TestClient) -> None:
    by_program = text_of(staff.get("/console/", params={"q": "ツールを半年で解約したらどうなる？"}).text)
    assert "制度によって回答が異なります" in by_program
    assert "IT導入補助金2020 の場合" in by_program and "IT導入補助金2023 複数社連携 の場合" in by_program
    close = text_of(staff.get("/console/", params={"q": "解約したい"}).text)
    assert "近い候補が複数あり" in close


def test_every_staff_page_shows_both_lines(staff: TestClient) -> None:
    for path in ("/console/", "/console/entries", "/console/calc/withdrawal", "/console/insights"):
        panel = staff.get(path).text.split('class="lines"', 1)[1].split("</aside>", 1)[0]
        assert 'href="tel:0570-002-551"' in panel and 'href="tel:0570-666-376"' in panel, path
        assert text_of(panel).count("受付中（17:30まで）") == 2  # Monday 10:00


def test_search_not_found_gives_the_general_contacts(staff: TestClient) -> None:
    page = staff.get("/console/", params={"q": "ふるさと納税の返礼品", "program": "it2023-multi"})
    assert "見つかりません" in page.text
    assert "サービス等生産性向上IT導入支援事業コールセンター" in page.text


def test_a_calculation_request_links_to_the_calculator(staff: TestClient) -> None:
    page = staff.get("/console/", params={"q": "労働生産性を計算したい"})
    assert 'href="/console/calc/productivity"' in page.text


def test_browse_lists_every_entry_with_a_permalink(staff: TestClient, kb: KnowledgeBase) -> None:
    page = staff.get("/console/entries").text
    links = set(re.findall(r'href="/console/entries/([a-z0-9-]+)"', page))
    assert links == {e.id for e in kb.entries}
    for program in {e.program for e in kb.entries}:
        assert f'id="p-{program}"' in page and kb.programs[program].name in page
    for entry in kb.entries:
        permalink = staff.get(f"/console/entries/{entry.id}")
        assert permalink.status_code == 200, entry.id
        assert html.escape(entry.question) in permalink.text
    assert staff.get("/console/entries/no-such-entry").status_code == 404
    assert staff.get("/console/no-such-page").status_code == 404


# ---------------------------------------------------------------- calculators


def _cli(*args: str) -> dict[str, Any]:
    cli = typer.Typer()
    cli.add_typer(calc_app, name="calc")
    cli.add_typer(check_app, name="check")
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def post_form(client: TestClient, path: str, form: dict[str, str]) -> Response:
    token = csrf_of(client.get(path).text)
    response: Response = client.post(path, data={**form, "csrf_token": token})
    return response


PRODUCTIVITY = {
    "operating_profit": "3000万",
    "labor_cost": "2,000万円",
    "depreciation": "500万",
    "employees": "10人",
    "annual_hours": "1,800時間",
    "baseline": "2,800",
    "year": "1",
}


def test_productivity_matches_the_command_line(staff: TestClient) -> None:
    response = post_form(staff, "/console/calc/productivity", PRODUCTIVITY)
    assert response.status_code == 200
    page = text_of(response.text)
    cli = _cli(
        *("calc", "productivity", "--operating-profit", "3000万", "--labor-cost", "2,000万円"),
        *("--depreciation", "500万", "--employees", "10人", "--hours", "1,800時間"),
        *("--baseline", "2,800", "--year", "1", "--json"),
    )
    for line in cli["explanation"]:
        assert line in page
    assert "3,055.56円/時間" in page
    assert "基準（5%）に達しています" in page


def test_a_calculation_names_each_source_document_once(staff: TestClient, kb: KnowledgeBase) -> None:
    for path, form in (
        ("/console/calc/productivity", PRODUCTIVITY),
        ("/console/calc/withdrawal", WITHDRAWAL),
    ):
        body = post_form(staff, path, form).text
        found = re.search(r'<ul class="sources">(.*?)</ul>', body, re.S)
        assert found, path
        items = re.findall(r"<li>(.*?)</li>", found.group(1), re.S)
        assert items, path
        for doc in kb.documents.values():
            assert sum(html.unescape(i).count(doc.title) for i in items) <= 1, (path, doc.title)


def test_the_calculators_read_back_what_was_typed_in_the_bots_money_format(staff: TestClient) -> None:
    def read_back(body: str) -> dict[str, str]:
        found = re.search(r'<dl class="figures inputs"[^>]*>(.*?)</dl>', body, re.S)
        assert found, body[:200]
        return dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", found.group(1)))

    form = {**PRODUCTIVITY, "operating_profit": "-5000000", "labor_cost": "２０００万"}
    shown = read_back(post_form(staff, "/console/calc/productivity", form).text)
    assert shown["営業利益"] == "▲500万円" and shown["人件費"] == "2,000万円"  # as the bot reads back
    assert (shown["従業員数"], shown["年間平均労働時間"], shown["報告年度"]) == (
        "10人",
        "1,800時間",
        "1年度目",
    )
    shown = read_back(post_form(staff, "/console/calc/withdrawal", WITHDRAWAL).text)
    assert shown["納品日"] == "2021年4月1日、2021年6月1日" and shown["解約日"] == "2021年12月1日"


def test_productivity_errors_sit_next_to_their_fields(staff: TestClient) -> None:
    form = {**PRODUCTIVITY, "employees": "たくさん", "annual_hours": "", "baseline": "2,800", "year": ""}
    response = post_form(staff, "/console/calc/productivity", form)
    assert response.status_code == 422
    body = response.text
    for field in ("employees", "annual_hours", "year"):
        error = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', body)
        assert error, field
        assert re.search(
            rf'id="{field}"[^>]*aria-describedby="[^"]*{field}-error"[^>]*aria-invalid="true"', body
        )
    assert 'value="たくさん"' in body  # what was typed stays in the field
    assert "operating_profit-error" not in body


def test_productivity_rule_errors_go_to_their_field(staff: TestClient) -> None:
    response = post_form(staff, "/console/calc/productivity", {**PRODUCTIVITY, "employees": "0"})
    body = response.text
    error = re.search(r'id="employees-error">(.*?)</p>', body)
    assert error and "0人" in error.group(1)


WITHDRAWAL = {
    "program": "it2020",
    "event": "cancel-part",
    "delivered": "2021/4/1\n令和3年6月1日",
    "cancelled": "2021/12/1",
    "completed": "2021/9/30",
}


def test_withdrawal_matches_the_command_line(staff: TestClient) -> None:
    response = post_form(staff, "/console/calc/withdrawal", WITHDRAWAL)
    assert response.status_code == 200
    page = text_of(response.text)
    cli = _cli(
        *("check", "withdrawal", "--program", "it2020", "--event", "cancel-part"),
        *("--delivered", "2021/4/1", "--delivered", "令和3年6月1日"),
        *("--cancelled", "2021/12/1", "--completed", "2021/9/30", "--json"),
    )
    assert str(cli["summary"]) in page
    for line in cli["explanation"]:
        assert line in page
    assert "受付中（17:30まで）" in page
    assert "0570-002-551" in page


def test_withdrawal_errors_sit_next_to_their_fields(staff: TestClient) -> None:
    response = post_form(
        staff,
        "/console/calc/withdrawal",
        {**WITHDRAWAL, "program": "", "delivered": "2021/4/1\n2021/2/30", "completed": "いつか"},
    )
    assert response.status_code == 422
    body = response.text
    assert 'id="program-error"' in body
    delivered = re.search(r'id="delivered-error">(.*?)</p>', body)
    assert delivered and "2件目" in delivered.group(1)
    assert 'id="completed-error"' in body
    rule = post_form(staff, "/console/calc/withdrawal", {**WITHDRAWAL, "cancelled": "2021/3/1"})
    error = re.search(r'id="cancelled-error">(.*?)</p>', rule.text)
    assert error and "納品日" in error.group(1)


# ---------------------------------------------------------------- insights and CSV


def test_insights_of_the_default_week(staff: TestClient) -> None:
    page = staff.get("/console/insights").text
    assert 'value="2024-05-28"' in page and 'value="2024-06-03"' in page
    unanswered = page.split('id="unanswered-title"')[1].split('id="picked-title"')[0]
    assert "ゲームのログインボーナスは？" in unanswered
    assert re.search(r'data-label="件数">2<', unanswered)  # the same question twice, one row
    assert "[電話番号] に折り返してほしい" in unanswered and "090-1234" not in page  # masked when logged
    assert "三週間前の質問" not in page
    low = page.split('id="low-title"')[1].split('id="entries-title"')[0]
    assert "ツールの手続き" in low
    assert "ログイン" not in low  # asked back between entries that all cleared the bar
    assert "IDがわからない" not in low  # answered: the policy's bar was met
    assert "[choice]" not in page
    assert "この期間にはありません" in page.split('id="picked-title"')[1].split('id="low-title"')[0]
    entries = page.split('id="entries-title"')[1].split('id="feedback-title"')[0]
    assert "/console/entries/it2020-mypage-id-forgotten" in entries
    feedback = page.split('id="feedback-title"')[1]
    assert "電話番号が載っていない" in feedback and "申請マイページのIDがわからない" in feedback
    assert 'data-copy-text="ゲームのログインボーナスは？"' in page


def test_insights_count_questions_not_figures_typed_in_a_flow(staff: TestClient) -> None:
    totals = text_of(staff.get("/console/insights").text.split('aria-label="件数"')[1].split("</section>")[0])
    # 4 not found, 2 asked back, 3 answered, 1 calculation request; not the 2 figures, the
    # command or the choice.
    assert re.search(r"質問\s*10\b", totals), totals
    assert re.search(r"計算の依頼\s*1\b", totals)
    assert "（4 件）は数えていません" in totals


def test_insights_count_the_questions_of_a_real_conversation(
    kb: KnowledgeBase, policy: Policy, tmp_path: Path
) -> None:
    """Through the conversation service: a calculation's figures are logged, but are not questions."""
    from bot.console.insights import Insights, Period
    from bot.service import ConversationService
    from dialogs.types import UserInput

    with Store.open(f"sqlite:///{tmp_path / 'real.db'}") as store:
        service = ConversationService(kb, policy, store)
        for text in ("申請マイページのIDがわからない", "労働生産性を計算したい", "3000万", "2000万", "500万"):
            service.handle("cli", "u1", UserInput(text=text))
        now = datetime.now(UTC)
        totals = Insights(store, policy.config.coverage_min).totals(
            Period(now - timedelta(hours=1), now + timedelta(hours=1))
        )
    assert totals.total == 2, totals
    assert totals.by_status == {"answered": 1, "dialog": 1}
    assert totals.other_turns == 3


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_insights_list_the_entries_picked_after_a_not_found(
    kb: KnowledgeBase, policy: Policy, tmp_path: Path, request: pytest.FixtureRequest, database: str
) -> None:
    """A not-found, then a pick from its offer: the question is a wording the KB lacks for that entry.
    A pick after an answer, or by another user, is not one.  Read with a window over each
    conversation, on both databases the store supports."""
    from bot.console.insights import Insights, Period
    from bot.service import ConversationService
    from dialogs.types import UserInput

    chatty = "効果報告の入力途中で保存できる？一回で全部入力しきれない"
    assert [s.entry_id for s in policy.decide(chatty).suggestions][:1] == ["it2023-report-temporary-save"]
    url = f"sqlite:///{tmp_path / 'picks.db'}" if database == "sqlite" else request.getfixturevalue("pg_url")
    with Store.open(url) as store:
        service = ConversationService(kb, policy, store)
        service.handle("cli", "u1", UserInput(text=chatty))
        service.handle("cli", "u2", UserInput(text="申請マイページのIDがわからない"))  # between, another user
        service.handle("cli", "u1", UserInput(choice="faq:it2023-report-temporary-save"))
        service.handle(
            "cli", "u2", UserInput(choice="faq:it2020-login-failed")
        )  # after an answer: not counted
        service.handle("cli", "u3", UserInput(text=chatty))
        service.handle("cli", "u3", UserInput(choice="faq:it2023-report-temporary-save"))
        now = datetime.now(UTC)
        rows = Insights(store, policy.config.coverage_min).picked_after_not_found(
            Period(now - timedelta(hours=1), now + timedelta(hours=1))
        )
    assert [(r.text, r.entry_id, r.count) for r in rows] == [(chatty, "it2023-report-temporary-save", 2)]


def test_insights_period_and_its_errors(staff: TestClient) -> None:
    longer = staff.get("/console/insights", params={"from": "2024-05-01", "to": "2024-06-03"}).text
    assert "三週間前の質問" in longer
    wrong = staff.get("/console/insights", params={"from": "いつか", "to": "2024-06-03"})
    assert wrong.status_code == 200
    assert 'id="from-error"' in wrong.text


def test_csv_export(staff: TestClient) -> None:
    response = staff.get("/console/insights.csv", params={"kind": "unanswered"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="kounen-unanswered-2024-05-28_2024-06-03.csv"' in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows[0] == ["質問", "件数", "最終日時", "最高スコア", "状態"]
    by_text = {row[0]: row for row in rows[1:]}
    assert by_text["ゲームのログインボーナスは？"][1] == "2"
    assert by_text["ゲームのログインボーナスは？"][2] == "2024-06-03 08:00"  # Tokyo time
    assert '\'=HYPERLINK("http://example.invalid","x")' in by_text  # no formula in a spreadsheet
    feedback = list(
        csv.reader(io.StringIO(staff.get("/console/insights.csv?kind=feedback").text.lstrip("\ufeff")))
    )
    assert feedback[1][1:4] == [
        "it2020-mypage-id-forgotten",
        "申請マイページのIDがわからない",
        "電話番号が載っていない",
    ]
    entries = list(
        csv.reader(io.StringIO(staff.get("/console/insights.csv?kind=entries").text.lstrip("\ufeff")))
    )
    assert entries[1][0] == "it2020-mypage-id-forgotten" and entries[1][2:] == ["2", "1", "1"]
    low = staff.get("/console/insights.csv?kind=low").text
    assert "ツールの手続き" in low and "ログイン" not in low
    assert staff.get("/console/insights.csv?kind=everything").status_code == 400


# ---------------------------------------------------------------- settings and the hash helper


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = FAST.hash(PASSWORD)
    monkeypatch.setenv("KOUNEN_CONSOLE_USERS", json.dumps({"yamada": hashed}))
    monkeypatch.setenv("KOUNEN_CONSOLE_TOKENS", json.dumps({"kiosk": TOKEN}))
    monkeypatch.setenv("KOUNEN_CONSOLE_LOGIN_ATTEMPTS", "3")
    loaded = load_console_settings(_env_file=None)
    assert loaded.users == {"yamada": hashed}
    assert loaded.tokens["kiosk"].get_secret_value() == TOKEN
    assert loaded.login_attempts == 3 and loaded.has_credentials


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("KOUNEN_CONSOLE_USERS", '{"yamada": "plain-password"}', "not an argon2 hash"),
        ("KOUNEN_CONSOLE_USERS", "yamada=secret", "not valid JSON"),
        ("KOUNEN_CONSOLE_TOKENS", '{"kiosk": "short"}', "too short"),
        ("KOUNEN_CONSOLE_SECRET_KEY", "short", "KOUNEN_CONSOLE_SECRET_KEY"),
        ("KOUNEN_CONSOLE_LOGIN_ATTEMPTS", "0", "KOUNEN_CONSOLE_LOGIN_ATTEMPTS"),
    ],
)
def test_bad_settings_fail_with_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConsoleSettingsError) as caught:
        load_console_settings(_env_file=None)
    message = str(caught.value)
    assert expected in message and "\n" not in message and variable in message
    assert "plain-password" not in message


def test_hash_password_helper(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot.console.hash_password", "--user", "yamada"],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stderr == ""
    line = out.stdout.strip()
    assert line.startswith("KOUNEN_CONSOLE_USERS='") and line.endswith("'")
    users = json.loads(line.split("=", 1)[1].strip("'"))
    assert PasswordHasher().verify(users["yamada"], "a long enough password")
    assert ConsoleSettings(users=users).has_credentials

    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert hash_password_main([]) == 2
    assert "12" in capsys.readouterr().err
    assert hash_password_main(["--token", "--user", "kiosk"]) == 0
    tokens = json.loads(capsys.readouterr().out.strip().split("=", 1)[1].strip("'"))
    assert ConsoleSettings(tokens=tokens).tokens["kiosk"].get_secret_value() == tokens["kiosk"]


def test_install_browser_script_is_idempotent_when_chromium_is_there() -> None:
    script = Path(__file__).resolve().parent.parent / "scripts" / "install-browser.sh"
    assert script.exists()
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium is not installed: run `bash scripts/install-browser.sh`")
    fonts = subprocess.run(["fc-list", ":lang=ja"], capture_output=True, text=True)
    if not fonts.stdout.strip():
        pytest.skip("no Japanese font: the script would install one (not done from a test)")
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "already installed" in done.stdout
