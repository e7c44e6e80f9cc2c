"""Fixtures of the UI tests: a headless Chromium driven by Playwright (Debian's ``chromium`` package at
``/usr/bin/chromium``; a browser download does not work on these machines), a uvicorn server in a thread, and
the artifacts directory for screenshots (``$KUBEDAG_TEST_ARTIFACTS`` or ``tests/ui/artifacts``)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("KUBEDAG_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def artifacts_dir() -> Path:
    """Where screenshots go: ``$KUBEDAG_TEST_ARTIFACTS/ui`` or ``tests/ui/artifacts`` (git-ignored)."""
    root = os.environ.get("KUBEDAG_TEST_ARTIFACTS")
    path = Path(root) / "ui" if root else Path(__file__).parent / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium; skips with the reason when Playwright or the browser is missing. Module-scoped:
    Playwright's sync API keeps an event loop running in the main thread while it is open, and later tests
    (``asyncio.run`` in tests/unit_k8s) must not find it running."""
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional: only the browser tests need it
    except ImportError:
        pytest.skip("the 'playwright' Python package is not installed (pip install -e '.[test]')")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh 1280x800 page (the smaller of the two sizes the UI must be correct at)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    context.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A uvicorn server of ``app`` on 127.0.0.1 in a daemon thread; ``url`` is its base URL."""

    def __init__(self, app: Any) -> None:
        import uvicorn  # noqa: PLC0415 - start-up time: only the browser tests serve
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the UI server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)
