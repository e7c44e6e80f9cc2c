"""Scenarios of running and operating DAGs: pools, poolSlots and priority weights, maxActiveTasks, variables and
connections (masked), callbacks, dagrunTimeout, and the clear and mark actions."""
from __future__ import annotations

from tests.behaviour.model import (
    TI, Action, Expected, Hook, Scenario, config_map, dag, pool, secret, sh, traced,
)

S, F, K, U = 'success', 'failed', 'skipped', 'upstream_failed'

POOL_PRIORITY = Scenario(
    'pool-priority', "A one-slot pool runs its ready tries one at a time, highest priorityWeight first, the weight "
                     "summed over downstream tasks (Airflow's default weight_rule).",
    lambda ctx: [
        pool('narrow', 1),
        dag('pool-priority', [
            {'name': 'a', 'pool': 'narrow', 'priorityWeight': 1, 'command': traced(ctx, 0.2)},  # 1 + 2 downstream
            {'name': 'a1', 'dependsOn': ['a'], 'command': ['true']},
            {'name': 'a2', 'dependsOn': ['a'], 'command': ['true']},
            {'name': 'b', 'pool': 'narrow', 'priorityWeight': 2, 'command': traced(ctx, 0.2)},
            {'name': 'c', 'pool': 'narrow', 'priorityWeight': 5, 'command': traced(ctx, 0.2)},
        ]),
    ],
    Expected(S, {t: TI(S, 1) for t in ('a', 'a1', 'a2', 'b', 'c')},
             trace=('start-c', 'end-c', 'start-a', 'end-a', 'start-b', 'end-b')),
)

POOL_SLOTS = Scenario(
    'pool-slots', "poolSlots: a try taking both slots of a two-slot pool runs alone.",
    lambda ctx: [
        pool('pair', 2),
        dag('pool-slots', [
            {'name': 'big', 'pool': 'pair', 'poolSlots': 2, 'priorityWeight': 10, 'command': traced(ctx, 0.3)},
            {'name': 's1', 'pool': 'pair', 'command': traced(ctx, 0.3)},
            {'name': 's2', 'pool': 'pair', 'command': traced(ctx, 0.3)},
        ]),
    ],
    Expected(S, {t: TI(S, 1) for t in ('big', 's1', 's2')}, before=(('big', 's1'), ('big', 's2')), max_concurrent=2),
)

POOL_ACROSS_DAGS = Scenario(
    'pool-across-dags', "A pool's slots are shared by every DAG (of the namespace): a one-slot pool runs one try at a "
                        "time across a run and the run it triggers (p1 holds the slot up to 3 s waiting for c1, which "
                        "may only start once p1 is done).",
    lambda ctx: [
        pool('shared', 1),
        dag('pool-across-dags', [
            {'name': 'kick', 'trigger': {'dag': 'pool-child', 'triggerRunId': 'from-parent'}},
            {'name': 'p1', 'pool': 'shared', 'priorityWeight': 2, 'command': traced(
                ctx, 0.1, f'for i in $(seq 30); do test -f {ctx.data}/c1-started && break; sleep 0.1; done')},
            {'name': 'p2', 'pool': 'shared', 'command': traced(ctx, 0.1)},
        ]),
        dag('pool-child', [
            {'name': 'c1', 'pool': 'shared', 'command': traced(ctx, 0.1, f'touch {ctx.data}/c1-started')},
            {'name': 'c2', 'pool': 'shared', 'command': traced(ctx, 0.1)},
        ]),
    ],
    Expected(S, {'kick': TI(S, 1), 'p1': TI(S, 1), 'p2': TI(S, 1)}, max_concurrent=1,
             others={'pool-child': Expected(S, {'c1': TI(S, 1), 'c2': TI(S, 1)})}),
)

MAX_ACTIVE_TASKS = Scenario(
    'max-active-tasks', "maxActiveTasks caps the run's running task instances.",
    lambda ctx: [dag('max-active-tasks', [{'name': f't{i}', 'command': traced(ctx, 0.3)} for i in range(4)],
                     maxActiveTasks=2)],
    Expected(S, {f't{i}': TI(S, 1) for i in range(4)}, max_concurrent=2),
)

VARIABLES = Scenario(
    'variables-connections', "variablesFrom / connectionsFrom: var.value, var.json and conn.* in templates, "
                             "KUBEDAG_CONN_<ID> in the environment; Secret values and values of sensitive keys are *** "
                             "in logs.",
    lambda ctx: [
        config_map('pipeline-settings', {'region': 'eu-west-1', 'limits': '{"max": 7}', 'db_password': 'hunter22'}),
        secret('pipeline-secrets', {'api_token': 'tok-9f8e7d'}),
        secret('connections', {'warehouse': 'postgres://etl:s3cr3tpw@db.internal:5432/shop'}),
        dag('variables-connections', [{'name': 'show', 'command': sh(
            'echo "region={{ var.value.region }} max={{ var.json.limits.max }} token={{ var.value.api_token }} '
            'dbpw={{ var.value.db_password }} host={{ conn.warehouse.host }} port={{ conn.warehouse.port }} '
            'login={{ conn.warehouse.login }} pw={{ conn.warehouse.password }} schema={{ conn.warehouse.schema }}"; '
            'echo "env=$KUBEDAG_CONN_WAREHOUSE"')}],
            variablesFrom=[{'configMapRef': {'name': 'pipeline-settings'}},
                           {'secretRef': {'name': 'pipeline-secrets'}}],
            connectionsFrom=[{'secretRef': {'name': 'connections'}}]),
    ],
    Expected(S, {'show': TI(S, 1, log=('region=eu-west-1 max=7 token=*** dbpw=*** host=db.internal port=5432 '
                                       'login=etl pw=*** schema=shop', 'env=***'))}),
    secrets=('tok-9f8e7d', 's3cr3tpw', 'hunter22'),
)

