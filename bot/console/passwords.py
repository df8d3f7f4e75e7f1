"""Make the credential values the console settings hold."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher


def hash_password(password: str) -> str:
    """The argon2id hash of `password` (argon2-cffi defaults), for KOUNEN_CONSOLE_USERS."""
    if not password:
        raise ValueError("empty password")
    return PasswordHasher().hash(password)


def new_token() -> str:
    """A random token (43 URL-safe characters) for KOUNEN_CONSOLE_TOKENS."""
    return secrets.token_urlsafe(32)
