"""Run-time settings from the environment (prefix `KOUNEN_`) or a `.env` file in the working directory.

    KOUNEN_DATABASE_URL  any SQLAlchemy URL, e.g. postgresql+psycopg://user@host:5432/db;
                         default: a SQLite file kounen.db in $XDG_DATA_HOME/kounen
                         (~/.local/share/kounen), created on first use
    KOUNEN_HASH_SALT     key for the pseudonyms of user ids in the logs.  The default is a
                         public constant: set your own secret value in production, and keep
                         it (changing it makes old and new log rows of one user unrelated)
    KOUNEN_LOG_LEVEL     DEBUG, INFO, WARNING (default), ERROR or CRITICAL

Telegram (`kounen bot`, `kounen serve`):

    KOUNEN_TELEGRAM_TOKEN          the bot token from @BotFather (123456789:AA…); never logged
    KOUNEN_TELEGRAM_API_BASE_URL   Bot API base, the token is appended (default
                                   https://api.telegram.org/bot; a self-hosted Bot API server,
                                   or the tests' fake server)
    KOUNEN_WEBHOOK_URL             public HTTPS URL Telegram posts updates to (`kounen serve`),
                                   ending in /telegram/webhook behind your proxy
    KOUNEN_WEBHOOK_SECRET          secret token Telegram sends in every webhook request
                                   (1-256 characters A-Z a-z 0-9 _ -); required by `kounen serve`
    KOUNEN_SET_WEBHOOK_ON_START    true: `kounen serve` registers KOUNEN_WEBHOOK_URL on start
    KOUNEN_LISTEN_HOST / _PORT     where `kounen serve` listens (127.0.0.1:8080)
    KOUNEN_WORKERS                 `kounen serve` worker processes (1)

An empty variable counts as unset.  A bad value raises `SettingsError`, whose
message is one line naming the variable.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "KOUNEN_"
# Public on purpose: good enough for a laptop, to be replaced by a secret in production.
DEFAULT_HASH_SALT = "kounen-default-salt-change-me-in-production"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
DEFAULT_TELEGRAM_API_BASE_URL = "https://api.telegram.org/bot"
_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$")
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
REDACTED = "<redacted>"


class SettingsError(Exception):
    """The settings cannot be used; the message is one line for the user."""


def data_dir() -> Path:
    """Where kounen keeps its files by default: $XDG_DATA_HOME/kounen or ~/.local/share/kounen."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "kounen"


def default_database_url() -> str:
    return f"sqlite:///{(data_dir() / 'kounen.db').as_posix()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
    )

    database_url: str = Field(default_factory=default_database_url)
    hash_salt: SecretStr = SecretStr(DEFAULT_HASH_SALT)
    log_level: LogLevel = "WARNING"

    telegram_token: SecretStr | None = None
    telegram_api_base_url: str = DEFAULT_TELEGRAM_API_BASE_URL
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    set_webhook_on_start: bool = False
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # Messages per second each process may send (Telegram's overall limit is about 30 per bot);
    # 0: no limiter (429s are still retried after their retry_after).
    telegram_send_rate: float = Field(default=30.0, ge=0, le=1000)

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        value = value.strip()
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL; expected e.g. sqlite:///path/to/kounen.db "
                "or postgresql+psycopg://user@host:5432/dbname"
            ) from None
        return value

    @field_validator("hash_salt")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 8:
            raise ValueError("too short; use at least 8 characters (a long random string is best)")
        return value

    @field_validator("telegram_token", mode="before")
    @classmethod
    def _token_shape(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and not _TOKEN.match(text.strip()):
            # The value itself is never repeated: it may be a real token pasted wrongly.
            raise ValueError(
                "malformed bot token: expected the token @BotFather gave you, "
                "digits, a colon and 35 letters (123456789:AAH…)"
            )
        return text.strip() if isinstance(text, str) else value

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _secret_shape(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and not _WEBHOOK_SECRET.match(text.strip()):
            raise ValueError("use 1-256 characters A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return text.strip() if isinstance(text, str) else value

    @field_validator("telegram_api_base_url", "webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value

    @field_validator("listen_host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        if not value or any(c.isspace() for c in value):
            raise ValueError("expected a host name or address, e.g. 127.0.0.1 or 0.0.0.0")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    def require_token(self) -> str:
        """The bot token, or `SettingsError` saying how to get one."""
        if self.telegram_token is None:
            raise SettingsError(
                f"{ENV_PREFIX}TELEGRAM_TOKEN is not set: create a bot with @BotFather in Telegram "
                f"and put its token in {ENV_PREFIX}TELEGRAM_TOKEN (environment or .env)"
            )
        return self.telegram_token.get_secret_value()

    def require_webhook_secret(self) -> str:
        if self.webhook_secret is None:
            raise SettingsError(
                f"{ENV_PREFIX}WEBHOOK_SECRET is not set: webhook mode needs a secret token "
                "(1-256 characters A-Z a-z 0-9 _ -), e.g. the output of "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return self.webhook_secret.get_secret_value()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line."""
        values = [self.telegram_token, self.webhook_secret]
        if self.hash_salt.get_secret_value() != DEFAULT_HASH_SALT:
            values.append(self.hash_salt)
        return tuple(v.get_secret_value() for v in values if v is not None)

    @property
    def uses_default_database(self) -> bool:
        return self.database_url == default_database_url()

    def prepare_data_dir(self) -> None:
        """Create the default data directory (only when the default database is used)."""
        if self.uses_default_database:
            try:
                data_dir().mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SettingsError(
                    f"cannot create the data directory {data_dir()}: {exc.strerror}"
                ) from None


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`; keyword arguments that are not None win."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise SettingsError(validation_message(exc, ENV_PREFIX, given)) from None
    except OSError as exc:  # an unreadable .env file
        raise SettingsError(f"cannot read settings: {exc}") from None


def validation_message(exc: ValidationError, prefix: str, given: Mapping[str, Any]) -> str:
    """One line naming the setting (the option when it came from the command line) and the problem."""
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "?"
    source = f"--{name.replace('_', '-')}" if name in given else f"{prefix}{name.upper()}"
    message = str(error["msg"]).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid setting {source}: {message}{more}"


def configure_logging(settings: Settings) -> None:
    """Log records at the configured level go to stderr, one line each; secrets redacted."""
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="kounen: %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL at INFO, and a Bot API URL contains the token.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    redact_in_logs(settings.secrets)


class RedactingFormatter(logging.Formatter):
    """Wraps a handler's formatter and replaces secrets in the finished line (tracebacks included)."""

    def __init__(self, inner: logging.Formatter | None, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def redact_in_logs(secrets: Iterable[str], logger: logging.Logger | None = None) -> None:
    """Make every handler of `logger` (default: the root logger) redact `secrets`."""
    wanted = tuple(s for s in secrets if s)
    if not wanted:
        return
    for handler in (logger or logging.getLogger()).handlers:
        current = handler.formatter
        if isinstance(current, RedactingFormatter):
            current.secrets = tuple(dict.fromkeys((*current.secrets, *wanted)))
        else:
            handler.setFormatter(RedactingFormatter(current, wanted))
