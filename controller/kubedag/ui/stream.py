"""The task instance panel's live log: a server-sent events stream (``text/event-stream``) of one try's log.

``GET {prefix}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log/stream?try_number=N`` is authorised as the polled
log view (``get pods/log`` in the DAG's namespace) and reads the log through the same
:meth:`kubedag.app.catalog.Catalog.log`, so every line it sends has been masked as the polled view masks it:
locally the live log file of the try (then the copy archived in its row), on a cluster the pod's log (then the
archived copy). Every :data:`TICK_SECONDS` it reads the try's state, then its log, and sends what is new:

* ``reset`` ``{"text": ...}``: the whole log so far (the first event, and whenever the log is no longer an
  extension of what was sent, e.g. the archived copy differs from the live one);
* ``append`` ``{"text": ...}``: the lines added since. While the try runs only complete lines are sent (a line is
  sent once its newline is written), so a secret half written at the end of the file is never sent unmasked;
* ``problem`` ``{"message": ...}``: the log cannot be read now ("log unavailable: ..."), sent when it changes;
* ``end`` ``{"state": ...}``: the try has ended; the log sent before it is the final one (read after the state
  said so: the archived copy when there is one). The stream then closes;
* ``timeout`` ``{"seconds": ...}``: :data:`MAX_SECONDS` have passed; the page falls back to the polled view.

A comment line is sent every :data:`KEEPALIVE_SECONDS` without news (proxies close idle connections). The stream
also ends when the client disconnects. Each read runs in the thread pool (the catalog is synchronous), so a
stream holds no thread between reads. A cluster's pod log is read whole at each tick (the Kubernetes API has no
byte offset to read from; ``follow`` would hold a thread and bypass the catalog's masking), as the polled view
did every 2 seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from kubedag.app.catalog import Catalog
from kubedag.app.operations import NotFound, OperationError
from kubedag.ui.web import Ui

TICK_SECONDS = 1.0
"""How often a stream reads the try's state and log."""
MAX_SECONDS = 1800.0
"""A stream ends after this long (30 minutes) with a ``timeout`` event; the page then polls every 2 seconds."""
KEEPALIVE_SECONDS = 15.0
"""A comment line is sent after this long without an event."""
LIVE_TRY_STATES = frozenset({"running", "queued", "scheduled"})
"""The states of a try whose log may still grow (``None``, no state yet, is live too)."""


def is_live(state: str | None) -> bool:
    """Whether a try in ``state`` may still write to its log."""
    return state is None or str(state) in LIVE_TRY_STATES


def event(name: str, data: dict[str, object]) -> str:
    """One server-sent event: ``event: <name>`` and its data as one line of JSON (newlines escaped)."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


@dataclass
class LogFollower:
    """What was sent of one log (``sent``: ``None`` before the first event); :meth:`step` turns the log as read
    now into the events that bring the page up to date."""

    sent: str | None = None

    def step(self, text: str, finished: bool) -> list[str]:
        """The events for the log ``text`` (masked, whole) read now; ``finished``: the try has ended, so the last
        line is sent even without its newline. Returns ``[]`` when nothing is new."""
        shown = text if finished else text[:text.rfind("\n") + 1]
        if self.sent is not None and shown == self.sent:
            return []
        if self.sent is None or not shown.startswith(self.sent):
            self.sent = shown
            return [event("reset", {"text": shown})]
        new, self.sent = shown[len(self.sent):], shown
        return [event("append", {"text": new})]


@dataclass(frozen=True)
class Reading:
    """One tick's read: the try's state, then its log (``text`` ``None`` with ``problem`` when unreadable)."""

    state: str | None
    finished: bool
    text: str | None
    problem: str | None = None


def read_try(catalog: Catalog, dag_id: str, run_id: str, task_id: str, try_number: int) -> Reading:
    """The try's state, then its log (in that order: a log read after the state said "ended" is the final one).
    Raises NotFound when the run, task or try is gone."""
    current = next((t for t in catalog.tries(dag_id, run_id, task_id) if t.try_number == try_number), None)
    if current is None:
        raise NotFound(f"no try {try_number} of task {task_id!r} in run {run_id!r} of DAG {dag_id!r}")
    finished = not is_live(current.state)
    try:
        return Reading(current.state, finished, catalog.log(dag_id, run_id, task_id, try_number))
    except NotFound:
        raise
    except OperationError as exc:
        return Reading(current.state, finished, None, str(exc))


async def follow(request: Request, catalog: Catalog, dag_id: str, run_id: str, task_id: str, try_number: int,
                 *, tick: float | None = None, limit: float | None = None) -> AsyncIterator[str]:
    """The events of one try's log until it ends, the client goes, or ``limit`` seconds pass (see the module;
    ``tick``/``limit``: seconds, default :data:`TICK_SECONDS`/:data:`MAX_SECONDS`)."""
    tick = TICK_SECONDS if tick is None else tick
    limit = MAX_SECONDS if limit is None else limit
    follower, problem = LogFollower(), None
    start = quiet = time.monotonic()
    while True:
        if await request.is_disconnected():
            return
        try:
            reading = await run_in_threadpool(read_try, catalog, dag_id, run_id, task_id, try_number)
        except NotFound as exc:
            yield event("problem", {"message": str(exc)})
            yield event("end", {"state": None})
            return
        except OperationError as exc:  # the state could not be read (DB or API server down): say so, go on
            reading = Reading(None, False, None, f"log unavailable: {exc}")
        out = follower.step(reading.text, reading.finished) if reading.text is not None else []
        if reading.problem != problem:
            problem = reading.problem
            if problem:
                out.append(event("problem", {"message": problem}))
        if reading.finished:
            out.append(event("end", {"state": reading.state}))
        now = time.monotonic()
        if not out and now - quiet >= KEEPALIVE_SECONDS:
            out.append(": keep-alive\n\n")
        for chunk in out:
            yield chunk
        if out:
            quiet = now
        if reading.finished:
            return
        if now - start >= limit:
            yield event("timeout", {"seconds": limit})
            return
        await asyncio.sleep(tick)


def add_stream(router: APIRouter, ui: Ui) -> None:
    """Add the live log stream route to ``router`` (see the module docstring)."""

    @router.get("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log/stream", include_in_schema=False)
    async def log_stream(request: Request, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> Response:
        catalog, _, _ = await run_in_threadpool(ui.dag_access, request, dag_id, "get", "pods",
                                                subresource="log", group="")
        return StreamingResponse(follow(request, catalog, dag_id, run_id, task_id, try_number),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