CALLBACKS = Scenario(
    'callbacks', "onFailure / onRetry / onSuccess webhooks of tasks and the run (URL from a Secret or inline) get "
                 "event, task, try and the log's tail, secrets masked.",
    lambda ctx: [
        secret('hooks', {'url': f'{ctx.hook_url}/alerts'}),
        secret('tokens', {'token': 'tok-cb-1234'}),
        dag('callbacks', [
            {'name': 'boom', 'retries': 1, 'retryDelay': '0s',
             'command': sh('echo "something broke with {{ var.value.token }}"; exit 4'),
             'onFailure': [{'webhook': {'urlFrom': {'name': 'hooks', 'key': 'url'}}}],
             'onRetry': [{'webhook': {'url': f'{ctx.hook_url}/retry'}}]},
            {'name': 'fine', 'command': ['true'], 'onSuccess': [{'webhook': {'url': f'{ctx.hook_url}/ok'}}]},
        ], variablesFrom=[{'secretRef': {'name': 'tokens'}}], onFailure=[{'webhook': {'url': f'{ctx.hook_url}/runs'}}],
            onSuccess=[{'webhook': {'url': f'{ctx.hook_url}/runs-ok'}}]),
    ],
    Expected(F, {'boom': TI(F, 2), 'fine': TI(S, 1)}, hooks=(
        Hook('/retry', 'task_retry', 'boom', 1),
        Hook('/alerts', 'task_failure', 'boom', 2, ('something broke with ***',)),
        Hook('/ok', 'task_success', 'fine', 1), Hook('/runs', 'dag_failure'))),
    secrets=('tok-cb-1234',), hook=True,
)

DAGRUN_TIMEOUT = Scenario(
    'dagrun-timeout', "dagrunTimeout: a run unfinished that long after it started fails; its unfinished tasks are "
                      "skipped (their processes stopped).",
    lambda ctx: [dag('dagrun-timeout', [
        {'name': 'sleepy', 'command': traced(ctx, 30)},
        {'name': 'next', 'dependsOn': ['sleepy'], 'command': ['true']},
        {'name': 'quick', 'command': ['true']},
    ], dagrunTimeout='3s')],
    Expected(F, {'sleepy': TI(K, 1), 'next': TI(K, 0), 'quick': TI(S, 1)}, trace=('start-sleepy',)),
)

CLEAR = Scenario(
    'clear', "tasks clear: the cleared task instances (with --downstream, their downstream ones) run again with the "
             "next try number and their retries renewed; the run reopens and finishes again.",
    lambda ctx: [dag('clear', [
        {'name': 'flaky', 'retries': 1, 'retryDelay': '0s', 'command': sh('test "$KUBEDAG_TRY_NUMBER" -ge 4')},
        {'name': 'after', 'dependsOn': ['flaky'], 'command': ['true']},
        {'name': 'side', 'command': ['echo', 'side try {{ ti.try_number }}']},
    ])],
    Expected(F, {'flaky': TI(F, 2), 'after': TI(U, 0), 'side': TI(S, 1)}),
    actions=(
        Action('clear', ('flaky',), Expected(S, {'flaky': TI(S, 4), 'after': TI(S, 1), 'side': TI(S, 1)}),
               downstream=True),
        Action('clear', ('side',), Expected(S, {'flaky': TI(S, 4), 'after': TI(S, 1),
                                                'side': TI(S, 2, log=('side try 2',))})),
    ),
)

CLEAR_ONLY_FAILED = Scenario(
    'clear-only-failed', "tasks clear --upstream --only-failed: of the task and its upstream tasks only the failed "
                         "ones run again.",
    lambda ctx: [dag('clear-only-failed', [
        {'name': 'up', 'command': ['true']},
        {'name': 'mid', 'dependsOn': ['up'], 'command': sh('test "$KUBEDAG_TRY_NUMBER" -ge 2')},
        {'name': 'other', 'command': ['true']},
    ])],
    Expected(F, {'up': TI(S, 1), 'mid': TI(F, 1), 'other': TI(S, 1)}),
    actions=(Action('clear', ('mid',), Expected(S, {'up': TI(S, 1), 'mid': TI(S, 2), 'other': TI(S, 1)}),
                    upstream=True, only_failed=True),),
)

MARK = Scenario(
    'mark', "tasks mark: sets task instance states and the run's state is re-evaluated from its leaves.",
    lambda ctx: [dag('mark', [
        {'name': 'a', 'command': sh('exit 1')},
        {'name': 'b', 'command': ['true']},
        {'name': 'c', 'dependsOn': ['b'], 'command': ['true']},
    ])],
    Expected(F, {'a': TI(F, 1), 'b': TI(S, 1), 'c': TI(S, 1)}),
    actions=(
        Action('mark', ('a',), Expected(S, {'a': TI(S, 1), 'b': TI(S, 1), 'c': TI(S, 1)}), state='success'),
        Action('mark', ('c',), Expected(F, {'a': TI(S, 1), 'b': TI(S, 1), 'c': TI(F, 1)}), state='failed'),
        Action('mark', ('c',), Expected(S, {'a': TI(S, 1), 'b': TI(S, 1), 'c': TI(K, 1)}), state='skipped'),
    ),
)

OPERATING: list[Scenario] = [POOL_PRIORITY, POOL_SLOTS, POOL_ACROSS_DAGS, MAX_ACTIVE_TASKS, VARIABLES, CALLBACKS,
                             DAGRUN_TIMEOUT, CLEAR, CLEAR_ONLY_FAILED, MARK]
