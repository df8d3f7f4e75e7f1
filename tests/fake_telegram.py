"""A fake Telegram Bot API server on 127.0.0.1, for running the real PTB Application in tests.

A Starlette app served by uvicorn in a background thread, speaking the Bot API's HTTP
protocol at http://127.0.0.1:<port>/bot<token>/<method> (form-encoded or JSON
parameters, {"ok": true, "result": …} answers, errors with error_code, description
and parameters.retry_after).  Methods: getMe, getUpdates (offset confirms, limit,
long polling with timeout), sendMessage, editMessageText, editMessageReplyMarkup,
answerCallbackQuery, deleteWebhook, setWebhook, getWebhookInfo, setMyCommands.

sendMessage and editMessageText check what Telegram checks: HTML parse mode (only
Telegram's tags, every other <, > and & escaped), at most 4,096 characters after
parsing, callback data of 1-64 bytes; a violation is a 400 as from Telegram.  The
stored message keeps the HTML sent and the plain text a user would see.

Tests queue updates (`message`, `press`, `sticker`, …), wait for the bot's messages
(`wait_for`, `wait_messages`), and make the next calls of a method fail
(`fail_next(method, 429, retry_after=1)` or `fail_next(method, 500)`).  Everything is
thread-safe: the server runs in its own thread and event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

T = TypeVar("T")

DEFAULT_TOKEN = "123456789:TEST-fake-token-abcdefghijklmnopqrstuv"
JSON_PARAMS = frozenset(
    {"reply_markup", "allowed_updates", "commands", "link_preview_options", "entities", "scope"}
)
ALLOWED_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler", "span"}
    | {"blockquote", "tg-emoji"}
)
_BARE_AMP = re.compile(r"&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)")
_TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9-]*)(?:\s[^<>]*)?>")


class BadHTML(ValueError):
    pass


def plain_text(raw: str) -> str:
    """What a user sees for `raw` in HTML parse mode; BadHTML where Telegram refuses it.

    Telegram: "All <, > and & symbols that are not a part of a tag or an HTML entity must be
    replaced with the corresponding HTML entities", and only its own tags are allowed.
    """
    if _BARE_AMP.search(raw):
        raise BadHTML("Bad Request: can't parse entities: unescaped &")
    for match in re.finditer("<", raw):
        tag = _TAG.match(raw, match.start())
        if tag is None:
            raise BadHTML(f"Bad Request: can't parse entities: unescaped < at byte offset {match.start()}")
        if tag.group(1).lower() not in ALLOWED_TAGS:
            raise BadHTML(f'Bad Request: can\'t parse entities: Unsupported start tag "{tag.group(1)}"')
    stripped = _TAG.sub("", raw)
    if ">" in stripped:
        raise BadHTML("Bad Request: can't parse entities: unescaped >")
    return html.unescape(stripped)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class SentMessage:
    message_id: int
    chat_id: int
    html: str  # as sent (HTML parse mode)
    text: str  # as shown
    reply_markup: dict[str, Any] | None
    parse_mode: str | None
    edits: int = 0
    history: list[str] = field(default_factory=list)

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback data) of every inline button, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]

    def data_for(self, label_part: str) -> str:
        for label, data in self.buttons:
            if label_part in label:
                return data
        raise KeyError(f"no button with {label_part!r} in {self.buttons}")


class FakeTelegram:
    """The fake server; use as a context manager or call start()/stop()."""

    def __init__(self, token: str = DEFAULT_TOKEN, username: str = "kounen_test_bot") -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.username = username
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1000
        self._next_message_id = 1
        self.messages: list[SentMessage] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers: list[dict[str, Any]] = []  # answerCallbackQuery parameters
        self.commands: list[dict[str, Any]] | None = None
        self.webhook: dict[str, Any] | None = None
        self.offset_confirmed = 0
        self.failures: dict[str, list[tuple[int, int | None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> FakeTelegram:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake Telegram server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- what tests do ------------------------------------------------------------------

    def fail_next(self, method: str, status: int, retry_after: int | None = None, times: int = 1) -> None:
        """The next `times` calls of `method` answer `status` (429 with retry_after, 500, …)."""
        with self._lock:
            self.failures.setdefault(method, []).extend([(status, retry_after)] * times)

    def accept_then_fail(self, method: str, status: int = 502, times: int = 1) -> None:
        """The next `times` calls of `method` take effect (the message is shown) and then answer
        `status`, as a Bot API whose front end fails after the back end accepted the call."""
        with self._lock:
            self.failures.setdefault(method, []).extend([(-status, None)] * times)

    def queue(self, update: dict[str, Any]) -> int:
        """Deliver `update` through getUpdates (a copy of an already queued one is delivered again)."""
        with self._changed:
            self._updates.append(update)
            self._changed.notify_all()
        self._notify()
        return int(update["update_id"])

    def new_update_id(self) -> int:
        with self._lock:
            self._next_update_id += 1
            return self._next_update_id

    def user(self, chat_id: int) -> dict[str, Any]:
        return {"id": chat_id, "is_bot": False, "first_name": "テスト", "language_code": "ja"}

    def chat(self, chat_id: int) -> dict[str, Any]:
        return {"id": chat_id, "type": "private", "first_name": "テスト"}

    def make_message(self, chat_id: int, text: str | None = None, **extra: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._new_message_id(),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": self.user(chat_id),
            **extra,
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
        return {"update_id": self.new_update_id(), "message": message}

    def make_press(self, chat_id: int, message: SentMessage, data: str) -> dict[str, Any]:
        return {
            "update_id": self.new_update_id(),
            "callback_query": {
                "id": f"cq{self.new_update_id()}",
                "from": self.user(chat_id),
                "chat_instance": f"ci{chat_id}",
                "data": data,
                "message": self._message_json(message),
            },
        }

    def message(self, chat_id: int, text: str) -> int:
        return self.queue(self.make_message(chat_id, text))

    def press(self, chat_id: int, message: SentMessage, data: str) -> int:
        return self.queue(self.make_press(chat_id, message, data))

    def sticker(self, chat_id: int) -> int:
        sticker = {
            "file_id": "st1",
            "file_unique_id": "st1u",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
        return self.queue(self.make_message(chat_id, sticker=sticker))

    def photo(self, chat_id: int) -> int:
        photo = [{"file_id": "ph1", "file_unique_id": "ph1u", "width": 90, "height": 90}]
        return self.queue(self.make_message(chat_id, photo=photo))

    def voice(self, chat_id: int) -> int:
        voice = {"file_id": "vo1", "file_unique_id": "vo1u", "duration": 3}
        return self.queue(self.make_message(chat_id, voice=voice))

    def document(self, chat_id: int) -> int:
        document = {"file_id": "do1", "file_unique_id": "do1u", "file_name": "報告.xlsx"}
        return self.queue(self.make_message(chat_id, document=document))

    def edited(self, chat_id: int, text: str) -> int:
        update = self.make_message(chat_id, text)
        message = update.pop("message")
        message["edit_date"] = int(time.time())
        update["edited_message"] = message
        return self.queue(update)

    def chat_messages(self, chat_id: int) -> list[SentMessage]:
        with self._lock:
            return [m for m in self.messages if m.chat_id == chat_id]

    def wait_for(self, predicate: Callable[[], T | None], timeout: float = 15.0, what: str = "") -> T:
        """Wait until `predicate()` is truthy (checked whenever the server records a call)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what or predicate}")
            with self._changed:
                self._changed.wait(min(remaining, 0.05))

    def wait_messages(self, chat_id: int, count: int, timeout: float = 15.0) -> list[SentMessage]:
        """Wait until `chat_id` has received at least `count` messages in all; returns them all."""
        return self.wait_for(
            lambda: m if len(m := self.chat_messages(chat_id)) >= count else None,
            timeout,
            f"{count} messages to chat {chat_id} (have {len(self.chat_messages(chat_id))})",
        )

    def method_calls(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [params for name, params in self.calls if name == method]

    @property
    def pending(self) -> int:
        """Updates queued and not yet confirmed by an offset."""
        with self._lock:
            return sum(1 for u in self._updates if u["update_id"] >= self.offset_confirmed)

    # -- the server side ----------------------------------------------------------------

    def _new_message_id(self) -> int:
        with self._lock:
            self._next_message_id += 1
            return self._next_message_id

    def _notify(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wakeup.set)

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "kounen",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "date": int(time.time()),
            "chat": self.chat(message.chat_id),
            "from": self._bot_user(),
            "text": message.text,
        }
        if message.reply_markup:
            data["reply_markup"] = message.reply_markup
        return data

    async def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        body = await request.body()
        if body:
            if request.headers.get("content-type", "").startswith("application/json"):
                params.update(json.loads(body))
            else:
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        for key in JSON_PARAMS & params.keys():
            if isinstance(params[key], str):
                params[key] = json.loads(params[key])
        return params

    async def _endpoint(self, request: Request) -> JSONResponse:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._wakeup = asyncio.Event()
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        params = await self._params(request)
        with self._changed:
            self.calls.append((method, params))
            self._changed.notify_all()
            queued = self.failures.get(method)
            failure = queued.pop(0) if queued else None
        if failure is not None and failure[0] < 0:
            handler = getattr(self, "_m_" + method)
            await handler(params)
            with self._changed:
                self._changed.notify_all()
            return _error(-failure[0], "Bad Gateway")
        if failure is not None:
            status, retry_after = failure
            if status == 429:
                return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
            return _error(status, "Internal Server Error" if status == 500 else f"Error {status}")
        handler = getattr(self, "_m_" + method, None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        try:
            result = await handler(params)
        except BadHTML as exc:
            return _error(400, str(exc))
        except _ApiError as exc:
            return _error(exc.status, exc.description)
        with self._changed:
            self._changed.notify_all()
        return JSONResponse({"ok": True, "result": result})

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return self._bot_user()

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if self.webhook is not None:
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        deadline = time.monotonic() + min(timeout, 30)
        assert self._wakeup is not None
        while True:
            self._wakeup.clear()
            with self._changed:
                if offset:
                    self.offset_confirmed = max(self.offset_confirmed, offset)
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                    self._changed.notify_all()
                ready = self._updates[:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or (self._server is not None and self._server.should_exit):
                return ready
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    def _check_markup(self, markup: dict[str, Any] | None) -> None:
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode("utf-8")) <= 64:
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise _ApiError(400, "Bad Request: button text is empty")

    def _shown(self, params: dict[str, Any]) -> str:
        raw = str(params.get("text", ""))
        text = plain_text(raw) if params.get("parse_mode") == "HTML" else raw
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        return text

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        text = self._shown(params)
        markup = params.get("reply_markup")
        self._check_markup(markup)
        message = SentMessage(
            message_id=self._new_message_id(),
            chat_id=int(params["chat_id"]),
            html=str(params["text"]),
            text=text,
            reply_markup=markup,
            parse_mode=params.get("parse_mode"),
        )
        with self._changed:
            self.messages.append(message)
        return self._message_json(message)

    def _find(self, params: dict[str, Any]) -> SentMessage:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        with self._lock:
            for message in self.messages:
                if message.chat_id == chat_id and message.message_id == message_id:
                    return message
        raise _ApiError(400, "Bad Request: message to edit not found")

    async def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        message = self._find(params)
        text = self._shown(params)
        markup = params.get("reply_markup")
        self._check_markup(markup)
        if text == message.text and markup == message.reply_markup:
            raise _ApiError(400, "Bad Request: message is not modified")
        with self._changed:
            message.history.append(message.text)
            message.html, message.text, message.reply_markup = str(params["text"]), text, markup
            message.edits += 1
        return self._message_json(message)

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        message = self._find(params)
        markup = params.get("reply_markup")
        self._check_markup(markup)
        with self._changed:
            message.reply_markup = markup
            message.edits += 1
        return self._message_json(message)

    async def _m_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        with self._changed:
            self.answers.append(params)
        return True

    async def _m_setMyCommands(self, params: dict[str, Any]) -> Any:
        commands = params.get("commands") or []
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command["command"]) or not command["description"]:
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands = commands
        return True

    async def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        url = params.get("url") or ""
        self.webhook = (
            {
                "url": url,
                "secret_token": params.get("secret_token"),
                "allowed_updates": params.get("allowed_updates"),
            }
            if url
            else None
        )
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            with self._changed:
                self._updates.clear()
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


def _error(status: int, description: str, retry_after: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return JSONResponse(body, status_code=status)
