"""The probes and metrics endpoint of a kubedag process (the controller, the local scheduler): a small HTTP server
in a daemon thread serving

* ``GET /metrics``: the Prometheus metrics of :mod:`kubedag.app.metrics` (``prometheus_client``'s default
  registry, in the text format, or OpenMetrics when the scraper asks for it);
* ``GET /healthz``: liveness, 200 ``ok`` while every liveness check passes (e.g. the controller's event loop
  answers), else 503 with the failing check's one-line reason;
* ``GET /readyz``: readiness, 200 ``ok`` once every readiness check passes (the controller: informer caches
  synced and the metadata DB reachable), else 503 with a one-line reason (``not ready: <reason>``).

Kubernetes' own components serve the same paths (kube-apiserver's ``/livez`` and ``/readyz``,
controller-runtime's health probes). A check is a callable returning None when it passes, else the reason; it
runs in the request's thread, so it must be thread-safe (a check that raises fails with the exception's type).
Until :meth:`ProbeServer.set_checks` is called the process is alive but not ready ("starting").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

log = logging.getLogger("kubedag.probes")

Check = Callable[[], "str | None"]
"""A probe check: None when it passes, else a one-line reason."""


def run_checks(checks: Sequence[Check]) -> str | None:
    """The reason of the first failing check (an exception counts as a failure), None when all pass."""
    for check in checks:
        try:
            reason = check()
        except Exception as exc:  # noqa: BLE001 - a probe reports, it never crashes the server
            reason = f"{getattr(check, '__name__', 'check')} raised {type(exc).__name__}"
        if reason:
            return " ".join(str(reason).split())[:500]
    return None


class ProbeServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` (``port`` 0: any free port, see :attr:`port`),
    served from a daemon thread once :meth:`start` is called; :meth:`stop` closes it. ``registry``: the
    Prometheus registry served (default: the process's)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, registry: Any = REGISTRY) -> None:
        self.host, self.registry = host, registry
        self.ready: list[Check] = [lambda: "starting"]
        self.alive: list[Check] = []
        server = ThreadingHTTPServer((host, port), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port bound."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port`` of the server (127.0.0.1 when bound to every address)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def set_checks(self, *, ready: Sequence[Check] = (), alive: Sequence[Check] = ()) -> None:
        """Replace the readiness and liveness checks (the process is ready once all of ``ready`` pass)."""
        self.ready, self.alive = list(ready), list(alive)

    def start(self) -> ProbeServer:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="kubedag-probes", daemon=True)
        self._thread.start()
        log.info("metrics and probes on %s (/metrics, /healthz, /readyz)", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ProbeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(probes: ProbeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "kubedag-probes"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept"))
                self._send(200, encoder(probes.registry), content_type)
            elif path in ("/healthz", "/livez"):
                reason = run_checks(probes.alive)
                self._text(503, f"not alive: {reason}") if reason else self._text(200, "ok")
            elif path == "/readyz":
                reason = run_checks(probes.ready)
                self._text(503, f"not ready: {reason}") if reason else self._text(200, "ok")
            else:
                self._text(404, "not found: try /metrics, /healthz or /readyz")

        def _text(self, code: int, text: str) -> None:
            self._send(code, (text + "\n").encode(), "text/plain; charset=utf-8")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            log.debug("%s " + format, self.address_string(), *args)

    return Handler


__all__ = ["Check", "ProbeServer", "run_checks"]
