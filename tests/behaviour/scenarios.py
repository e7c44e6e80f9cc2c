"""The behaviour suite's scenarios: every Airflow feature the README documents, each with the one outcome both
executors must reach (see README.md in this folder to add one).

Expected states follow Airflow 2.10 (``TriggerRuleDep``, ``DagRun.update_state``: the leaves decide the run's
state, ``TaskInstance.handle_failure``, ``BaseSensorOperator``, ``BranchMixIn``, ``TriggerDagRunOperator``,
``ExternalTaskSensor``, pools and ``priority_weight``/``weight_rule``).
"""
from __future__ import annotations

from tests.behaviour.model import LOGICAL_DATE, RUN_ID, TI, Ctx, Expected, Scenario, dag, sh, traced, xcom
from tests.behaviour.scenarios_operating import OPERATING
from tests.behaviour.scenarios_waiting import WAITING

# -- trigger rules ---------------------------------------------------------------------------------------------

RULES = ('all_success', 'all_failed', 'all_done', 'all_skipped', 'one_success', 'one_failed', 'one_done',
         'none_failed', 'none_failed_min_one_success', 'none_skipped', 'always')
S, F, K, U = 'success', 'failed', 'skipped', 'upstream_failed'
UPSTREAMS = {  # a join's upstream tasks -> its state under each rule of RULES, as Airflow 2.10's TriggerRuleDep
    ('ok', 'bad'): (U, K, S, K, S, S, S, U, U, S, S),
    ('ok', 'skip'): (K, K, S, K, S, K, S, S, S, K, S),
    ('skip', 'skip2'): (K, K, S, S, K, K, K, S, K, K, S),
    ('bad', 'bad2'): (U, S, S, K, U, S, S, U, U, S, S),
}
ROOTS = {'ok': (['true'], S), 'bad': (sh('exit 3'), F), 'bad2': (sh('exit 4'), F),
         'skip': (sh('exit 99'), K), 'skip2': (sh('exit 99'), K)}


def _trigger_rules(ctx: Ctx) -> list[dict]:
    joins = [{'name': f'{"-".join(ups)}.{rule}', 'dependsOn': list(ups), 'triggerRule': rule, 'command': ['true']}
             for ups in UPSTREAMS for rule in RULES]
    return [dag('trigger-rules', [{'name': n, 'command': c} for n, (c, _) in ROOTS.items()] + joins)]


TRIGGER_RULES = Scenario(
    'trigger-rules', "Every Airflow 2 trigger rule over upstreams that succeeded, failed and were skipped (exit 99).",
    _trigger_rules,
    Expected(F, {**{n: TI(state, 1) for n, (_, state) in ROOTS.items()},
                 **{f'{"-".join(ups)}.{rule}': TI(state, 1 if state == S else 0)
                    for ups, states in UPSTREAMS.items() for rule, state in zip(RULES, states)}}),
)

LEAVES = Scenario(
    'leaves-decide', "A failed task whose only downstream task is an all_done leaf that succeeds: the run succeeds, "
                     "as Airflow's run state looks at the leaves only.",
    lambda ctx: [dag('leaves-decide', [
        {'name': 'bad', 'command': sh('exit 1')},
        {'name': 'cleanup', 'dependsOn': ['bad'], 'triggerRule': 'all_done', 'command': ['true']},
    ])],
    Expected(S, {'bad': TI(F, 1), 'cleanup': TI(S, 1)}),
)

# -- retries, timeouts, skips ------------------------------------------------------------------------------------

RETRIES = Scenario(
    'retries', "retries: each try gets the next try number (KUBEDAG_TRY_NUMBER, ti.try_number) and its own log; a task "
               "failing every try ends failed after retries + 1 tries; a task's own retries replace the defaults'.",
    lambda ctx: [dag('retries', [
        {'name': 'flaky', 'command': sh('echo "try $KUBEDAG_TRY_NUMBER of {{ ti.try_number }}"; '
                                        'test "$KUBEDAG_TRY_NUMBER" -ge 3 || exit 3')},
        {'name': 'doomed', 'retries': 1, 'command': sh('echo doomed try $KUBEDAG_TRY_NUMBER; exit 5')},
        {'name': 'after', 'dependsOn': ['flaky'], 'command': ['true']},
    ], defaults={'retries': 2, 'retryDelay': '0s'})],
    Expected(F, {'flaky': TI(S, 3, logs={1: ('try 1 of 1',), 2: ('try 2 of 2',), 3: ('try 3 of 3',)}),
                 'doomed': TI(F, 2, logs={1: ('doomed try 1',), 2: ('doomed try 2',)}),
                 'after': TI(S, 1)}),
)

