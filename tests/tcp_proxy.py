"""A TCP proxy on 127.0.0.1 for tests and benchmarks: cut a connection on purpose, count round trips."""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    """127.0.0.1:<port> → `target`.  `cut()` drops every connection and refuses new ones
    (accepted and closed at once) until `restore()`.  `round_trips` counts the times a client
    spoke again after the server had answered: the round trips of a database protocol."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.up = True
        self._sockets: set[socket.socket] = set()
        self.round_trips = 0
        self._last: dict[socket.socket, str] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            self._last[client] = "server"
            for source, sink, side in ((client, upstream, "client"), (upstream, client, "server")):
                threading.Thread(target=self._pump, args=(source, sink, side, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, side: str, client: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    if side == "client" and self._last.get(client) == "server":
                        self.round_trips += 1
                    self._last[client] = side
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        self.up = False
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()
