"""Scenarios of tasks that wait: sensors (command with exit 75, file, http; poke and reschedule; timeout, softFail),
trigger tasks (TriggerDagRunOperator) and ExternalTaskSensor."""
from __future__ import annotations

from typing import Any

from tests.behaviour.model import RUN_ID, TI, Ctx, Expected, Prior, Scenario, dag, sh

S, F, K, U = 'success', 'failed', 'skipped', 'upstream_failed'


def later(seconds: float, script: str) -> list[str]:
    """A command that sleeps, then runs ``script`` (what a sensor waits for appears meanwhile)."""
    return sh(f'sleep {seconds}; {script}')


def shared(ctx: Ctx) -> dict[str, Any]:
    """Mount ``ctx.data`` where it is on the host: built-in checks run in kubedag's image on Kubernetes, with the
    task's volumes (locally volumes are not used, the path is the same)."""
    return {'volumes': [{'name': 'data', 'hostPath': {'path': str(ctx.data)}}],
            'volumeMounts': [{'name': 'data', 'mountPath': str(ctx.data)}]}


def _command_sensor(mode: str) -> Scenario:
    name = f'sensor-{mode}'
    return Scenario(
        name, f"A command sensor in {mode} mode: exit 75 is 'not yet', exit 0 'met'; it keeps its try number.",
        lambda ctx: [dag(name, [
            {'name': 'produce', 'command': later(1, f'echo ready > {ctx.data}/flag')},
            {'name': 'wait', 'command': sh(f'test -f {ctx.data}/flag || exit 75'),
             'sensor': {'mode': mode, 'pokeInterval': '1s', 'timeout': '60s'}},
            {'name': 'after', 'dependsOn': ['wait'], 'command': ['cat', f'{ctx.data}/flag']},
        ])],
        Expected(S, {'produce': TI(S, 1), 'wait': TI(S, 1), 'after': TI(S, 1, log=('ready',))}),
    )


SENSOR_SLOT = Scenario(
    'sensor-reschedule-frees-slot', "A sensor in reschedule mode holds no slot between pokes: with maxActiveTasks 1 "
                                    "the task it waits for (lower priority, so it starts second) still runs.",
    lambda ctx: [dag('sensor-reschedule-frees-slot', [
        {'name': 'wait', 'priorityWeight': 10, 'command': sh(f'test -f {ctx.data}/flag || exit 75'),
         'sensor': {'mode': 'reschedule', 'pokeInterval': '1s', 'timeout': '60s'}},
        {'name': 'produce', 'command': sh(f'touch {ctx.data}/flag')},
        {'name': 'after', 'dependsOn': ['wait'], 'command': ['true']},
    ], maxActiveTasks=1)],
    Expected(S, {'wait': TI(S, 1), 'produce': TI(S, 1), 'after': TI(S, 1)}),
)

SENSOR_FILE = Scenario(
    'sensor-file', "The built-in file sensor: a templated glob plus a marker file that must sit beside the matches.",
    lambda ctx: [dag('sensor-file', [
        {'name': 'produce', 'command': sh(f'mkdir -p {ctx.data}/in/2026-11-01; echo 7 > {ctx.data}/in/2026-11-01/a.csv'
                                          f'; sleep 1.5; touch {ctx.data}/in/2026-11-01/_SUCCESS')},
        {'name': 'wait', 'sensor': {'mode': 'reschedule', 'pokeInterval': '1s', 'timeout': '60s',
                                    'file': {'path': f'{ctx.data}/in/{{{{ ds }}}}/*.csv', 'marker': '_SUCCESS'}}},
        {'name': 'after', 'dependsOn': ['wait'], 'command': ['test', '-f', f'{ctx.data}/in/2026-11-01/_SUCCESS']},
    ], defaults=shared(ctx))],
    Expected(S, {'produce': TI(S, 1), 'wait': TI(S, 1), 'after': TI(S, 1)}),
)

SENSOR_HTTP = Scenario(
    'sensor-http', "The built-in http sensor: met when the URL answers an expected status and the JSONPath has the "
                   "expected value.",
    lambda ctx: [dag('sensor-http', [
        {'name': 'produce', 'command': sh(f'echo \'{{"ready": false}}\' > {ctx.data}/status.json; sleep 1.5; '
                                          f'echo \'{{"ready": true}}\' > {ctx.data}/new.json; '
                                          f'mv {ctx.data}/new.json {ctx.data}/status.json')},
        {'name': 'wait', 'sensor': {'mode': 'poke', 'pokeInterval': '1s', 'timeout': '60s',
                                    'http': {'url': f'{ctx.web_url}/status.json', 'expectedStatus': [200],
                                             'jsonPath': '$.ready', 'expectedValue': True}}},
        {'name': 'after', 'dependsOn': ['wait'], 'command': ['true']},
    ])],
    Expected(S, {'produce': TI(S, 1), 'wait': TI(S, 1), 'after': TI(S, 1)}),
    web=True,
)