RETRY_DELAY = Scenario(
    'retry-delay', "retryDelay: the next try starts no sooner than retryDelay after the failed try ended (Airflow's "
                   "TaskInstance.next_retry_datetime); each failing try ends 0.8 s into a second, as any try may.",
    lambda ctx: [dag('retry-delay', [
        {'name': 'flaky', 'retries': 2, 'retryDelay': '1s', 'command': sh(
            f'echo "try-$KUBEDAG_TRY_NUMBER $(date +%s.%N)" >> {ctx.trace}; '
            'test "$KUBEDAG_TRY_NUMBER" -ge 3 && exit 0; '
            "python3 -c 'import time; time.sleep((0.8 - time.time() % 1) % 1)'; "
            f'echo "failed-$KUBEDAG_TRY_NUMBER $(date +%s.%N)" >> {ctx.trace}; exit 3')},
    ])],
    Expected(S, {'flaky': TI(S, 3)}, trace=('try-1', 'failed-1', 'try-2', 'failed-2', 'try-3'),
             min_gap=(('failed-1', 'try-2', 1.0), ('failed-2', 'try-3', 1.0))),
)

EXECUTION_TIMEOUT = Scenario(
    'execution-timeout', "executionTimeout stops a try that runs too long and fails it; the failure is retried.",
    lambda ctx: [dag('execution-timeout', [
        {'name': 'slow', 'executionTimeout': '1s', 'retries': 1, 'retryDelay': '0s',
         'command': traced(ctx, 30)},
        {'name': 'after', 'dependsOn': ['slow'], 'command': ['true']},
    ])],
    Expected(F, {'slow': TI(F, 2), 'after': TI(U, 0)}, trace=('start-slow', 'start-slow')),
)

SKIP = Scenario(
    'skip-exit-99', "A task exiting 99 is skipped (BashOperator's skip_on_exit_code); all_success downstream tasks are "
                    "skipped, all_done ones run; skips alone make a successful run.",
    lambda ctx: [dag('skip-exit-99', [
        {'name': 'maybe', 'retries': 2, 'command': sh('echo nothing to do; exit 99')},
        {'name': 'down', 'dependsOn': ['maybe'], 'command': ['true']},
        {'name': 'down_done', 'dependsOn': ['maybe'], 'triggerRule': 'all_done', 'command': ['true']},
    ])],
    Expected(S, {'maybe': TI(K, 1, log=('nothing to do',)), 'down': TI(K, 0), 'down_done': TI(S, 1)}),
)

# -- branching, XCom, templating --------------------------------------------------------------------------------

BRANCH = Scenario(
    'branch', "branch: the branch task's XCom (a task name or a list of them) picks the direct downstream tasks to "
              "follow, the others are skipped and the skips propagate; a none_failed_min_one_success join runs.",
    lambda ctx: [dag('branch', [
        {'name': 'pick', 'branch': True, 'command': xcom('"full"')},
        {'name': 'full', 'dependsOn': ['pick'], 'command': ['true']},
        {'name': 'incremental', 'dependsOn': ['pick'], 'command': ['true']},
        {'name': 'incremental_check', 'dependsOn': ['incremental'], 'command': ['true']},
        {'name': 'report', 'dependsOn': ['full', 'incremental_check'], 'triggerRule': 'none_failed_min_one_success',
         'command': ['true']},
        {'name': 'pick_many', 'branch': True, 'command': xcom('["x", "y"]')},
        {'name': 'x', 'dependsOn': ['pick_many'], 'command': ['true']},
        {'name': 'y', 'dependsOn': ['pick_many'], 'command': ['true']},
        {'name': 'z', 'dependsOn': ['pick_many'], 'command': ['true']},
    ])],
    Expected(S, {'pick': TI(S, 1, xcom={'return_value': 'full'}), 'full': TI(S, 1), 'incremental': TI(K, 0),
                 'incremental_check': TI(K, 0), 'report': TI(S, 1),
                 'pick_many': TI(S, 1, xcom={'return_value': ['x', 'y']}),
                 'x': TI(S, 1), 'y': TI(S, 1), 'z': TI(K, 0)}),
)

BRANCH_UNKNOWN = Scenario(
    'branch-unknown-task', "A branch naming a task that is not directly downstream fails the branch task.",
    lambda ctx: [dag('branch-unknown-task', [
        {'name': 'pick', 'branch': True, 'command': xcom('"nope"')},
        {'name': 'a', 'dependsOn': ['pick'], 'command': ['true']},
        {'name': 'nope', 'command': ['true']},
    ])],
    Expected(F, {'pick': TI(F, 1), 'a': TI(U, 0), 'nope': TI(S, 1)}),
)

