"""The behaviour suite's two executor drivers, one interface (:data:`tests.behaviour.model.Executor`):
``driver(scenario, ctx, tmp_path, receiver) -> [Outcome after the run, Outcome after each action]``.

Both go through public surfaces only: the ``kubedag`` CLI (in-process with Typer's CliRunner), the metadata DB's
tables (``kubedag.store.models``: dag_run, task_instance, task_instance_history, xcom), the custom resources'
``status`` and the controller test harness (``tests/controller/harness.py``).

* :func:`run_local`: the manifests are files in a DAG folder (as `kubectl apply -f folder/` would read them);
  `kubedag dags test FILE` runs the DAG, `kubedag tasks clear|mark -f FILE` act on the run, `kubedag logs` reads
  logs; the SQLite DB of ``$KUBEDAG_HOME`` is read.
* :func:`run_cluster`: the manifests are objects of the emulated API server; the real controller runs against
  it (a fake kubelet runs pods as processes); `kubedag dags trigger` / `tasks clear|mark` / `logs` with
  ``--kubeconfig`` act as a user would; the run's state and task instances are read from the DAGRun's status
  (checked against the DB's rows).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from kubedag.cli.main import app
from tests.behaviour.model import LOGICAL_DATE, RUN_ID, Action, Ctx, Expected, Outcome, RunOutcome, Scenario
from tests.controller.harness import DAGRUNS, NS, RunningController, wait_until

FINISHED = ('success', 'failed')
WAIT_S = 60.0  # how long a run may take at most before the suite reports it stuck


class Cli:
    """``kubedag`` in-process with ``env`` set (None unsets a variable) and ``extra`` arguments appended to every
    command; ``outputs`` keeps what every command printed (searched for secrets)."""

    def __init__(self, env: dict[str, str | None], extra: tuple[str, ...] = ()) -> None:
        self.env, self.extra, self.outputs = env, extra, []

    def __call__(self, *args: str) -> tuple[int, str]:
        """(exit code, stdout + stderr); a traceback fails the test."""
        result = CliRunner().invoke(app, [*args, *self.extra], env=self.env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        self.outputs.append(result.stdout + result.stderr)
        return result.exit_code, self.outputs[-1]


def action_args(action: Action, dag: str) -> list[str]:
    """The `kubedag tasks clear|mark` arguments of ``action`` on the scenario's run of ``dag``."""
    tasks = [arg for task in action.tasks for arg in ('-t', task)]
    if action.kind == 'mark':
        return ['tasks', 'mark', dag, str(action.state), '-r', RUN_ID, *tasks]
    flags = [flag for flag, on in (('-d', action.downstream), ('-u', action.upstream),
                                   ('--only-failed', action.only_failed)) if on]
    return ['tasks', 'clear', dag, '-r', RUN_ID, *tasks, *flags, '--yes']


def read_trace(ctx: Ctx) -> list[str]:
    return ctx.trace.read_text().splitlines() if ctx.trace.exists() else []


def hooks_received(receiver: Any, expected: Expected) -> list[dict[str, Any]]:
    """The webhook POSTs received, once as many as ``expected`` names have arrived (or after 5 s: then the
    comparison shows what is missing). Notifications are sent in the background, after the run's state."""
    if receiver is None:
        return []
    try:
        receiver.wait_for(len(expected.hooks or ()), timeout=5.0)
    except AssertionError:
        pass
    return [{**(r.json or {}), '_path': r.path} for r in receiver.requests]


