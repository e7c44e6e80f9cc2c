"""A Unix-socket proxy in front of the test PostgreSQL server that a test can cut (the DB becomes unreachable:
connecting fails, open connections drop) and restore, as a network partition between kubedag and its DB."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from pathlib import Path

import sqlalchemy as sa


class DbProxy:
    """``with DbProxy(url) as proxy:`` serves the server of ``url`` (a ``?host=<socket dir>`` PostgreSQL URL)
    at :attr:`url`; :meth:`cut` makes it unreachable, :meth:`restore` reachable again."""

    def __init__(self, url: str) -> None:
        parsed = sa.make_url(url)
        port = parsed.port or 5432
        self.target = os.path.join(parsed.query["host"], f".s.PGSQL.{port}")
        self.dir = tempfile.mkdtemp(prefix="kubedag-dbproxy-")
        self.path = os.path.join(self.dir, f".s.PGSQL.{port}")
        self.url = parsed.update_query_dict({"host": self.dir}).render_as_string(hide_password=False)
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> DbProxy:
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
        for thread in self._threads:
            thread.join(timeout=5)
        Path(self.dir).rmdir()

    def restore(self) -> None:
        """Accept connections again."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(32)
        self._listener = listener
        self._spawn(self._accept, listener)

    def cut(self) -> None:
        """Stop listening (new connections fail) and drop every open connection."""
        with self._lock:
            listener, self._listener = self._listener, None
            opened, self._open = self._open, []
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)
            listener.close()
            os.unlink(self.path)
        for sock in opened:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _spawn(self, target, *args) -> None:  # noqa: ANN001
        thread = threading.Thread(target=target, args=args, name="dbproxy", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(self.target)
            with self._lock:
                self._open += [client, server]
            self._spawn(self._pump, client, server)
            self._spawn(self._pump, server, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
