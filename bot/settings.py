"""Run-time settings from the environment (prefix `KOUNEN_`) or a `.env` file in the working directory.

    KOUNEN_DATABASE_URL  any SQLAlchemy URL, e.g. postgresql+psycopg://user@host:5432/db;
                         default: a SQLite file kounen.db in $XDG_DATA_HOME/kounen
                         (~/.local/share/kounen), created on first use
    KOUNEN_HASH_SALT     key for the pseudonyms of user ids in the logs.  The default is a
                         public constant: set your own secret value in production, and keep
                         it (changing it makes old and new log rows of one user unrelated)
    KOUNEN_LOG_LEVEL     DEBUG, INFO, WARNING (default), ERROR or CRITICAL

An empty variable counts as unset.  A bad value raises `SettingsError`, whose
message is one line naming the variable.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "KOUNEN_"
# Public on purpose: good enough for a laptop, to be replaced by a secret in production.
DEFAULT_HASH_SALT = "kounen-default-salt-change-me-in-production"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


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

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

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
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "?"
        source = f"--{name.replace('_', '-')}" if name in given else f"{ENV_PREFIX}{name.upper()}"
        message = str(error["msg"]).removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise SettingsError(f"invalid setting {source}: {message}{more}") from None
    except OSError as exc:  # an unreadable .env file
        raise SettingsError(f"cannot read settings: {exc}") from None


def configure_logging(settings: Settings) -> None:
    """Log records at the configured level go to stderr, one line each."""
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="kounen: %(levelname)s %(name)s: %(message)s",
    )
