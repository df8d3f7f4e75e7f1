"""Who may use the console: credentials, the signed session cookie, CSRF tokens, login throttling.

* Staff log in with a name and password (argon2 hashes from the settings) or with a token
  (also from the settings).  Nothing else opens the console: not the Telegram webhook
  secret, not any header.
* The session is a cookie signed with itsdangerous (HMAC-SHA1 over a timestamped payload):
  the staff name, a fingerprint of the credential used (changing a password or removing a
  person in the settings ends their sessions), and the CSRF token.  It expires after
  `session_hours` whatever the browser does.  HttpOnly, SameSite=Lax, Secure on request.
* Every POST carries the session's CSRF token in a form field; before login the cookie
  holds an anonymous session with a token, so the login form is protected as well.  A new
  token is issued at login and logout.
* Failed logins slow further tries down (growing delays, shared by every worker through the
  store; see bot.console.shared).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.console.passwords import HASHER
from bot.console.settings import ConsoleSettings

COOKIE_NAME = "kounen_console"
CSRF_FIELD = "csrf_token"
_SALT = "kounen-console-session-v1"
Kind = Literal["password", "token"]


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def _fingerprint(kind: Kind, secret: str) -> str:
    return hashlib.sha256(f"{kind}\x00{secret}".encode("utf-8", "surrogatepass")).hexdigest()[:20]


@dataclass(frozen=True)
class Session:
    """What the cookie says: a CSRF token, and the staff member once logged in."""

    csrf: str
    user: str | None = None
    kind: Kind | None = None
    fingerprint: str | None = None

    @classmethod
    def anonymous(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(32))


@dataclass(frozen=True)
class Staff:
    name: str
    kind: Kind


class Credentials:
    """Checks a password or token against the settings in (roughly) constant time."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self._users = dict(settings.users)
        self._tokens = {name: token.get_secret_value() for name, token in settings.tokens.items()}
        self._hasher = HASHER
        # Verified when the name is unknown, so a wrong name costs as long as a wrong password.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def check_password(self, name: str, password: str) -> Staff | None:
        hashed = self._users.get(name)
        ok: bool
        try:
            ok = self._hasher.verify(hashed or self._dummy, password)
        except (VerificationError, InvalidHashError):
            ok = False
        return Staff(name, "password") if ok and hashed is not None else None

    def check_token(self, token: str) -> Staff | None:
        given = _digest(token)
        found: str | None = None
        for name, secret in self._tokens.items():  # no early exit: every token is compared
            if hmac.compare_digest(given, _digest(secret)) and found is None:
                found = name
        return Staff(found, "token") if found is not None else None

    def fingerprint(self, staff: Staff) -> str | None:
        """A short digest of the staff member's current credential; None when they no longer exist."""
        secret = self._users.get(staff.name) if staff.kind == "password" else self._tokens.get(staff.name)
        return None if secret is None else _fingerprint(staff.kind, secret)

    def still_valid(self, session: Session) -> Staff | None:
        if session.user is None or session.kind is None or session.fingerprint is None:
            return None
        staff = Staff(session.user, session.kind)
        current = self.fingerprint(staff)
        if current is None or not hmac.compare_digest(current, session.fingerprint):
            return None
        return staff


class SessionCodec:
    """Signs and reads the session cookie."""

    def __init__(self, secret_key: str, max_age: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=_SALT)
        self.max_age = max_age

    def dumps(self, session: Session) -> str:
        payload: dict[str, Any] = {"c": session.csrf}
        if session.user is not None:
            payload.update(u=session.user, k=session.kind, f=session.fingerprint)
        return self._serializer.dumps(payload)

    def loads(self, cookie: str | None) -> Session | None:
        """The session in a valid, unexpired cookie; None for anything else."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            payload = self._serializer.loads(cookie, max_age=self.max_age)
        except (BadSignature, ValueError, TypeError):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("c"), str):
            return None
        user, kind, fingerprint = payload.get("u"), payload.get("k"), payload.get("f")
        if user is None:
            return Session(payload["c"])
        if not (isinstance(user, str) and kind in ("password", "token") and isinstance(fingerprint, str)):
            return None
        return Session(payload["c"], user, kind, fingerprint)


def csrf_matches(session: Session | None, submitted: object) -> bool:
    if session is None or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(_digest(session.csrf), _digest(submitted))
