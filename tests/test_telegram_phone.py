"""What a Telegram user sees on a phone: the bot's messages in a chat page at 375×667, in Chromium.

The messages are produced as the bot sends them: the real conversation service (shipped
knowledge base, real flows, a SQLite store, a clock fixed on a Friday at 10:00 when the
lines are open) answers each turn, and the Telegram channel's own `render_turn` turns it
into HTML texts and inline keyboards.  Those are put, unchanged, into a static page shaped
like a Telegram chat on a 375 px phone: a 56 px header, message bubbles showing the HTML as
Telegram does (bold, line breaks, links, with URLs and phone numbers linked as the client
links them) and the keyboard's rows under the bubble, each row's buttons sharing its width
and a label that does not fit cut with an ellipsis, as Telegram cuts it.

Checked for each answer: its first message, from the headline to the last button, fits one
screen under the header; the bold headline opens the bubble; nothing sticks out sideways; no
button label is cut.  Messages shown on request (「詳しく」) may be longer: they are only
photographed.  A screenshot of each case is written to test-artifacts/telegram/ (or
$KOUNEN_SCREENSHOT_DIR/../telegram), with a dashed line where the first screen ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from test_console_browser import browser as browser  # Debian's chromium, as the console's tests launch it

from bot.service import QUICK_CHOICES, ConversationService, ServiceTurn
from bot.store import Store
from bot.telegram import Outgoing, render_turn
from dialogs.types import UserInput
from faq import KnowledgeBase, Policy
from rules import TOKYO

PHONE = {"width": 375, "height": 667}
HEADER = 56  # the chat's title bar
SCREEN = PHONE["height"] - HEADER  # what one screen shows of the messages
OPEN = datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO)  # a Friday morning: every line is open
SHOTS = (
    Path(os.environ["KOUNEN_SCREENSHOT_DIR"]).parent / "telegram"
    if os.environ.get("KOUNEN_SCREENSHOT_DIR")
    else Path(__file__).resolve().parents[1] / "test-artifacts" / "telegram"
)
PRODUCTIVITY = ["3000万", "2500万", "500万", "10人", "1800時間", "はい", "3000", "1", "いいえ"]
WITHDRAWAL_2020 = ["2020", "全部解約", "2021/4/1、2021/6/1", "2021/12/1", "2021/9/30"]

# What Telegram's HTML parse mode accepts (anything else makes the Bot API refuse the message).
TELEGRAM_TAGS = frozenset(
    [
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    ]
)
TELEGRAM_ENTITIES = frozenset({"lt", "gt", "amp", "quot"})


@dataclass(frozen=True)
class Case:
    """One conversation: what the user does (typed text, or "@" and a button's value), and
    whether its last turn is an answer (which must open with a bold headline)."""

    steps: tuple[str, ...]
    answer: bool = True
    details: bool = False  # the last step is 「詳しく」: shown on request, only photographed


CASES: dict[str, Case] = {
    "start": Case(("/start",), answer=False),
    "answer": Case(("申請マイページのIDがわからない",)),
    "answer-details": Case(("申請マイページのIDがわからない", "@more:"), details=True),
    "two-programs": Case(("ツールを半年で解約したらどうなる？",)),
    # No duration, no program: the 2023 answer and both 2020 spans (1年未満, 1年以上) under one heading.
    "both-spans": Case(("辞退したら補助金返すの？",)),
    "not-found": Case(("省エネ補助金の申請の締め切りはいつ？",)),
    # Not sure enough to answer: "not found", the lines, and the near questions to pick.
    "not-found-offers": Case(
        (
            "社長から今日中に効果報告を終わらせろと言われて慌てて入力を始めたのですが、入力画面の途中で"
            "電話対応が入ってしまい、一旦保存して後から続きができるのか知りたいです",
        ),
    ),
    "clarify": Case(("辞退届 いつ出す",), answer=False),
    # Three long questions offered, each tagged with its program: still one screen.
    "not-found-three-offers": Case(
        ("ツールやめたら補助金返すことになるの？けっこう前に入れたやつなんだけど",)
    ),
    # 令和元年度補正 alone: the 2020 answer with the note that IT導入補助金2021 shares the words.
    "narrowed": Case(("令和元年度補正で入れたツールを半年で解約したら？",)),
    # 「IT導入補助金2023」 without a frame: the 2023 answer with where the other frames' guide is,
    # and a "not found" with the 2023 line only.
    "narrowed-2023": Case(("IT導入補助金2023のコールセンターの電話番号",)),
    "not-found-within": Case(("IT導入補助金2023のマイページのログインIDを忘れてしまった",)),
    # A line quoted by its number: that line's program only.
    "phone-number": Case(("0570-666-376に何回かけてもつながらない",)),
    "contacts": Case(("@go:contacts",), answer=False),
    "productivity": Case(("@flow:productivity", *PRODUCTIVITY)),
    "withdrawal": Case(("@flow:withdrawal", *WITHDRAWAL_2020)),
}

PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kounen</title>
<style>
  html, body { margin: 0; }
  body {
    font-family: "IPAPGothic", "IPAGothic", "Noto Sans CJK JP", sans-serif;
    font-size: 15px; line-height: 1.35; color: #000; background: #c8d7b4;
  }
  header {
    position: sticky; top: 0; z-index: 1; box-sizing: border-box; height: 56px; padding: 0 16px;
    display: flex; align-items: center; gap: 12px; background: #517da2; color: #fff;
  }
  header .avatar { width: 38px; height: 38px; border-radius: 50%; background: #7bc862; }
  header b { display: block; font-size: 16px; }
  header small { font-size: 13px; opacity: .8; }
  main { padding: 8px 8px 24px; }
  .msg { margin: 0 0 8px; max-width: calc(100% - 48px); }
  .msg.user { margin-left: auto; width: fit-content; }
  .bubble {
    display: block; width: fit-content; max-width: 100%; box-sizing: border-box;
    padding: 6px 10px 8px; border-radius: 12px; background: #fff;
    white-space: pre-wrap; overflow-wrap: anywhere; box-shadow: 0 1px 1px rgba(0,0,0,.15);
  }
  .user .bubble { background: #effdde; }
  .bubble a { color: #168acd; text-decoration: none; }
  .keyboard { display: flex; flex-direction: column; gap: 4px; margin-top: 4px; }
  .row { display: flex; gap: 4px; }
  .button {
    flex: 1 1 0; min-width: 0; box-sizing: border-box; height: 40px; padding: 0 8px;
    border-radius: 8px; background: rgba(58, 90, 64, .45); color: #fff;
    font-size: 15px; font-weight: bold; line-height: 40px; text-align: center;
    white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  }
  .fold {
    position: absolute; left: 0; right: 0; height: 0; border-top: 2px dashed #d00;
    font-size: 11px; color: #d00; text-align: right; pointer-events: none;
  }
</style></head>
<body><header><div class="avatar"></div><div><b>kounen</b><small>bot</small></div></header>
<main id="chat"></main>
<script>
  // Shows the messages as the Telegram client does: the HTML as sent, URLs and phone numbers
  // linked, the keyboard's rows under the bubble.
  const LINKABLE = /(https?:\\/\\/[^\\s<>（）「」、。]+|0\\d{1,4}-\\d{1,4}-\\d{3,4})/g;
  function linkify(node) {
    for (const child of Array.from(node.childNodes)) {
      if (child.nodeType === Node.ELEMENT_NODE && child.tagName !== 'A') linkify(child);
      if (child.nodeType !== Node.TEXT_NODE || !LINKABLE.test(child.data)) continue;
      LINKABLE.lastIndex = 0;
      const parts = child.data.split(LINKABLE);
      const frag = document.createDocumentFragment();
      parts.forEach((part, i) => {
        if (i % 2 === 0) { if (part) frag.append(part); return; }
        const a = document.createElement('a');
        a.href = part.startsWith('http') ? part : 'tel:' + part;
        a.textContent = part;
        frag.append(a);
      });
      child.replaceWith(frag);
    }
  }
  window.show = (said, messages, screen) => {
    const chat = document.getElementById('chat');
    const mine = document.createElement('div');
    mine.className = 'msg user';
    mine.innerHTML = '<div class="bubble"></div>';
    mine.firstChild.textContent = said;
    chat.append(mine);
    messages.forEach((message, index) => {
      const box = document.createElement('div');
      box.className = 'msg bot';
      box.id = 'm' + index;
      const bubble = document.createElement('div');
      bubble.className = 'bubble';
      bubble.innerHTML = message.html;
      linkify(bubble);
      box.append(bubble);
      if (message.rows.length) {
        const keyboard = document.createElement('div');
        keyboard.className = 'keyboard';
        for (const labels of message.rows) {
          const row = document.createElement('div');
          row.className = 'row';
          for (const label of labels) {
            const button = document.createElement('div');
            button.className = 'button';
            button.textContent = label;
            row.append(button);
          }
          keyboard.append(row);
        }
        box.append(keyboard);
      }
      chat.append(box);
    });
    const first = document.getElementById('m0');
    if (first) {
      const fold = document.createElement('div');
      fold.className = 'fold';
      fold.style.top = (first.getBoundingClientRect().top + scrollY + screen) + 'px';
      fold.textContent = '1画面';
      document.body.append(fold);
    }
  };
</script></body></html>
"""

MEASURE = """
() => {
  const boxes = Array.from(document.querySelectorAll('.msg.bot')).map((box) => {
    const bubble = box.querySelector('.bubble');
    const lead = bubble.firstChild;
    return {
      height: Math.round(box.getBoundingClientRect().height),
      right: Math.round(box.getBoundingClientRect().right),
      lead: lead && lead.nodeType === Node.ELEMENT_NODE ? lead.tagName.toLowerCase() : 'text',
      leadText: lead ? lead.textContent : '',
      cut: Array.from(box.querySelectorAll('.button'))
        .filter((b) => b.scrollWidth > b.clientWidth || b.getBoundingClientRect().right > innerWidth)
        .map((b) => `${b.textContent} (${b.scrollWidth}px in ${b.clientWidth}px)`),
    };
  });
  return {scroll: document.documentElement.scrollWidth, boxes};
}
"""


class _TelegramHtml(HTMLParser):
    """The problems Telegram's HTML parser would refuse: unknown tags, unclosed or crossed tags,
    named entities other than &lt; &gt; &amp; &quot;."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"tag <{tag}>")
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()

    def handle_entityref(self, name: str) -> None:
        if name not in TELEGRAM_ENTITIES:
            self.problems.append(f"entity &{name};")


def telegram_html_problems(text: str) -> list[str]:
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    return parser.problems + [f"<{tag}> not closed" for tag in parser.open]


# ---------------------------------------------------------------- the bot's messages


@pytest.fixture(scope="module")
def service(
    kb: KnowledgeBase, policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConversationService]:
    with Store.open(f"sqlite:///{tmp_path_factory.mktemp('phone') / 'phone.db'}") as store:
        yield ConversationService(kb, policy, store, clock=lambda: OPEN.date(), now=lambda: OPEN)


def converse(service: ConversationService, user: str, steps: tuple[str, ...]) -> tuple[str, ServiceTurn]:
    """The last turn of `steps` and what the user said or pressed for it (a button's label: one
    of the previous turn's, or of /start's quick replies).  "@more:" presses the previous turn's
    「詳しく」 button, whatever its value."""
    turn: ServiceTurn | None = None
    said = ""
    for step in steps:
        if step == "@more:":
            assert turn is not None
            step = "@" + next(c.value for r in turn.replies for c in r.choices if c.value.startswith("more:"))
        if step.startswith("@"):
            value = step[1:]
            offered = [c for r in turn.replies for c in r.choices] if turn else list(QUICK_CHOICES)
            said = next((c.label for c in offered if c.value == value), value)
            turn = service.handle("telegram", user, UserInput(choice=value))
        else:
            said = step
            turn = service.handle("telegram", user, UserInput(step))
    assert turn is not None
    return said, turn


def as_page_data(messages: list[Outgoing]) -> list[dict[str, Any]]:
    return [
        {
            "html": m.html,
            "rows": [[b.text for b in row] for row in (m.markup.inline_keyboard if m.markup else ())],
        }
        for m in messages
    ]


# ---------------------------------------------------------------- the browser


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="ja-JP", is_mobile=True)
    context.route("**/*", lambda route: route.abort())  # a static page: nothing to fetch
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"errors in the page: {errors}"


def show(page: Any, said: str, messages: list[dict[str, Any]]) -> None:
    """The chat page with what the user said and the bot's messages, fonts loaded."""
    page.set_content(PAGE)
    page.evaluate(
        "([said, messages, screen]) => window.show(said, messages, screen)", [said, messages, SCREEN]
    )
    page.evaluate("document.fonts.ready")


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("name", list(CASES))
def test_a_reply_on_a_phone(
    service: ConversationService, phone: Any, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES[name]
    said, turn = converse(service, f"phone-{name}", case.steps)
    messages = render_turn(turn)
    assert messages, name
    for message in messages:
        assert telegram_html_problems(message.html) == [], (name, message.html)

    show(phone, said, as_page_data(messages))
    measured = phone.evaluate(MEASURE)
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    phone.screenshot(path=str(path), full_page=True)
    heights = [box["height"] for box in measured["boxes"]]
    with capsys.disabled():
        print(f"\n{name}: message heights {heights} px (one screen: {SCREEN} px); screenshot: {path}")

    assert measured["scroll"] <= PHONE["width"], (name, "the page scrolls sideways", measured["scroll"])
    for index, box in enumerate(measured["boxes"]):
        assert box["right"] <= PHONE["width"], (name, index, box["right"])
        assert box["cut"] == [], (name, index, "button labels cut", box["cut"])
    if case.details:
        return
    first, reply = measured["boxes"][0], next(r for r in turn.replies if r.text.strip() or r.choices)
    assert first["height"] <= SCREEN, (
        name,
        f"the first message is {first['height'] - SCREEN} px over one screen",
    )
    if case.answer:
        assert reply.headline, (name, "an answer without a headline", reply.text)
    if reply.headline:
        assert (first["lead"], first["leadText"]) == ("b", reply.headline.strip()), (name, first)


def test_telegram_html_problems_finds_what_telegram_refuses() -> None:
    assert telegram_html_problems("<b>見出し</b>\n本文 &lt;x&gt; &amp; <a href='tel:0570'>電話</a>") == []
    assert telegram_html_problems("<b>見出し\n本文") == ["<b> not closed"]
    assert telegram_html_problems("<b><i>x</b></i>") == ["</b> closes ['i']", "<b> not closed"]
    assert telegram_html_problems("<br>&nbsp;") == ["tag <br>", "entity &nbsp;", "<br> not closed"]


def test_the_page_shows_what_it_is_given(phone: Any) -> None:
    """The chat page adds nothing and drops nothing: the words shown are the HTML's words."""
    html_text = "<b>見出し &amp; 要点</b>\n\n本文 0570-002-551 https://example.jp/a"
    show(phone, "質問", [{"html": html_text, "rows": [["はい", "いいえ"], ["戻る"]]}])
    shown = phone.evaluate("document.querySelector('#m0 .bubble').innerText")
    assert shown == "見出し & 要点\n\n本文 0570-002-551 https://example.jp/a"
    links = phone.evaluate("Array.from(document.querySelectorAll('#m0 a')).map((a) => a.href)")
    assert links == ["tel:0570-002-551", "https://example.jp/a"]
    rows = phone.evaluate("Array.from(document.querySelectorAll('#m0 .row')).map((r) => r.children.length)")
    assert rows == [2, 1]
