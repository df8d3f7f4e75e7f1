"""The console in a real browser: Debian's headless Chromium driven by Playwright's Python package.

The console is served by uvicorn on 127.0.0.1 (a free port, in a thread), mounted under
/console, over a temporary SQLite store seeded with query-log and feedback rows; the clock
is fixed on a Monday at 10:00 (the contact lines are open).  The browser is
/usr/bin/chromium (`bash scripts/install-browser.sh` installs it), launched with the flags a
sandboxed root run needs; without it every test here is skipped with the reason.

A screenshot of each page is written to test-artifacts/console/ (or $KOUNEN_SCREENSHOT_DIR)
and its path printed.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import skip_unless_ci
from sqlalchemy import update
from sqlalchemy.orm import Session as DbSession
from starlette.applications import Starlette
from starlette.routing import Mount

from bot.console import ConsoleSettings, create_console_app
from bot.store import Feedback, QueryLog, Store
from faq import KnowledgeBase, Policy, answer_text
from rules import TOKYO, ProductivityInputs, WithdrawalInputs, calculate_productivity, check_withdrawal

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright's Python package is not installed"
)
uvicorn = pytest.importorskip("uvicorn")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple"
MONDAY_10 = datetime(2024, 6, 3, 10, 0, tzinfo=TOKYO)
SHOTS = Path(
    os.environ.get("KOUNEN_SCREENSHOT_DIR")
    or Path(__file__).resolve().parent.parent / "test-artifacts" / "console"
)
UNANSWERED = "ゲームのログインボーナスは？"
GBIZ_PHONE = "06-6225-7877"
KOUNEN_PHONE = "0570-002-551"
IT2023_PHONE = "0570-666-376"

# Every input has a label (or an aria name), every button and link a name, ids are unique.
A11Y_CHECK = """
() => {
  const problems = [];
  const named = (el) => (el.getAttribute('aria-label') || '').trim() ||
    (el.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
      .map((id) => (document.getElementById(id) || {}).textContent || '').join('').trim();
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const labels = Array.from(el.labels || []).map((l) => l.textContent.trim()).filter(Boolean);
    if (!labels.length && !named(el)) problems.push(`no label: ${el.outerHTML.slice(0, 80)}`);
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    if (!el.textContent.trim() && !named(el)) problems.push(`no name: ${el.outerHTML.slice(0, 80)}`);
  }
  const ids = {};
  for (const el of document.querySelectorAll('[id]')) ids[el.id] = (ids[el.id] || 0) + 1;
  for (const [id, n] of Object.entries(ids)) if (n > 1) problems.push(`duplicate id: ${id}`);
  if (document.documentElement.lang !== 'ja') problems.push('html lang is not ja');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  return problems;
}
"""
# Elements sticking out to the right of a phone screen (the page would scroll sideways).
OVERFLOW_CHECK = """
() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > width + 1 && !el.closest('.visually-hidden')) {
      wide.push(`${el.tagName.toLowerCase()}.${el.className}: ${Math.round(r.right)}px`);
    }
  }
  return {scroll: document.documentElement.scrollWidth, width, wide: wide.slice(0, 5)};
}
"""


# ---------------------------------------------------------------- server and browser


def _seed(store: Store) -> None:
    def at(model: type[QueryLog] | type[Feedback], row_id: int, hours: float) -> None:
        with DbSession(store.engine) as session, session.begin():
            when = (MONDAY_10 - timedelta(hours=hours)).astimezone(UTC)
            session.execute(update(model).where(model.id == row_id).values(time=when))

    rows = [
        (UNANSWERED, "no_match", None, None),
        (UNANSWERED, "no_match", None, None),
        ("090-1234-5678 に折り返し電話がほしい", "no_match", None, None),
        ("ログイン", "clarify", "it2020-login-failed", 0.94),
        ("IDがわからない", "answered", "it2020-portal-id-forgotten", 0.5),
        ("申請マイページのIDがわからない", "answered", "it2020-mypage-id-forgotten", 0.83),
    ]
    last = 0
    for hours, (text, status, entry, score) in enumerate(rows, start=1):
        last = store.log_query("telegram", f"user-{hours}", text, status, entry, score)
        at(QueryLog, last, hours)
    feedback = store.add_feedback(
        "telegram", "user-9", "it2020-mypage-id-forgotten", False, "問い合わせ先が分からない", last
    )
    at(Feedback, feedback, 2)


@pytest.fixture(scope="module")
def server(kb: KnowledgeBase, policy: Policy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The console under /console on http://127.0.0.1:<free port>, served by uvicorn in a thread."""
    from argon2 import PasswordHasher

    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('console') / 'console.db'}")
    _seed(store)
    with pytest.MonkeyPatch.context() as patch:  # settings from here only: no KOUNEN_CONSOLE_*, no .env
        for name in list(os.environ):
            if name.startswith("KOUNEN_CONSOLE_"):
                patch.delenv(name)
        patch.chdir(tmp_path_factory.getbasetemp())
        settings = ConsoleSettings.model_validate(
            {
                "users": {
                    "yamada": PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
                },
                "secret_key": "k" * 48,
            }
        )
    console = create_console_app(kb=kb, policy=policy, store=store, settings=settings, now=lambda: MONDAY_10)
    app = Starlette(routes=[Mount("/console", console)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()
        store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        skip_unless_ci(
            f"{CHROMIUM} not found: run `bash scripts/install-browser.sh` to install Debian's chromium"
        )
    with playwright_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        installed = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout
        assert launched.version in installed, (launched.version, installed)  # Debian's, not a download
        try:
            yield launched
        finally:
            launched.close()


def _context(browser: Any, server: str, **options: Any) -> Any:
    context = browser.new_context(base_url=server, locale="ja-JP", timezone_id="Asia/Tokyo", **options)
    context.set_default_timeout(10_000)
    return context


def _log_in(page: Any, password: str = PASSWORD) -> Any:
    page.get_by_label("ユーザー名").fill("yamada")
    page.get_by_label("パスワード").fill(password)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="ログイン", exact=True).click()
    return navigation.value


@pytest.fixture(scope="module")
def staff_state(browser: Any, server: str) -> dict[str, Any]:
    """A logged-in browser session, reused by the tests that are not about logging in."""
    context = _context(browser, server)
    page = context.new_page()
    page.goto("/console/login")
    assert _log_in(page).status == 200
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


@pytest.fixture
def page(browser: Any, server: str, staff_state: dict[str, Any]) -> Iterator[Any]:
    context = _context(
        browser,
        server,
        storage_state=staff_state,
        viewport={"width": 1280, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
    )
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # Answers with 401/403/422 are expected here; anything else the console logs as an error is not.
    tab.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield tab
    context.close()
    assert not errors, f"errors in the browser console: {errors}"


def shot(page: Any, name: str, capsys: pytest.CaptureFixture[str], *, full_page: bool = True) -> Path:
    """A screenshot (the whole page, or only the first screen as the user sees it) for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    with capsys.disabled():
        print(f"\nscreenshot: {path}")
    return path


def a11y_problems(page: Any) -> list[str]:
    problems: list[str] = page.evaluate(A11Y_CHECK)
    return problems


# ---------------------------------------------------------------- tests


def test_wrong_password_then_login(browser: Any, server: str, capsys: pytest.CaptureFixture[str]) -> None:
    context = _context(browser, server)
    page = context.new_page()
    page.goto("/console/insights")
    assert page.url.startswith(f"{server}/console/login?next=")
    shot(page, "01-login", capsys)
    wrong = _log_in(page, password="not the password")
    assert wrong.status == 401
    error = page.locator("#login-error")
    playwright_api.expect(error).to_have_text("ユーザー名またはパスワードが正しくありません。")
    assert page.get_by_label("ユーザー名").input_value() == "yamada"
    assert page.get_by_label("パスワード").get_attribute("aria-invalid") == "true"
    shot(page, "02-login-wrong-password", capsys)
    right = _log_in(page)
    assert right.status == 200
    assert page.url == f"{server}/console/insights"  # back where the staff member wanted to go
    context.close()


def test_results_appear_while_typing(page: Any, capsys: pytest.CaptureFixture[str]) -> None:
    page.goto("/console/")
    page.evaluate("window.__samePage = true")
    page.locator("#q").press_sequentially("ツールを半年で解約", delay=40)
    first = page.locator(".result").first
    playwright_api.expect(first).to_be_visible()
    assert page.evaluate("window.__samePage") is True  # no page load: fetched while typing
    searches = page.evaluate("window.kounenConsole.searches")
    assert 1 <= searches < 4, searches  # debounced: not one request per character
    assert "q=" in page.url  # the address follows the search, so it can be shared
    playwright_api.expect(first.locator(".score")).to_contain_text(re.compile(r"一致度 [01]\.\d\d"))
    playwright_api.expect(first.locator(".badge.program-it2020")).to_have_text("IT導入補助金2020")
    assert first.locator(".result-title mark").count() >= 1
    playwright_api.expect(first.locator(".line-status").first).to_contain_text("受付中")
    playwright_api.expect(page.locator(".outcome")).to_contain_text("ボットは")
    shot(page, "03-search-as-you-type", capsys)


def test_copy_button_copies_the_official_answer(
    page: Any, kb: KnowledgeBase, capsys: pytest.CaptureFixture[str]
) -> None:
    page.goto("/console/?q=" + "申請マイページのIDがわからない")
    button = page.locator('button[data-copy-target="r1-answer"]')
    playwright_api.expect(button).to_be_visible()
    button.click()
    playwright_api.expect(button).to_have_text("コピーしました")
    expected = answer_text(kb, kb.by_id["it2020-mypage-id-forgotten"])
    assert page.evaluate("window.kounenConsole.lastCopied") == expected
    assert page.evaluate("navigator.clipboard.readText()") == expected
    playwright_api.expect(page.locator("#live")).to_have_text("コピーしました")
    shot(page, "04-search-copied", capsys)


def test_keyboard_only(page: Any) -> None:
    page.goto("/console/")
    assert page.evaluate("document.activeElement.id") == "q"  # typing can start at once
    page.keyboard.type("ログイン")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/?q=%E3%83%AD%E3%82%B0%E3%82%A4%E3%83%B3*")
    page.wait_for_load_state()
    playwright_api.expect(page.locator(".result").first).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "q"
    titles = page.locator(".result-title a")
    page.keyboard.press("ArrowDown")
    playwright_api.expect(titles.nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    playwright_api.expect(titles.nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    playwright_api.expect(titles.nth(0)).to_be_focused()
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.press("ArrowDown")
    href = titles.nth(0).get_attribute("href")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(str(href))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.goto("/console/entries")
    page.locator("h1").click()
    page.goto("/console/?q=ログイン")
    page.locator("h1").click()
    page.keyboard.press("/")  # the shortcut back to the search field
    assert page.evaluate("document.activeElement.id") == "q"


def test_search_box_has_focus_after_login(browser: Any, server: str) -> None:
    context = _context(browser, server)
    page = context.new_page()
    page.goto("/console/login")
    _log_in(page)
    assert page.url == f"{server}/console/"
    assert page.evaluate("document.activeElement.id") == "q"
    context.close()


# Twelve searches as staff type them; the entry that should come first and the line it gives.
SEARCHES = [
    ("申請マイページのIDがわからない", "it2020-mypage-id-forgotten", GBIZ_PHONE),
    ("gbiz", "it2020-mypage-id-forgotten", GBIZ_PHONE),
    ("GビズID", "it2020-mypage-id-forgotten", GBIZ_PHONE),
    ("ジービズ", "it2020-mypage-id-forgotten", GBIZ_PHONE),
    ("かいやく", "it2020-cancel-within-year", KOUNEN_PHONE),
    ("口座 変更", "it2020-vendor-info-change", KOUNEN_PHONE),
    ("住所変更", "it2020-vendor-info-change", KOUNEN_PHONE),
    ("辞退届はどこから出す？", None, None),
    ("効果報告の労働生産性の計算方法", None, None),
    ("ツールを半年で解約したらどうなる？", None, None),
    ("解約したい", "it2020-cancel-within-year", KOUNEN_PHONE),  # close candidates: asked back
    ("ログイン", "it2020-login-failed", KOUNEN_PHONE),
]
# Where a calculation's verdict is, and how much of the screen the phone's contact bar leaves.
VERDICT_BOX = """
() => {
  const r = document.querySelector('#result .verdict').getBoundingClientRect();
  const bar = document.querySelector('.lines').getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, visible: bar.bottom >= innerHeight - 1 ? bar.top : innerHeight};
}
"""
# Where the first result must be: its title, its phone number and the start of its answer.
FIRST_SCREEN = """
() => {
  const first = document.querySelector('.result');
  const bar = document.querySelector('.lines');
  const r = bar && bar.getBoundingClientRect();
  // On a phone the lines are a bar stuck to the bottom of the screen: what is under it is not seen.
  const barTop = r && r.bottom >= innerHeight - 1 && r.width > innerWidth * 0.9 ? r.top : innerHeight;
  const box = (el) => el ? el.getBoundingClientRect() : null;
  const tel = first && first.querySelector('.result-line .tel');
  const answer = first && first.querySelector('.answer');
  return {
    visible: barTop, title: box(first && first.querySelector('.result-title')), tel: box(tel),
    telText: tel ? tel.textContent : null, answer: box(answer), entry: first ? first.querySelector('.result-title a').getAttribute('href') : null,
    count: document.querySelectorAll('.result-list .result').length,
  };
}
"""


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (375, 812)])
def test_first_answer_and_its_phone_are_on_the_first_screen(
    browser: Any,
    server: str,
    staff_state: dict[str, Any],
    policy: Policy,
    width: int,
    height: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    context = _context(
        browser, server, storage_state=staff_state, viewport={"width": width, "height": height}
    )
    page = context.new_page()
    for number, (query, entry_id, phone) in enumerate(SEARCHES, start=1):
        page.goto("/console/?q=" + query)
        found = page.evaluate(FIRST_SCREEN)
        assert found["title"] is not None, query
        assert found["title"]["bottom"] <= found["visible"], (query, found)
        assert found["tel"] is not None and found["tel"]["bottom"] <= found["visible"], (query, found)
        assert found["answer"]["top"] < found["visible"] - 40, (query, found)  # the answer starts on screen
        assert found["count"] <= 5, query
        if entry_id:
            assert found["entry"].endswith(f"/entries/{entry_id}"), (query, found["entry"])
            assert found["telText"] == phone, (query, found["telText"])
        scores = [float(t.split()[-1]) for t in page.locator(".result-list .score").all_inner_texts()]
        # Every result covers the question, except the other program's answer the bot shows beside its own.
        below = [score for score in scores if score < policy.config.coverage_min - 0.005]
        assert len(below) <= max(0, len(policy.decide(query).answers) - 1), (query, scores)
        if number in (1, 2, 5, 10):
            shot(page, f"30-first-screen-{width}-{number}", capsys, full_page=False)
    context.close()


def test_nothing_fits_says_so(page: Any, capsys: pytest.CaptureFixture[str]) -> None:
    page.goto("/console/?q=ものづくり補助金の返還について")
    playwright_api.expect(page.locator(".outcome")).to_contain_text("対象外")
    assert page.locator(".result-list .result").count() == 0
    fallback = page.locator(".fallback")
    playwright_api.expect(fallback).to_contain_text("該当する回答はありません")
    assert fallback.locator('a[href^="tel:"]').count() >= 2  # both programs' lines, tappable
    shot(page, "31-nothing-fits", capsys)


def test_a_not_found_shows_the_staff_what_the_bot_offers(
    page: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Too chatty for the bot to answer by itself: the staff see the near entries it offers to pick.
    page.goto(
        "/console/?q=社長から今日中に効果報告を終わらせろと言われて慌てて入力を始めたのですが、"
        "入力画面の途中で電話対応が入ってしまい、一旦保存して後から続きができるのか知りたいです"
    )
    playwright_api.expect(page.locator(".outcome")).to_contain_text("近い質問（候補）を示します")
    playwright_api.expect(page.locator(".outcome .reason")).to_contain_text("当てはまるかをご確認ください")
    offered = page.locator(".result-list .result.chosen")
    assert offered.count() >= 1
    playwright_api.expect(offered.first).to_contain_text("効果報告の入力を途中で保存できますか")
    playwright_api.expect(offered.first).to_contain_text("ボットの候補")
    shot(page, "33-not-found-offers", capsys, full_page=False)


def test_ask_back_by_program_side_by_side(page: Any, capsys: pytest.CaptureFixture[str]) -> None:
    page.goto("/console/?q=ツールを半年で解約したらどうなる？")
    playwright_api.expect(page.locator(".outcome .reason")).to_contain_text("制度によって回答が異なります")
    columns = page.locator(".by-program-col")
    assert columns.count() == 2
    left, right = columns.nth(0).bounding_box(), columns.nth(1).bounding_box()
    assert abs(left["y"] - right["y"]) < 2 and left["x"] + left["width"] <= right["x"]  # side by side
    playwright_api.expect(columns.nth(0)).to_contain_text(KOUNEN_PHONE)
    playwright_api.expect(columns.nth(1)).to_contain_text(IT2023_PHONE)
    shot(page, "32-ask-back-by-program", capsys, full_page=False)


def test_one_programs_answers_by_span_share_its_column(page: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # No span stated: the 2020 column holds both of its rules (質問6 and 質問7), the 2023 column its one.
    page.goto("/console/?q=ITツール 解約 辞退届")
    playwright_api.expect(page.locator(".outcome .reason")).to_contain_text("制度によって回答が異なります")
    columns = page.locator(".by-program-col")
    assert columns.count() == 2
    counts = sorted(columns.nth(i).locator(".result").count() for i in range(2))
    assert counts == [1, 2]
    assert (
        page.locator("[id$='-title']").evaluate_all("els => new Set(els.map(e => e.id)).size")
        == page.locator("[id$='-title']").count()
    )  # every result's heading id unique across the columns and the rest
    shot(page, "32b-by-program-spans", capsys, full_page=False)


def test_contact_panel_stays_in_view_and_copies(page: Any, capsys: pytest.CaptureFixture[str]) -> None:
    page.goto("/console/?q=ツールを半年で解約したらどうなる？")
    panel = page.locator(".lines")
    playwright_api.expect(panel).to_contain_text("受付中（17:30まで）")
    for phone in (KOUNEN_PHONE, IT2023_PHONE):
        assert panel.locator(f'a[href="tel:{phone}"]').count() == 1
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    box = panel.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 900  # sticky
    copy = panel.get_by_role(
        "button", name=f"IT導入補助金2023 複数社連携の電話番号（{IT2023_PHONE}）をコピー"
    )
    copy.click()
    # Waiting on the page's own text: the CSP forbids the string evaluation wait_for_function polls with.
    playwright_api.expect(copy).to_have_text("コピーしました")
    assert page.evaluate("navigator.clipboard.readText()") == IT2023_PHONE
    shot(page, "33-contact-panel-scrolled", capsys, full_page=False)


def test_empty_search_page_lists_the_most_asked(page: Any, capsys: pytest.CaptureFixture[str]) -> None:
    page.goto("/console/")
    popular = page.locator(".popular")
    playwright_api.expect(popular).to_contain_text("よく聞かれている回答")
    assert popular.locator('a[href$="/entries/it2020-mypage-id-forgotten"]').count() == 1
    shot(page, "34-empty-search", capsys, full_page=False)


def test_productivity_calculator(page: Any, capsys: pytest.CaptureFixture[str]) -> None:
    page.goto("/console/calc/productivity")
    shot(page, "05-productivity-form", capsys)
    page.get_by_label("営業利益").fill("3000万")
    page.get_by_label("人件費").fill("2,000万円")
    page.get_by_label("減価償却費").fill("500万")
    page.get_by_label("従業員数").fill("10人")
    page.get_by_label("年間平均労働時間").fill("1,800時間")
    page.get_by_label("申請時の実績値").fill("2,800")
    page.get_by_label("効果報告年度").select_option("1")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="計算する").click()
    assert navigation.value.status == 200
    result = page.locator("#result")
    playwright_api.expect(result).to_be_focused()
    playwright_api.expect(result).to_contain_text("3,055.56円/時間")
    playwright_api.expect(result.locator(".verdict")).to_have_text("基準（5%）に達しています。")
    expected = calculate_productivity(
        ProductivityInputs(
            Decimal(30_000_000), Decimal(20_000_000), Decimal(5_000_000), 10, Decimal(1800), Decimal(2800), 1
        )
    )
    for line in expected.explanation:
        playwright_api.expect(result).to_contain_text(line)
    shot(page, "06-productivity-result", capsys)

    page.get_by_label("従業員数").fill("たくさん")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="計算する").click()
    assert navigation.value.status == 422
    error = page.locator("#employees-error")
    playwright_api.expect(error).to_be_visible()
    playwright_api.expect(error).to_contain_text("人数")
    assert page.get_by_label("従業員数").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("従業員数").input_value() == "たくさん"
    playwright_api.expect(page.locator("#error-summary")).to_be_focused()
    assert page.locator(".field-error").count() == 1  # only the wrong field
    assert page.locator("#result").count() == 0
    shot(page, "07-productivity-field-error", capsys)


def test_withdrawal_check(page: Any, capsys: pytest.CaptureFixture[str]) -> None:
    page.goto("/console/calc/withdrawal")
    page.get_by_label("制度").select_option("it2020")
    page.get_by_label("事由").select_option("cancel-part")
    page.get_by_label("ITツールの納品日").fill("2021/4/1\n令和3年6月1日")
    page.get_by_label("解約・利用停止（予定）日").fill("2021/12/1")
    page.get_by_label("補助事業の完了日").fill("2021/9/30")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="判定する").click()
    assert navigation.value.status == 200
    expected = check_withdrawal(
        WithdrawalInputs(
            "it2020",
            "cancel-part",
            (date(2021, 4, 1), date(2021, 6, 1)),
            date(2021, 12, 1),
            date(2021, 9, 30),
        )
    )
    result = page.locator("#result")
    playwright_api.expect(result.locator(".verdict")).to_have_text(expected.summary)
    for line in expected.explanation:
        playwright_api.expect(result).to_contain_text(line)
    playwright_api.expect(result.locator(".line-status")).to_have_text("受付中（17:30まで）")
    shot(page, "08-withdrawal-result", capsys)

    page.get_by_label("解約・利用停止（予定）日").fill("2021/3/1")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="判定する").click()
    assert navigation.value.status == 422
    error = page.locator("#cancelled-error")
    playwright_api.expect(error).to_contain_text("納品日")
    assert page.get_by_label("解約・利用停止（予定）日").get_attribute("aria-invalid") == "true"
    shot(page, "09-withdrawal-field-error", capsys)


def test_csrf_rejection(page: Any, capsys: pytest.CaptureFixture[str]) -> None:
    page.goto("/console/calc/productivity")
    page.get_by_label("営業利益").fill("3000万")
    page.evaluate("document.querySelector('main input[name=csrf_token]').value = 'forged'")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="計算する").click()
    assert navigation.value.status == 403
    playwright_api.expect(page.locator("h1")).to_have_text("送信を受け付けられません")
    shot(page, "10-csrf-rejected", capsys)
    page.goto("/console/calc/productivity")
    page.evaluate("document.querySelector('main input[name=csrf_token]').remove()")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="計算する").click()
    assert navigation.value.status == 403
    status = page.evaluate(
        "fetch('/console/calc/withdrawal', {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'},"
        " body: 'program=it2020'}).then((r) => r.status)"
    )
    assert status == 403


def test_insights_copy_and_csv(page: Any, capsys: pytest.CaptureFixture[str]) -> None:
    page.goto("/console/insights")
    table = page.locator("#unanswered table")
    playwright_api.expect(table).to_contain_text(UNANSWERED)
    playwright_api.expect(table).to_contain_text("[電話番号] に折り返し電話がほしい")
    playwright_api.expect(page.locator("#feedback")).to_contain_text("問い合わせ先が分からない")
    row = table.locator("tr", has_text=UNANSWERED)
    playwright_api.expect(row.locator('td[data-label="件数"]')).to_have_text("2")
    copy = row.get_by_role("button")
    copy.click()
    playwright_api.expect(copy).to_have_text("コピーしました")
    assert page.evaluate("window.kounenConsole.lastCopied") == UNANSWERED
    assert page.evaluate("navigator.clipboard.readText()") == UNANSWERED
    with page.expect_download() as download:
        page.locator("#unanswered").get_by_role("link", name="CSV").click()
    content = Path(download.value.path()).read_text(encoding="utf-8")
    assert content.startswith("\ufeff質問,件数")
    assert UNANSWERED in content
    shot(page, "11-insights", capsys)


PAGES = {
    "search": "/console/?q=%E8%A7%A3%E7%B4%84%E3%81%97%E3%81%9F%E3%81%84",
    "entries": "/console/entries",
    "entry": "/console/entries/it2023-productivity-formula",
    "productivity": "/console/calc/productivity",
    "withdrawal": "/console/calc/withdrawal",
    "insights": "/console/insights",
}


def test_every_field_has_a_label(page: Any, server: str, browser: Any) -> None:
    for name, path in PAGES.items():
        page.goto(path)
        assert a11y_problems(page) == [], name
    page.goto("/console/calc/productivity")
    page.get_by_role("button", name="計算する").click()  # every field now has an error
    page.wait_for_selector("#error-summary")
    assert a11y_problems(page) == [], "productivity with errors"
    anonymous = _context(browser, server)
    login = anonymous.new_page()
    login.goto("/console/login")
    assert a11y_problems(login) == [], "login"
    anonymous.close()


def test_usable_at_phone_width(
    browser: Any, server: str, staff_state: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    context = _context(
        browser,
        server,
        storage_state=staff_state,
        viewport={"width": 375, "height": 812},
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    for number, (name, path) in enumerate(PAGES.items(), start=12):
        page.goto(path)
        if name == "productivity":
            page.get_by_label("営業利益").fill("▲500万")
            page.get_by_label("人件費").fill("2000万")
            page.get_by_label("減価償却費").fill("100万")
            page.get_by_label("従業員数").fill("3")
            page.get_by_label("年間平均労働時間").fill("1800")
            page.get_by_role("button", name="計算する").click()
        if name == "withdrawal":
            page.get_by_label("制度").select_option("it2023-multi")
            page.get_by_label("事由").select_option("cancel-part")
            page.get_by_label("ITツールの納品日").fill("2024/4/1")
            page.get_by_label("解約・利用停止（予定）日").fill("2024/10/1")
            page.get_by_label("補助事業の完了日").fill("2024/6/30")
            page.get_by_role("button", name="判定する").click()
        if name in ("productivity", "withdrawal"):
            page.wait_for_selector("#result")
            playwright_api.expect(page.locator("#result")).to_be_focused()
            verdict = page.evaluate(VERDICT_BOX)
            assert verdict["top"] >= 0 and verdict["bottom"] <= verdict["visible"], (name, verdict)
            shot(page, f"{number}-phone-{name}-first-screen", capsys, full_page=False)
        measured = page.evaluate(OVERFLOW_CHECK)
        assert measured["scroll"] <= measured["width"], (name, measured)
        assert measured["width"] == 375
        shot(page, f"{number}-phone-{name}", capsys)
    context.close()


def test_search_works_without_javascript(
    browser: Any, server: str, staff_state: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    context = _context(browser, server, storage_state=staff_state, java_script_enabled=False)
    page = context.new_page()
    page.goto("/console/")
    page.get_by_label("お問い合わせの内容").fill("辞退届はどこから出す？")
    with page.expect_navigation():
        page.get_by_label("お問い合わせの内容").press("Enter")
    playwright_api.expect(page.locator(".result").first).to_be_visible()
    assert page.locator("button.copy").first.is_hidden()  # copying needs the script: not offered
    shot(page, "18-search-without-javascript", capsys)
    context.close()
