"""The session-wide guard in conftest.py: non-loopback connections fail, loopback works."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

BLOCKED = ("10.255.255.1", 9)
MESSAGE = r"^network access outside loopback in tests: "


def test_connect_to_private_address_raises() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        with pytest.raises(RuntimeError, match=MESSAGE + r".*10\.255\.255\.1"):
            sock.connect(BLOCKED)


def test_connect_ex_to_private_address_raises() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        with pytest.raises(RuntimeError, match=MESSAGE + r".*10\.255\.255\.1"):
            sock.connect_ex(BLOCKED)


def test_create_connection_to_private_address_raises() -> None:
    with pytest.raises(RuntimeError, match=MESSAGE + r".*10\.255\.255\.1"):
        socket.create_connection(BLOCKED, timeout=1)


def test_create_connection_to_a_host_name_raises_before_dns() -> None:
    with pytest.raises(RuntimeError, match=MESSAGE + r".*example\.com"):
        socket.create_connection(("example.com", 80), timeout=1)


def test_udp_connect_to_public_address_raises() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(RuntimeError, match=MESSAGE):
        sock.connect(("8.8.8.8", 53))


def test_ipv6_non_loopback_raises() -> None:
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError as exc:
        pytest.skip(f"IPv6 sockets unavailable here: {exc}")
    with sock, pytest.raises(RuntimeError, match=MESSAGE):
        sock.connect(("2001:db8::1", 9, 0, 0))


def _echo_once(server: socket.socket) -> None:
    conn, _ = server.accept()
    with conn:
        conn.sendall(conn.recv(1024))


def _echo_roundtrip(server: socket.socket, connect: object) -> bytes:
    thread = threading.Thread(target=_echo_once, args=(server,), daemon=True)
    thread.start()
    client = connect()  # type: ignore[operator]
    with client:
        client.sendall(b"ping")
        data = client.recv(1024)
    thread.join(timeout=5)
    return data


def test_loopback_server_works() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(5)
        port = server.getsockname()[1]
        assert (
            _echo_roundtrip(server, lambda: socket.create_connection(("127.0.0.1", port), timeout=5))
            == b"ping"
        )


def test_localhost_by_name_works() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(5)
        port = server.getsockname()[1]

        def connect() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(5)
            sock.connect(("localhost", port))
            return sock

        assert _echo_roundtrip(server, connect) == b"ping"


def test_whole_127_network_is_allowed() -> None:
    # A closed port on 127.0.0.2: the guard lets it through, the kernel refuses it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        assert sock.connect_ex(("127.0.0.2", port)) != 0


def test_ipv6_loopback_server_works() -> None:
    try:
        server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError as exc:
        pytest.skip(f"IPv6 sockets unavailable here: {exc}")
    with server:
        try:
            server.bind(("::1", 0))
        except OSError as exc:
            pytest.skip(f"IPv6 loopback unavailable here: {exc}")
        server.listen(1)
        server.settimeout(5)
        port = server.getsockname()[1]
        assert _echo_roundtrip(server, lambda: socket.create_connection(("::1", port), timeout=5)) == b"ping"


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets on this platform")
def test_unix_socket_works(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        server.settimeout(5)

        def connect() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(5)
            sock.connect(path)
            return sock

        assert _echo_roundtrip(server, connect) == b"ping"
