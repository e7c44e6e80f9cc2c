"""A webhook receiver for tests: an HTTP server on 127.0.0.1 that records every POST.

Usage::

    from tests.notify.receiver import WebhookReceiver

    with WebhookReceiver() as hook:              # listens on a free port, in a background thread
        send_to(hook.url + "/slack")             # any path; hook.url is "http://127.0.0.1:<port>"
        [req] = hook.wait_for(1)                 # waits up to 5 s for 1 POST, else AssertionError
        assert req.path == "/slack" and req.json["event"] == "task_failure"
        assert req.headers["content-type"] == "application/json"

Knobs (constructor arguments, also plain attributes that may be changed while it runs):

- ``fail_first=k``: answer the first ``k`` POSTs with ``fail_status`` (default 500), then 200 (to test retries).
- ``hang=True``: record each POST, then never answer it until the receiver stops (to test timeouts).

Every POST is recorded, failed and hung ones too, in arrival order. Other methods get 405 and are not recorded.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One POST: ``path`` (with the query string), ``headers`` (names lower-cased), the raw ``body``, and ``json``
    (the body parsed, None when it is not JSON), and ``status`` (what the receiver answered; None when hung)."""

    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    status: int | None


class WebhookReceiver:
    """Records POSTs to ``http://127.0.0.1:<free port>/<any path>``; a context manager (see the module docstring)."""

    def __init__(self, *, fail_first: int = 0, fail_status: int = 500, hang: bool = False) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.hang = hang
        self._cond = threading.Condition()
        self._received: list[Received] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash; append any path."""
        if self._server is None:
            raise RuntimeError("the receiver is not running: use it in a with block")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[Received]:
        """The POSTs received so far, oldest first (a copy)."""
        with self._cond:
            return list(self._received)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        """Wait until at least ``n`` POSTs have arrived; returns all received so far.

        Raises:
            AssertionError: after ``timeout`` seconds with fewer, listing what arrived.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._received) >= n, timeout):
                got = [(r.path, r.status) for r in self._received]
                raise AssertionError(f"expected {n} POST(s) within {timeout}s, got {len(got)}: {got}")
            return list(self._received)

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver._handle(self, body)

            def do_GET(self) -> None:  # noqa: N802
                self.send_error(405)

            do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the request log
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # releases hung requests
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._cond:
            hang = self.hang
            status = None if hang else self.fail_status if len(self._received) < self.fail_first else 200
            self._received.append(Received(handler.path, headers, body, parsed, status))
            self._cond.notify_all()
        if hang:
            self._stopping.wait()
            handler.close_connection = True
            return
        reply = b"ok" if status == 200 else b"failing on purpose"
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)
