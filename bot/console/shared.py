"""What the console's workers share through the store, so that any number of them behave as one.

* The session key: without KOUNEN_CONSOLE_SECRET_KEY every worker used to make its own, and a
  cookie signed by one bounced off the others.  Now the first worker to start makes one and
  keeps it in the database (`shared_secrets`); the others read it.
* The login throttle: failures are counted in the database (`login_failures`), not per
  process, and slow guessing down with growing delays instead of locking anyone out:
    - per account and client address: `free` failures, then a wait of 1, 2, 4 … seconds
      (at most `max_delay`) before the next try of that account from that address;
    - per client address over all accounts: ten times as many free failures (password
      spraying from one address);
    - a browser that has logged in to an account before carries a signed device cookie; its
      tries are counted for that device instead of the address, so guessing from a shared
      proxy address cannot keep a colleague out of their own account, and nobody else's.
  Keys are HMACs (with a shared secret): no name or address is stored in clear.
* The client address: the peer, or with `trusted_proxies` the last X-Forwarded-For hop that is
  not one of them.  A forged header from anywhere else is ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import secrets
import time
from collections.abc import Callable, Sequence

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from bot.store import Store, StoreError

log = logging.getLogger(__name__)

SESSION_KEY_NAME = "console-session-key"
THROTTLE_KEY_NAME = "console-throttle-key"
DEVICE_COOKIE = "kounen_console_device"
DEVICE_DAYS = 90
CLIENT_FACTOR = 10  # free failures per address, over all accounts, per free failure of one account

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def session_key(store: Store) -> str:
    """The console's session key kept in the database (made by the first worker that asks)."""
    try:
        return store.shared_secret(SESSION_KEY_NAME, lambda: secrets.token_urlsafe(48))
    except StoreError as exc:
        log.warning("console session key not shared (%s): sessions end when this worker restarts", exc)
        return secrets.token_urlsafe(48)


def parse_networks(values: Sequence[str]) -> list[Network]:
    """Addresses or networks (127.0.0.1, 10.0.0.0/8, ::1); ValueError names the bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value.strip()!r} is not an IP address or network") from None
    return networks


def _inside(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: Request, trusted: Sequence[Network]) -> str:
    """Who is asking: the peer, or behind a trusted proxy the address it forwarded for."""
    peer = request.client.host if request.client else "unknown"
    if not trusted or not _inside(peer, trusted):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):  # the proxy appends what it saw: read from the right
        if _inside(hop, trusted):
            continue
        try:
            return str(ipaddress.ip_address(hop))
        except ValueError:
            return peer
    return peer


class DeviceCookies:
    """A signed, long-lived cookie saying "this browser has logged in to <name> before"."""

    def __init__(self, secret_key: str, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="kounen-console-device-v1")
        self._secure = secure

    def device(self, request: Request, username: str) -> str | None:
        """The device id for `username` in the request's cookie, if it is valid."""
        cookie = request.cookies.get(DEVICE_COOKIE, "")
        if not cookie or len(cookie) > 1024:
            return None
        try:
            payload = self._serializer.loads(cookie, max_age=DEVICE_DAYS * 86400)
        except (BadSignature, ValueError, TypeError):
            return None
        if (
            not isinstance(payload, dict)
            or payload.get("u") != username
            or not isinstance(payload.get("d"), str)
        ):
            return None
        return str(payload["d"])

    def remember(self, response: Response, path: str, username: str) -> None:
        value = self._serializer.dumps({"u": username, "d": secrets.token_urlsafe(16)})
        response.set_cookie(
            DEVICE_COOKIE,
            value,
            max_age=DEVICE_DAYS * 86400,
            path=path,
            httponly=True,
            samesite="lax",
            secure=self._secure,
        )


class SharedLoginThrottle:
    """Growing delays per account and client (or device), kept in the store (see the module)."""

    def __init__(
        self,
        store: Store,
        *,
        free: int,
        max_delay: float,
        forget_after: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.free, self.max_delay, self.forget_after = free, max_delay, forget_after
        self._clock = clock
        self._key: bytes | None = None

    def _digest(self, *parts: str) -> str:
        if self._key is None:
            self._key = self.store.shared_secret(
                THROTTLE_KEY_NAME, lambda: secrets.token_urlsafe(32)
            ).encode()
        message = "\x00".join(parts).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:64]

    def _keys(self, username: str, client: str, device: str | None) -> list[tuple[str, int]]:
        account = (
            self._digest("device", username, device)
            if device is not None
            else self._digest("account", username.lower(), client)
        )
        keys = [(account, self.free)]
        if device is None:  # a known device is not slowed by what its address did
            keys.append((self._digest("client", client), self.free * CLIENT_FACTOR))
        return keys

    def delay(self, failures: int, free: int) -> float:
        """Seconds to wait after `failures` failures: none within `free`, then 1, 2, 4 … up to max."""
        if failures < free:
            return 0.0
        return float(min(self.max_delay, 2 ** min(failures - free, 32)))

    def retry_after(self, username: str, client: str, device: str | None = None) -> int:
        """Seconds until this account may be tried from this client; 0: now."""
        keys = self._keys(username, client, device)
        known = self.store.login_failures([key for key, _ in keys])
        now, wait = self._clock(), 0.0
        for key, free in keys:
            failures, last = known.get(key, (0, 0.0))
            if last < now - self.forget_after:
                continue
            wait = max(wait, last + self.delay(failures, free) - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str, client: str, device: str | None = None) -> None:
        now = self._clock()
        keys = [key for key, _ in self._keys(username, client, device)]
        self.store.record_login_failure(keys, now, now - self.forget_after)

    def succeeded(self, username: str, client: str, device: str | None = None) -> None:
        """Forget this account's failures from this client (not the address's: see the module)."""
        self.store.clear_login_failures([self._keys(username, client, device)[0][0]])