SENSOR_TIMEOUT = Scenario(
    'sensor-timeout', "A sensor past its timeout fails without retrying, or is skipped with softFail (in both modes); "
                      "a check failing otherwise than 75 is retried.",
    lambda ctx: [dag('sensor-timeout', [
        {'name': 'never', 'command': sh('exit 75'),
         'sensor': {'mode': 'reschedule', 'pokeInterval': '1s', 'timeout': '2s'}},
        {'name': 'never_soft', 'command': sh('exit 75'),
         'sensor': {'mode': 'reschedule', 'pokeInterval': '1s', 'timeout': '2s', 'softFail': True}},
        {'name': 'never_poke_soft', 'command': sh('exit 75'),
         'sensor': {'mode': 'poke', 'pokeInterval': '1s', 'timeout': '2s', 'softFail': True}},
        {'name': 'broken', 'command': sh('echo cannot check; exit 2'),
         'sensor': {'pokeInterval': '1s', 'timeout': '60s'}},
        {'name': 'after_never', 'dependsOn': ['never'], 'command': ['true']},
        {'name': 'after_soft', 'dependsOn': ['never_soft'], 'command': ['true']},
    ], defaults={'retries': 1, 'retryDelay': '0s'})],
    Expected(F, {'never': TI(F, 1), 'never_soft': TI(K, 1), 'never_poke_soft': TI(K, 1),
                 'broken': TI(F, 2, log=('cannot check',)), 'after_never': TI(U, 0), 'after_soft': TI(K, 0)}),
)

TRIGGER = Scenario(
    'trigger-dag', "trigger: a manual run of another DAG with templated conf, run id and logical date; its run id is "
                   "the trigger task's XCom; with waitForCompletion the task fails when that run fails.",
    lambda ctx: [
        dag('trigger-dag', [
            {'name': 'kick', 'trigger': {'dag': 'child-ok', 'conf': {'who': '{{ dag_run.run_id }}', 'day': '{{ ds }}'},
                                         'triggerRunId': 'from-parent', 'logicalDate': '{{ logical_date }}',
                                         'waitForCompletion': True, 'pokeInterval': '1s'}},
            {'name': 'kick_bad', 'trigger': {'dag': 'child-bad', 'waitForCompletion': True, 'pokeInterval': '1s'}},
            {'name': 'after', 'dependsOn': ['kick'], 'command': ['true']},
        ]),
        dag('child-ok', [
            {'name': 'greet', 'command': ['echo', 'hello {{ dag_run.conf.who }} on {{ dag_run.conf.day }}']},
        ]),
        dag('child-bad', [{'name': 'boom', 'command': sh('exit 1')}]),
    ],
    Expected(F, {'kick': TI(S, 1, xcom={'return_value': 'from-parent'}), 'kick_bad': TI(F, 1), 'after': TI(S, 1)},
             others={'child-ok': Expected(S, {'greet': TI(S, 1, log=(f'hello {RUN_ID} on 2026-11-01',))},
                                          run_type='manual', conf={'who': RUN_ID, 'day': '2026-11-01'}),
                     'child-bad': Expected(F, {'boom': TI(F, 1)}, run_type='manual')}),
)

EXTERNAL = Scenario(
    'external-task', "sensor.externalTask: waits for a task (or the whole run) of another DAG's run an executionDelta "
                     "earlier to reach allowedStates; failedStates fail it; a missing run times out (softFail: skip).",
    lambda ctx: [
        dag('external-task', [
            {'name': 'wait_load', 'sensor': {'pokeInterval': '1s', 'timeout': '30s', 'externalTask': {
                'dag': 'upstream', 'task': 'load', 'executionDelta': '1h'}}},
            {'name': 'wait_run_failed', 'sensor': {'mode': 'reschedule', 'pokeInterval': '1s', 'timeout': '30s',
                                                   'externalTask': {'dag': 'upstream', 'executionDelta': '1h',
                                                                    'allowedStates': ['failed']}}},
            {'name': 'wait_broken', 'sensor': {'mode': 'reschedule', 'pokeInterval': '1s', 'timeout': '30s',
                                               'externalTask': {'dag': 'upstream', 'task': 'broken',
                                                                'executionDelta': '1h', 'failedStates': ['failed']}}},
            {'name': 'wait_missing', 'sensor': {'mode': 'reschedule', 'pokeInterval': '1s', 'timeout': '2s',
                                                'softFail': True,
                                                'externalTask': {'dag': 'upstream', 'executionDelta': '2h'}}},
            {'name': 'report', 'dependsOn': ['wait_load'], 'command': ['true']},
        ]),
        dag('upstream', [{'name': 'load', 'command': ['true']}, {'name': 'broken', 'command': sh('exit 1')}]),
    ],
    Expected(F, {'wait_load': TI(S, 1), 'wait_run_failed': TI(S, 1), 'wait_broken': TI(F, 1),
                 'wait_missing': TI(K, 1), 'report': TI(S, 1)},
             others={'upstream': Expected(F, {'load': TI(S, 1), 'broken': TI(F, 1)})}),
    before=(Prior('upstream', '2026-10-31T23:00:00+00:00'),),
)

WAITING: list[Scenario] = [_command_sensor('poke'), _command_sensor('reschedule'), SENSOR_SLOT, SENSOR_FILE,
                           SENSOR_HTTP, SENSOR_TIMEOUT, TRIGGER, EXTERNAL]
