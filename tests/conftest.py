"""Shared fixtures: a no-network guard for the whole session, and one knowledge base.

The guard makes any socket connection to a non-loopback address fail loudly, so a
test (or a library under test) that quietly reaches the internet is caught instead
of passing on a developer machine and hanging in CI.  Loopback (127.0.0.0/8, ::1,
"localhost") and Unix sockets stay allowed, so local servers still work.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from faq import KnowledgeBase, Policy, load_jsonl_kb, load_kb
from faq.text import Analyzer

_LOCAL_NAMES = frozenset({"localhost", "localhost."})
_UNIX = getattr(socket, "AF_UNIX", None)


def _is_loopback_host(host: object) -> bool:
    if isinstance(host, bytes | bytearray):
        host = bytes(host).decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip().strip("[]").split("%", 1)[0].lower()  # drop an IPv6 zone id
    if name in _LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False  # any other host name would need DNS, i.e. the network
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _check(family: object, address: Any) -> None:
    if _UNIX is not None and family == _UNIX:
        return
    host = address[0] if isinstance(address, tuple) and address else address
    if not _is_loopback_host(host):
        raise RuntimeError(f"network access outside loopback in tests: {address}")


@pytest.fixture(autouse=True, scope="session")
def _no_network_outside_loopback() -> Iterator[None]:
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_create_connection = socket.create_connection

    def connect(self: socket.socket, address: Any) -> None:
        _check(self.family, address)
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(self.family, address)
        return original_connect_ex(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        _check(None, address)
        return original_create_connection(address, *args, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(socket.socket, "connect", connect)
    patch.setattr(socket.socket, "connect_ex", connect_ex)
    patch.setattr(socket, "create_connection", create_connection)
    try:
        yield
    finally:
        patch.undo()


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    """The shipped knowledge base, loaded once (Sudachi dictionary included)."""
    return load_kb()


@pytest.fixture(scope="session")
def policy(kb: KnowledgeBase) -> Policy:
    """One policy (and matcher index) over the shipped knowledge base."""
    return Policy(kb)


@pytest.fixture(scope="session")
def analyzer() -> Analyzer:
    """An analyzer with no knowledge base behind it: what any FAQ's text is read as."""
    return Analyzer()


def plain_faq_policy(directory: Path, rows: list[dict[str, str]]) -> Policy:
    """A policy over a plain {id, question, answer} FAQ of any subject, written to `directory`:
    a reading meant for any Japanese FAQ is shown on one that has nothing fitted to ours."""
    path = directory / "kb.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return Policy(load_jsonl_kb(path))


def skip_unless_ci(reason: str) -> NoReturn:
    """Skip with `reason` on a developer machine; with CI=true fail instead, so that a CI run
    without PostgreSQL or the browser cannot go green by skipping whole groups of tests."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    print(reason)
    pytest.skip(reason)


# -- PostgreSQL on 127.0.0.1:5432, shared by the store and the multi-worker webhook tests --------

PG_CANDIDATES = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


def libpq(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string (psycopg.connect), with a short timeout."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    parts: dict[str, object] = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "dbname": parsed.database or "test",
        "user": parsed.username or "postgres",
        "connect_timeout": 3,
    }
    if parsed.password:
        parts["password"] = parsed.password
    return " ".join(f"{k}={v}" for k, v in parts.items())


@pytest.fixture(scope="session")
def pg_server() -> str:
    """A PostgreSQL URL that answers (KOUNEN_TEST_POSTGRES_URL or the local server), or skip with the reason."""
    import psycopg
    from sqlalchemy.engine import make_url

    override = os.environ.get("KOUNEN_TEST_POSTGRES_URL")
    errors = []
    for url in (override,) if override else PG_CANDIDATES:
        try:
            with psycopg.connect(libpq(url)):
                return url
        except psycopg.Error as exc:
            errors.append(
                f"{make_url(url).render_as_string(hide_password=True)}: {' '.join(str(exc).split())}"
            )
    skip_unless_ci("PostgreSQL unreachable, test skipped: " + " | ".join(errors))


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL on a fresh schema of that server, dropped afterwards."""
    import psycopg
    from psycopg import sql

    schema = f"kounen_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq(pg_server), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield f"{pg_server}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(libpq(pg_server), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