def read_runs(url: str, dag_ids: dict[str, str]) -> dict[str, RunOutcome]:
    """The one run of each DAG (name -> its key in the DB) found in the metadata DB at ``url``."""
    engine = sa.create_engine(url)
    runs: dict[str, RunOutcome] = {}
    try:
        with engine.connect() as conn:
            for name, dag_id in dag_ids.items():
                rows = conn.execute(sa.text('select run_id, state, run_type, conf from dag_run where dag_id = :d'),
                                    {'d': dag_id}).all()
                if not rows:
                    continue
                assert len(rows) == 1, f'one run of {name} expected, found {[r.run_id for r in rows]}'
                [run] = rows
                key = {'d': dag_id, 'r': run.run_id}
                tis = conn.execute(sa.text('select task_id, state, try_number from task_instance '
                                           'where dag_id = :d and run_id = :r'), key).all()
                xcoms = conn.execute(sa.text(
                    'select x.task_id, x.key, x.value from xcom x join task_instance t on t.dag_id = x.dag_id and '
                    't.run_id = x.run_id and t.task_id = x.task_id and t.try_number = x.try_number '
                    'where x.dag_id = :d and x.run_id = :r'), key).all()
                history = conn.execute(sa.text('select task_id, try_number, reason, log from task_instance_history '
                                               'where dag_id = :d and run_id = :r'), key).all()
                conf = run.conf if isinstance(run.conf, dict) else json.loads(run.conf or '{}')
                out = RunOutcome(run.run_id, run.state, run.run_type, conf,
                                 {t.task_id: (t.state or 'none', t.try_number) for t in tis}, {},
                                 reasons=[f'{r.task_id} try {r.try_number}: {r.reason}' for r in history if r.reason],
                                 archived=[r.log for r in history if r.log])
                for x in xcoms:
                    out.xcoms.setdefault(x.task_id, {})[x.key] = json.loads(x.value)
                runs[name] = out
    finally:
        engine.dispose()
    return runs


def observe(scenario: Scenario, expected: Expected, ctx: Ctx, cli: Cli, runs: dict[str, RunOutcome],
            receiver: Any) -> Outcome:
    """The Outcome of ``runs`` plus every log the scenario's expectations name, read with `kubedag logs` (a failing
    command's output is kept as the log, so it shows in the comparison), the trace and the webhooks."""
    for dag, task, try_number in scenario.log_keys():
        run = runs.get(dag)
        if run is None:
            continue
        code, text = cli('logs', dag, run.run_id, task, *(['--try', str(try_number)] if try_number else []))
        run.logs[(task, try_number)] = text if code == 0 else f'<kubedag logs exited {code}: {text.strip()}>'
    return Outcome(runs, read_trace(ctx), hooks_received(receiver, expected), cli.outputs)


# -- local processes -------------------------------------------------------------------------------------------

def write_folder(folder: Path, objects: Iterable[dict[str, Any]]) -> dict[str, Path]:
    """Each manifest in its own file of ``folder``; returns DAG name -> its file."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for obj in objects:
        name = obj['metadata']['name']
        path = folder / (f'{name}.yaml' if obj['kind'] == 'DAG' else f"{obj['kind'].lower()}-{name}.yaml")
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        if obj['kind'] == 'DAG':
            files[name] = path
    return files


def run_local(scenario: Scenario, ctx: Ctx, tmp_path: Path, receiver: Any = None) -> list[Outcome]:
    """The scenario with `kubedag dags test` (local processes, SQLite in ``tmp_path/home``). ``receiver``: the
    scenario's WebhookReceiver, if any."""
    home = tmp_path / 'home'
    cli = Cli({'KUBEDAG_HOME': str(home), 'KUBEDAG_DATABASE_URL': None})
    files = write_folder(tmp_path / 'dags', scenario.manifests(ctx))
    url = f"sqlite:///{home / 'kubedag.db'}"
    for prior in scenario.before:
        code, out = cli('dags', 'test', str(files[prior.dag]), '--logical-date', prior.logical_date)
        assert code in (0, 1), out
    conf = ['--conf', json.dumps(scenario.conf)] if scenario.conf is not None else []
    code, out = cli('dags', 'test', str(files[scenario.id]), '--logical-date', LOGICAL_DATE, *conf)
    assert code in (0, 1), out
    outcomes = [observe(scenario, scenario.expect, ctx, cli, read_runs(url, {n: n for n in files}), receiver)]
    for action in scenario.actions:
        code, out = cli(*action_args(action, scenario.id), '-f', str(files[scenario.id]))
        assert code in (0, 1), out
        outcomes.append(observe(scenario, action.expect, ctx, cli, read_runs(url, {n: n for n in files}), receiver))
    return outcomes


# -- the controller on the emulated cluster --------------------------------------------------------------------

def dagruns_of(api: Any, dag: str) -> list[dict[str, Any]]:
    return [r for r in api.list(DAGRUNS, NS) if r['spec'].get('dagName') == dag]


def finished_run(api: Any, dag: str) -> dict[str, Any] | None:
    """The DAG's one DAGRun once it is finished and the controller has acted on its latest spec (its
    ``status.observedGeneration`` is the object's ``metadata.generation``, as after a clear or mark request)."""
    runs = dagruns_of(api, dag)
    if len(runs) != 1:
        return None
    status = runs[0].get('status') or {}
    settled = status.get('observedGeneration') == runs[0]['metadata'].get('generation')
    return runs[0] if settled and status.get('phase') in FINISHED else None


def run_cluster(scenario: Scenario, ctx: Ctx, tmp_path: Path, receiver: Any = None, *, api: Any,
                db_url: str) -> list[Outcome]:
    """The scenario on the emulated cluster ``api`` (a started EmulatedApiServer with a fake kubelet): objects
    created in namespace ``default``, the controller of ``tests/controller/harness.py`` running on the metadata DB
    at ``db_url``, runs made with `kubedag dags trigger`. ``receiver``: the scenario's WebhookReceiver, if any."""
    cli = Cli({'KUBEDAG_DATABASE_URL': db_url, 'KUBEDAG_HOME': str(tmp_path / 'cli-home')},
              ('--kubeconfig', str(api.kubeconfig(tmp_path / 'kubeconfig'))))
    dags = []
    for obj in scenario.manifests(ctx):
        api.create({**obj, 'metadata': {**obj['metadata'], 'namespace': NS}})
        if obj['kind'] == 'DAG':
            dags.append(obj['metadata']['name'])

    def trigger(dag: str, logical_date: str, conf: Any = None) -> None:
        code, out = cli('dags', 'trigger', dag, '--logical-date', logical_date,
                        *(['--conf', json.dumps(conf)] if conf is not None else []))
        assert code == 0, out
        wait_until(lambda: finished_run(api, dag), WAIT_S, f'a finished run of {dag}')

    def runs() -> dict[str, RunOutcome]:
        """The DB's runs, state from the DAGRuns' status; the status's task instances must match the DB's (the
        controller writes both: wait a little for the later write)."""
        def consistent() -> dict[str, RunOutcome] | None:
            found = read_runs(db_url, {name: f'{NS}/{name}' for name in dags})  # keyed <namespace>/<name> in the DB
            for name, run in found.items():
                [obj] = dagruns_of(api, name)
                status = obj.get('status') or {}
                if {t: (e['s'], e.get('t', 0)) for t, e in (status.get('tasks') or {}).items()} != \
                        {t: s for t, s in run.tis.items() if s[0] != 'none'}:
                    return None
                run.state, run.status = status.get('phase'), json.dumps(status)
            return found

        return wait_until(consistent, 10.0, "the DAGRuns' status.tasks equal to the DB's task instances")

    with RunningController(api, db_url):
        for prior in scenario.before:
            trigger(prior.dag, prior.logical_date)
        trigger(scenario.id, LOGICAL_DATE, scenario.conf)
        for other in dags:  # triggered runs finish too
            wait_until(lambda: all((r.get('status') or {}).get('phase') in FINISHED for r in dagruns_of(api, other)),
                       WAIT_S, f'the runs of {other} finished')
        outcomes = [observe(scenario, scenario.expect, ctx, cli, runs(), receiver)]
        for action in scenario.actions:
            code, out = cli(*action_args(action, scenario.id))
            assert code == 0, out
            wait_until(lambda: finished_run(api, scenario.id), WAIT_S, f'{scenario.id} finished after {action.kind}')
            outcomes.append(observe(scenario, action.expect, ctx, cli, runs(), receiver))
    return outcomes