XCOM = Scenario(
    'xcom', "XCom: a try's JSON return value (multipleOutputs also pushes each key) is pulled by templates; a null "
            "pushes nothing; only the successful try's value is kept; a task that pushes nothing pulls as None.",
    lambda ctx: [dag('xcom', [
        {'name': 'extract', 'multipleOutputs': True, 'command': xcom('{"rows": 42, "path": "s3://b/{{ ds }}"}')},
        {'name': 'load', 'dependsOn': ['extract'],
         'command': ['echo', "rows={{ ti.xcom_pull(task_ids='extract', key='rows') }}",
                     "path={{ ti.xcom_pull(task_ids='extract')['path'] }}"]},
        {'name': 'nothing', 'command': xcom('null')},
        {'name': 'pull_nothing', 'dependsOn': ['nothing'],
         'command': ['echo', "nothing={{ ti.xcom_pull(task_ids='nothing') }}"]},
        {'name': 'py', 'command': ['python3', '-c', 'import json, os; '
                                   'json.dump({"n": [1, 2]}, open(os.environ["KUBEDAG_XCOM_PATH"], "w"))']},
        {'name': 'retried', 'retries': 1, 'retryDelay': '0s',
         'command': sh('echo "{\\"try\\": $KUBEDAG_TRY_NUMBER}" > "$KUBEDAG_XCOM_PATH"; '
                       'test "$KUBEDAG_TRY_NUMBER" -ge 2')},
    ])],
    Expected(S, {'extract': TI(S, 1, xcom={'return_value': {'rows': 42, 'path': 's3://b/2026-11-01'}, 'rows': 42,
                                            'path': 's3://b/2026-11-01'}),
                 'load': TI(S, 1, xcom={}, log=('rows=42 path=s3://b/2026-11-01',)),
                 'nothing': TI(S, 1, xcom={}), 'pull_nothing': TI(S, 1, log=('nothing=None',)),
                 'py': TI(S, 1, xcom={'return_value': {'n': [1, 2]}}),
                 'retried': TI(S, 2, xcom={'return_value': {'try': 2}})}),
)

XCOM_LIMIT = Scenario(
    'xcom-size-limit', "An XCom over 4096 bytes (Kubernetes' termination message limit, enforced locally too) fails "
                       "the try.",
    lambda ctx: [dag('xcom-size-limit', [
        {'name': 'big', 'command': sh('printf \'"%05000d"\' 0 > "$KUBEDAG_XCOM_PATH"')},
        {'name': 'small', 'command': xcom('"%s"' % ('x' * 4000))},
    ])],
    Expected(F, {'big': TI(F, 1, xcom={}), 'small': TI(S, 1, xcom={'return_value': 'x' * 4000})}),
)

TEMPLATE = (
    'ds={{ ds }} nodash={{ ds_nodash }} ts={{ ts }} ts_nodash={{ ts_nodash }} logical={{ logical_date }} '
    'start={{ data_interval_start }} end={{ data_interval_end }} run={{ run_id }} dag={{ dag.dag_id }} '
    'task={{ task.task_id }} try={{ ti.try_number }} root={{ params.data_root }} region={{ params.region }} '
    "conf={{ dag_run.conf.data_root }} add={{ macros.ds_add(ds, 5) }} "
    "fmt={{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}"
)
TEMPLATING = Scenario(
    'templating', "Templates see Airflow's context (ds, ts, logical date, data interval, run id, dag, task, ti, "
                  "params with dag_run.conf overriding them, macros) in command and env; every try gets KUBEDAG_* "
                  "variables (Airflow's AIRFLOW_CTX_*).",
    lambda ctx: [dag('templating', [
        {'name': 'render', 'env': {'TARGET': 'raw/{{ ds_nodash }}/{{ params.data_root }}'},
         'command': sh(f'echo "{TEMPLATE}"; echo "target=$TARGET dag=$KUBEDAG_DAG_ID task=$KUBEDAG_TASK_ID '
                       'run=$KUBEDAG_RUN_ID date=$KUBEDAG_LOGICAL_DATE try=$KUBEDAG_TRY_NUMBER"')},
    ], params={'data_root': 'out', 'region': 'eu'})],
    Expected(S, {'render': TI(S, 1, log=(
        f'ds=2026-11-01 nodash=20261101 ts={LOGICAL_DATE} ts_nodash=20261101T000000 logical=2026-11-01T00:00:00+00:00 '
        f'start=2026-11-01T00:00:00+00:00 end=2026-11-01T00:00:00+00:00 run={RUN_ID} dag=templating task=render try=1 '
        'root=elsewhere region=eu conf=elsewhere add=2026-11-06 fmt=01/11/2026',
        f'target=raw/20261101/elsewhere dag=templating task=render run={RUN_ID} date={LOGICAL_DATE} try=1'))},
             conf={'data_root': 'elsewhere'}),
    conf={'data_root': 'elsewhere'},
)

TEMPLATE_ERROR = Scenario(
    'template-error', "A template that fails to render (StrictUndefined) fails that try, with the error in its log; "
                      "the failure is retried as any other.",
    lambda ctx: [dag('template-error', [
        {'name': 'bad', 'retries': 1, 'retryDelay': '0s', 'command': ['echo', '{{ no_such_name }}']},
        {'name': 'after', 'dependsOn': ['bad'], 'command': ['true']},
    ])],
    Expected(F, {'bad': TI(F, 2, log=('no_such_name',)), 'after': TI(U, 0)}),
)

SCENARIOS: list[Scenario] = [
    TRIGGER_RULES, LEAVES, RETRIES, RETRY_DELAY, EXECUTION_TIMEOUT, SKIP, BRANCH, BRANCH_UNKNOWN, XCOM, XCOM_LIMIT,
    TEMPLATING, TEMPLATE_ERROR, *WAITING, *OPERATING,
]
