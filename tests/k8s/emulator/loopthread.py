"""An asyncio service in its own daemon thread, started and stopped from synchronous test code.

The API emulator and the fake kubelet both run this way: :meth:`LoopThread.start` blocks until the
service says it is ready (or re-raises why it could not start), :meth:`LoopThread.stop` asks it to
finish and joins the thread.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, TypeVar

Self = TypeVar('Self', bound='LoopThread')


class LoopThread:
    """Base class: subclasses implement :meth:`_serve`, which calls ``self._ready.set()`` once serving
    and returns after ``self._stop`` is set. ``thread_name`` and ``description`` name it in errors."""

    thread_name = 'asyncio-service'
    description = 'The service'

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def start(self: Self) -> Self:
        """Start the thread; return once the service is ready. RuntimeError if it fails or takes over 30 s."""
        self._thread = threading.Thread(target=self._thread_main, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f'{self.description} did not start in 30s')
        if self._failure is not None:
            raise RuntimeError(f'{self.description} failed to start') from self._failure
        return self

    def stop(self) -> None:
        """Ask the service to stop and join its thread (RuntimeError if it is still alive after 15 s)."""
        if self._loop is not None and self._stop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(15)
            if self._thread.is_alive():
                raise RuntimeError(f'{self.description} thread did not stop')

    def __enter__(self: Self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # reported to start() if it happens before readiness
            self._failure = e
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self._serve()

    async def _serve(self) -> None:
        raise NotImplementedError
