"""Ordering and retries: one chat's updates one at a time, and Bot API calls retried.

Bot API calls go through `RetryingRateLimiter`: AIORateLimiter (group limits, retries on 429)
plus retries with exponential backoff on network errors and 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)


class ChatOrder:
    """One chat's updates one at a time, in arrival order; different chats concurrently.

    Within a process.  Across processes the conversation row, locked from the turn's read to
    its commit, and the outbox rows, locked while they are sent, keep one chat's turns and
    messages apart and in order (see `Store.run_update` and `OutboxBatch`).
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def __call__(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._locks[key]

    @property
    def idle(self) -> bool:
        return not self._locks


class RetryingRateLimiter(AIORateLimiter):
    """AIORateLimiter (flood limits, up to `max_retries` retries after a 429) plus retries with
    exponential backoff on network errors and server errors (5xx), for every Bot API call
    except getUpdates (the updater retries that one itself)."""

    def __init__(
        self, *, max_retries: int = 3, network_retries: int = 3, backoff: float = 0.5, rate: float = 30.0
    ) -> None:
        # rate 0: no overall limit (group limits stay; a 429 is still retried after its retry_after).
        super().__init__(
            max_retries=max_retries,
            overall_max_rate=rate,
            overall_time_period=1,
        )
        self.network_retries = network_retries
        self.backoff = backoff
        # Called with retry_after (seconds or a timedelta) on every 429, before the wait.
        self.on_retry_after: Callable[[Any], Awaitable[None]] | None = None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        delay = self.backoff
        on_retry_after = self.on_retry_after

        async def call(*call_args: Any, **call_kwargs: Any) -> bool | dict[str, Any] | list[dict[str, Any]]:
            try:
                return await callback(*call_args, **call_kwargs)
            except RetryAfter as exc:  # tell the other workers too, then let the limiter wait
                if on_retry_after is not None:
                    await on_retry_after(exc.retry_after)
                raise

        for attempt in range(self.network_retries + 1):
            try:
                return await super().process_request(call, args, kwargs, endpoint, data, rate_limit_args)
            except BadRequest:
                raise  # a NetworkError subclass, but retrying cannot fix the request
            except NetworkError as exc:
                if attempt == self.network_retries:
                    raise
                log.info("Bot API %s failed (%s); retry %d in %.1f s", endpoint, exc, attempt + 1, delay)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover
