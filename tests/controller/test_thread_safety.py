"""Issue 13 item 5: informer events hammered from many threads while passes run. kopf ran plain handlers in worker
threads that mutated dicts the event loop iterated (``RuntimeError: dictionary changed size during iteration``);
the handlers are async on the event loop now, so any rate of events leaves no traceback and correct runs."""
from __future__ import annotations

import logging
import threading

from kubedag.k8s.client import ApiError
from tests.controller.harness import DAGRUNS, NS, RunningController, dag_manifest, manual_run, wait_phase
from tests.controller.test_resilience import _rows
from tests.k8s.emulator.errors import StatusError

RUNS = 8
TASKS = 5


def _hammer(api, stop: threading.Event, resource: str, names: callable, counter: list[int], pause: float) -> None:
    """Patch an annotation of every object ``names()`` lists, over and over (``pause`` seconds apart): each patch is
    a MODIFIED event."""
    n = 0
    while not stop.is_set():
        for name in names():
            n += 1
            try:
                api.patch(resource, name, {'metadata': {'annotations': {'hammer': str(n)}}}, NS)
                counter[0] += 1
            except StatusError:  # deleted meanwhile
                pass
            if stop.wait(pause):
                return


def test_events_hammered_from_many_threads_while_passes_run_leave_no_traceback(k8s_api, fake_kubelet, sqlite_url, caplog):
    caplog.set_level(logging.WARNING)
    k8s_api.create(dag_manifest('busy', [{'name': 'root', 'command': ['true']}] + [
        {'name': f'leaf{i}', 'command': ['sh', '-c', f'echo {i}'], 'dependsOn': ['root']} for i in range(TASKS - 1)],
        maxActiveRuns=RUNS))
    stop, counter = threading.Event(), [0]
    runs = [f'busy-{i}' for i in range(RUNS)]
    pods = lambda: [p['metadata']['name'] for p in k8s_api.list('v1/pods', NS)]  # noqa: E731
    # DAGRuns less often: every change of one makes the controller's next status write (a PUT, as a real
    # controller's) conflict once; pods as fast as the API server answers
    hammers = [threading.Thread(target=_hammer, args=(k8s_api, stop, resource, names, counter, pause), daemon=True)
               for resource, names, pause in ((DAGRUNS, lambda: runs, 0.2), (DAGRUNS, lambda: runs[::-1], 0.2),
                                              ('v1/pods', pods, 0.01), ('v1/pods', lambda: pods()[::-1], 0.01))]
    with RunningController(k8s_api, sqlite_url, workers=4):
        for day, name in enumerate(runs, start=1):
            k8s_api.create(manual_run('busy', name, logicalDate=f'2026-10-{day:02d}T00:00:00Z'))
            if day == 2:
                for thread in hammers:
                    thread.start()
        try:
            phases = [wait_phase(k8s_api, name, timeout=120)['status']['phase'] for name in runs]
        finally:
            stop.set()
            for thread in hammers:
                thread.join(10)
    assert counter[0] > 200, counter  # events did come while passes ran
    assert phases == ['success'] * RUNS
    assert _rows(sqlite_url, "select state, count(*) from task_instance group by state") == [('success', RUNS * TASKS)]
    assert _rows(sqlite_url, "select count(*) from task_instance_history where state = 'success' and try_number = 1") \
        == [(RUNS * TASKS,)]
    problems = [r for r in caplog.records if (r.exc_info and not _conflict(r.exc_info[1]))
                or 'RuntimeError' in r.getMessage() or 'changed size during iteration' in r.getMessage()]
    assert not problems, [(r.name, r.getMessage(), r.exc_info) for r in problems[:5]]


def _conflict(exc: BaseException | None) -> bool:
    """A status write that met a newer object (409, retried by the work queue): expected under this load."""
    return isinstance(exc, ApiError) and exc.status == 409
