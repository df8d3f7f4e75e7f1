"""Settings of the call-center console, from the environment (prefix `KOUNEN_CONSOLE_`) or `.env`.

    KOUNEN_CONSOLE_USERS            staff who log in with a password: a JSON object
                                    {"name": "<argon2 hash>"}; make a hash with
                                    `python -m bot.console.hash_password` (put the value in
                                    single quotes in a shell or .env: the hash contains `$`)
    KOUNEN_CONSOLE_TOKENS           staff (or a shared terminal) who log in with a token: a JSON
                                    object {"name": "<token of at least 32 characters>"};
                                    make one with `python -m bot.console.hash_password --token`
    KOUNEN_CONSOLE_SECRET_KEY       key that signs the session cookie (at least 32 characters).
                                    Unset: a random key per process, so staff log in again after
                                    every restart and several worker processes cannot share sessions
    KOUNEN_CONSOLE_SESSION_HOURS    how long a login lasts (default 10: one shift)
    KOUNEN_CONSOLE_COOKIE_SECURE    send the session cookie over HTTPS only (default false: the
                                    console is served on http://127.0.0.1; set true behind TLS)
    KOUNEN_CONSOLE_LOGIN_ATTEMPTS   failed logins allowed per client within the window (default 5)
    KOUNEN_CONSOLE_LOGIN_WINDOW_SECONDS   that window (default 300)

The console is a separate credential domain: none of these values may equal the Telegram
webhook secret (`reuses_secret` lets the server check that at start-up), and nothing in
the console reads the webhook's header or settings.

An empty variable counts as unset.  `load_console_settings` turns a bad value into
`ConsoleSettingsError` with one line naming the variable.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError

from bot.console.passwords import HASHER
from bot.settings import validation_message

ENV_PREFIX = "KOUNEN_CONSOLE_"
MIN_TOKEN = 32
MIN_SECRET_KEY = 32
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")


class ConsoleSettingsError(Exception):
    """The console settings cannot be used; the message is one line for the operator."""


def _check_name(name: str) -> str:
    if not _NAME.match(name) or name != name.strip():
        raise ValueError(f"staff name {name!r}: use 1-64 printable characters without surrounding spaces")
    return name


def is_argon2_hash(value: str) -> bool:
    try:
        extract_parameters(value)
    except (InvalidHashError, ValueError):
        return False
    return value.startswith("$argon2")


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
    )

    users: dict[str, str] = Field(default_factory=dict)
    tokens: dict[str, SecretStr] = Field(default_factory=dict)
    secret_key: SecretStr | None = None
    session_hours: float = Field(default=10.0, gt=0, le=24 * 31)
    cookie_secure: bool = False
    login_attempts: int = Field(default=5, ge=1, le=1000)
    login_window_seconds: int = Field(default=300, ge=1, le=24 * 3600)
    login_max_delay_seconds: int = Field(default=60, ge=1, le=3600)
    trusted_proxies: str = ""  # comma-separated addresses or networks whose X-Forwarded-For is read

    @field_validator("users")
    @classmethod
    def _argon2_hashes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, hashed in value.items():
            _check_name(name)
            if not is_argon2_hash(hashed.strip()):
                raise ValueError(
                    f"the password of {name!r} is not an argon2 hash; "
                    "make one with `python -m bot.console.hash_password`"
                )
        return {name: hashed.strip() for name, hashed in value.items()}

    @field_validator("tokens")
    @classmethod
    def _long_tokens(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        seen: set[str] = set()
        for name, token in value.items():
            _check_name(name)
            secret = token.get_secret_value()
            if len(secret) < MIN_TOKEN:
                raise ValueError(
                    f"the token of {name!r} is too short; use at least {MIN_TOKEN} random characters "
                    "(`python -m bot.console.hash_password --token`)"
                )
            if secret in seen:
                raise ValueError("two staff share one token; give each their own")
            seen.add(secret)
        return value

    @field_validator("secret_key")
    @classmethod
    def _long_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY:
            raise ValueError(f"too short; use at least {MIN_SECRET_KEY} random characters")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        from bot.console.shared import parse_networks

        parse_networks([part for part in value.split(",") if part.strip()])
        return value

    @property
    def trusted_networks(self) -> list[Any]:
        from bot.console.shared import parse_networks

        return parse_networks([part for part in self.trusted_proxies.split(",") if part.strip()])

    @property
    def has_credentials(self) -> bool:
        """False: nobody can log in (the login page says which variable to set)."""
        return bool(self.users or self.tokens)

    @property
    def session_seconds(self) -> int:
        return int(self.session_hours * 3600)

    def reuses_secret(self, value: str) -> bool:
        """Whether `value` (e.g. the webhook secret) is also a console credential or key.

        The server calls this at start-up and refuses to run when it is true, so the
        webhook secret can never open the console.
        """
        if not value:
            return False
        digest = hashlib.sha256(value.encode()).digest()
        secrets = [t.get_secret_value() for t in self.tokens.values()]
        if self.secret_key is not None:
            secrets.append(self.secret_key.get_secret_value())
        if any(hmac.compare_digest(digest, hashlib.sha256(s.encode()).digest()) for s in secrets):
            return True
        hasher = HASHER
        for hashed in self.users.values():
            try:
                if hasher.verify(hashed, value):
                    return True
            except (VerificationError, InvalidHashError):
                continue
        return False


def load_console_settings(**overrides: Any) -> ConsoleSettings:
    """Settings from the environment and `.env`; keyword arguments that are not None win."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return ConsoleSettings(**given)
    except ValidationError as exc:
        raise ConsoleSettingsError(validation_message(exc, ENV_PREFIX, {})) from None
    except _SourceError as exc:  # a value that is not JSON where JSON is expected
        cause = exc.__cause__
        detail = f": {cause}" if cause is not None else ""
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"{ENV_PREFIX}{field.group(1).upper()}" if field else "a KOUNEN_CONSOLE_ variable"
        raise ConsoleSettingsError(
            f'invalid setting {name}: not valid JSON{detail} (expected e.g. {{"name": "value"}})'
        ) from None
    except OSError as exc:
        raise ConsoleSettingsError(f"cannot read settings: {exc}") from None
