"""The behaviour suite: every scenario of ``scenarios.py`` on both executors, one expected outcome for both.

Test ids are ``<scenario>-local`` (`kubedag dags test`, local processes) and ``<scenario>-cluster`` (the controller
on the emulated cluster). A disagreement between the executors that is not fixed yet is listed in
:data:`DISAGREEMENTS` (a strict xfail of that one parametrisation, with what differs), never by changing the
scenario's expectation.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.behaviour.compare import leaked, reasons, views
from tests.behaviour.executors import run_cluster, run_local
from tests.behaviour.model import Ctx, Executor, Scenario
from tests.behaviour.scenarios import SCENARIOS
from tests.notify.receiver import WebhookReceiver

EXECUTORS = ('local', 'cluster')

DISAGREEMENTS: dict[tuple[str, str], str] = {}
"""(scenario id, executor) -> what that executor does differently (expected vs actual), until it is fixed."""


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass


@contextlib.contextmanager
def file_server(directory: Path) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` serving ``directory``'s files (404 until a file exists), in a thread."""
    server = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_QuietFiles, directory=str(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, name='behaviour-files')
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def params() -> Iterator[Any]:
    for scenario in SCENARIOS:
        for executor in EXECUTORS:
            reason = DISAGREEMENTS.get((scenario.id, executor))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(scenario, executor, id=f'{scenario.id}-{executor}', marks=marks)


def test_scenario_ids_are_unique_and_every_disagreement_names_a_scenario() -> None:
    ids = [s.id for s in SCENARIOS]
    assert len(ids) == len(set(ids))
    assert {s for s, _ in DISAGREEMENTS} <= set(ids) and {e for _, e in DISAGREEMENTS} <= set(EXECUTORS)


@pytest.mark.parametrize(('scenario', 'executor'), list(params()))
def test_behaviour(scenario: Scenario, executor: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    data = tmp_path / 'data'
    data.mkdir()
    with contextlib.ExitStack() as stack:
        receiver = stack.enter_context(WebhookReceiver()) if scenario.hook else None
        web_url = stack.enter_context(file_server(data)) if scenario.web else ''
        ctx = Ctx(data=data, hook_url=receiver.url if receiver else '', web_url=web_url)
        driver: Executor = run_local
        if executor == 'cluster':
            request.getfixturevalue('fake_kubelet')
            driver = functools.partial(run_cluster, api=request.getfixturevalue('k8s_api'),
                                       db_url=request.getfixturevalue('sqlite_url'))
        outcomes = driver(scenario, ctx, tmp_path, receiver)
    steps = [('the run', scenario.expect), *((f'after {a.kind} {a.tasks}', a.expect) for a in scenario.actions)]
    assert len(outcomes) == len(steps)
    for (step, expected), outcome in zip(steps, outcomes):
        want, got = views(expected, outcome, scenario.id)
        assert got == want, f'{scenario.id} on {executor}, {step}; failure reasons:\n{reasons(outcome)}'
        assert not leaked(scenario.secrets, outcome), f'{scenario.id} on {executor}, {step}: a secret leaked'
