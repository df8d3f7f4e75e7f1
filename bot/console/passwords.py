"""Make the credential values the console settings hold."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher

# argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane) rather than argon2-cffi's
# 64 MiB default: each login check allocates the memory cost, and a bot worker must stay under
# 300 MB resident.  Verifying a hash uses the parameters stored in that hash.
HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


def hash_password(password: str) -> str:
    """The argon2id hash of `password`, for KOUNEN_CONSOLE_USERS."""
    if not password:
        raise ValueError("empty password")
    return HASHER.hash(password)


def new_token() -> str:
    """A random token (43 URL-safe characters) for KOUNEN_CONSOLE_TOKENS."""
    return secrets.token_urlsafe(32)
