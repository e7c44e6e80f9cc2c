"""What kubedag notifies, and the bodies it sends: pure functions of kubedag.core.notify, no I/O."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from kubedag.core.engine import DagRun, TaskInstance
from kubedag.core.notify import (
    Notification,
    next_sla_check,
    payload,
    run_notifications,
    slack_payload,
    sla_misses,
    tail,
    task_notifications,
)
from kubedag.core.spec import parse_dag
from kubedag.core.spec.models import Notifier
from kubedag.core.states import DagRunState, RunType, TaskInstanceState

S = TaskInstanceState
LOGICAL = datetime(2026, 1, 1, tzinfo=timezone.utc)
INTERVAL_END = datetime(2026, 1, 2, tzinfo=timezone.utc)
FAIL_HOOK = {"webhook": {"url": "http://hooks.example/fail"}}
SLACK = {"slack": {"webhookUrlFrom": {"name": "slack", "key": "url"}, "channel": "#alerts"}}


def manifest(tasks: list[dict], **spec) -> dict:
    return {
        "apiVersion": "kubedag.io/v1alpha1",
        "kind": "DAG",
        "metadata": {"name": "etl"},
        "spec": {"schedule": "@daily", "startDate": "2025-01-01", "tasks": tasks, **spec},
    }


def run_of(run_type: RunType = RunType.SCHEDULED, **kw) -> DagRun:
    return DagRun(
        dag_id="etl",
        run_id=f"{run_type}__2026-01-01T00:00:00+00:00",
        run_type=run_type,
        logical_date=LOGICAL,
        data_interval_start=LOGICAL,
        data_interval_end=INTERVAL_END,
        **kw,
    )


def notification(**kw) -> Notification:
    base = dict(
        event="task_failure", dag_id="etl", run_id="scheduled__2026-01-01T00:00:00+00:00", logical_date=LOGICAL,
        task_id="load", try_number=2, state="failed", reason="exit code 1", log_tail="line 1\nline 2",
    )
    return Notification(**{**base, **kw})


# -- payloads -------------------------------------------------------------------------------------


def test_webhook_payload_has_the_documented_keys_and_iso_utc_dates():
    body = payload(notification(), sent_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert body == {
        "event": "task_failure",
        "dag_id": "etl",
        "run_id": "scheduled__2026-01-01T00:00:00+00:00",
        "logical_date": "2026-01-01T00:00:00Z",
        "task_id": "load",
        "try_number": 2,
        "state": "failed",
        "reason": "exit code 1",
        "log_tail": "line 1\nline 2",
        "sent_at": "2026-01-02T03:04:05Z",
    }
    json.dumps(body)  # JSON-ready


def test_webhook_payload_of_a_run_event_has_null_task_fields_and_sent_at_defaults_to_now():
    n = Notification(event="dag_success", dag_id="etl", run_id="r", logical_date=LOGICAL, state="success")
    body = payload(n)
    assert body["task_id"] is None and body["try_number"] is None and body["log_tail"] is None
    sent_at = datetime.fromisoformat(body["sent_at"].replace("Z", "+00:00"))
    assert abs(datetime.now(timezone.utc) - sent_at) < timedelta(minutes=1)


def test_notification_rejects_unknown_events_and_naive_dates():
    with pytest.raises(ValueError, match="unknown notification event"):
        notification(event="task_exploded")
    with pytest.raises(ValueError, match="timezone-aware"):
        notification(logical_date=datetime(2026, 1, 1))


def test_slack_payload_has_text_header_fields_reason_log_code_block_and_channel():
    body = slack_payload(notification(), "#alerts")
    assert body["channel"] == "#alerts"
    assert "Task failed: etl.load" in body["text"] and "exit code 1" in body["text"]
    header, fields, reason, logs = body["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert "Task failed: etl.load" in header["text"]["text"]
    texts = [f["text"] for f in fields["fields"]]
    assert texts == [
        "*DAG*\netl",
        "*Run*\nscheduled__2026-01-01T00:00:00+00:00",
        "*Logical date*\n2026-01-01T00:00:00Z",
        "*Task*\nload",
        "*Try*\n2",
        "*State*\nfailed",
    ]
    assert reason["text"]["text"] == "*Reason*\nexit code 1"
    assert logs["text"]["text"] == "*Log tail*\n```\nline 1\nline 2\n```"


def test_slack_payload_without_channel_reason_or_log_and_for_a_run():
    n = Notification(event="dag_failure", dag_id="etl", run_id="r1", logical_date=LOGICAL, state="failed")
    body = slack_payload(n)
    assert "channel" not in body
    assert [b["type"] for b in body["blocks"]] == ["header", "section"]
    assert "DAG run failed: etl" in body["blocks"][0]["text"]["text"]
    assert [f["text"].split("\n")[0] for f in body["blocks"][1]["fields"]] == ["*DAG*", "*Run*", "*Logical date*", "*State*"]


def test_slack_payload_escapes_mrkdwn_and_keeps_a_long_log_within_slack_limits():
    long_log = "\n".join(f"line {i} <tag> & ```" for i in range(200)) + "\nthe end"
    body = slack_payload(notification(reason="a < b & c", log_tail=long_log))
    reason, logs = body["blocks"][2]["text"]["text"], body["blocks"][3]["text"]["text"]
    assert reason == "*Reason*\na &lt; b &amp; c"
    assert len(logs) <= 3000 and logs.endswith("the end\n```")
    code = logs.removeprefix("*Log tail*\n```\n").removesuffix("\n```")
    assert "```" not in code and "<" not in code  # the block cannot be closed early or inject links
    assert code.startswith("line ")  # cut at a line boundary
    assert len(body["blocks"][0]["text"]["text"]) <= 150


def test_masking_applies_to_reason_and_log_tail_of_both_bodies():
    def mask(text: str) -> str:
        return text.replace("hunter2", "***")

    n = notification(reason="login failed for hunter2", log_tail="password=hunter2\nbye")
    for body in (payload(n, mask=mask), slack_payload(n, "#c", mask=mask)):
        dumped = json.dumps(body)
        assert "hunter2" not in dumped and "***" in dumped


def test_a_failing_mask_hides_the_field_instead_of_leaking_it():
    def broken(text: str) -> str:
        raise RuntimeError("boom")

    body = payload(notification(reason="secret hunter2", log_tail="hunter2"), mask=broken)
    assert body["reason"] == body["log_tail"] == "(hidden: masking failed)"


def test_tail_keeps_the_last_50_lines_within_4_kib():
    assert tail(None) is None and tail("  \n") is None
    text = "\n".join(f"line {i}" for i in range(100)) + "\n"
    assert tail(text).splitlines() == [f"line {i}" for i in range(50, 100)]
    wide = "\n".join("x" * 100 + str(i) for i in range(50))
    kept = tail(wide)
    assert len(kept.encode()) <= 4096 and kept.endswith("x49")
    assert all(line.startswith("x" * 100) for line in kept.splitlines())  # whole lines only
    assert tail("é" * 5000).encode() == ("é" * 2048).encode()  # one huge line keeps its end, valid UTF-8


# -- task transitions ------------------------------------------------------------------------------


@pytest.fixture
def dag():
    return parse_dag(manifest(
        [
            {"name": "extract", "command": ["true"]},
            {"name": "load", "command": ["true"], "dependsOn": ["extract"],
             "onSuccess": [{"webhook": {"url": "http://hooks.example/ok"}}]},
            {"name": "quiet", "command": ["true"], "onFailure": [], "onRetry": []},
        ],
        defaults={"retries": 1, "onFailure": [FAIL_HOOK, SLACK], "onRetry": [{"webhook": {"url": "http://hooks.example/retry"}}]},
        onFailure=[FAIL_HOOK],
        onSuccess=[{"webhook": {"url": "http://hooks.example/dag-ok"}}],
    ))


def ti(task_id: str, state: S, try_number: int = 1, **kw) -> TaskInstance:
    return TaskInstance(task_id=task_id, state=state, try_number=try_number, **kw)


def test_a_task_entering_failed_notifies_each_on_failure_notifier_with_the_log_tail(dag):
    out = task_notifications(
        dag, run_of(), ti("extract", S.RUNNING, 2), ti("extract", S.FAILED, 2, reason="exit code 3"),
        log=lambda: "\n".join(f"l{i}" for i in range(80)),
    )
    assert [n for n, _ in out] == [Notifier.model_validate(FAIL_HOOK), Notifier.model_validate(SLACK)]  # from defaults
    n = out[0][1]
    assert (n.event, n.dag_id, n.task_id, n.try_number, n.state, n.reason) == (
        "task_failure", "etl", "extract", 2, "failed", "exit code 3"
    )
    assert n.logical_date == LOGICAL and n.run_id == "scheduled__2026-01-01T00:00:00+00:00"
    assert n.log_tail.splitlines() == [f"l{i}" for i in range(30, 80)]


def test_a_retried_failure_notifies_on_retry_not_on_failure(dag):
    [(notifier, n)] = task_notifications(dag, run_of(), ti("extract", S.RUNNING), ti("extract", S.UP_FOR_RETRY), log="oops")
    assert notifier.webhook.url == "http://hooks.example/retry"
    assert (n.event, n.state, n.try_number, n.log_tail) == ("task_retry", "up_for_retry", 1, "oops")


def test_success_notifies_on_success_without_reading_the_log(dag):
    def log():
        raise AssertionError("the log is not read for a success")

    [(notifier, n)] = task_notifications(dag, run_of(), ti("load", S.RUNNING), ti("load", S.SUCCESS), log=log)
    assert notifier.webhook.url == "http://hooks.example/ok"
    assert (n.event, n.state, n.log_tail) == ("task_success", "success", None)


def test_upstream_failed_skipped_and_other_states_notify_nothing(dag):
    # Airflow sets upstream_failed in its trigger-rule dep and calls no on_failure_callback.
    for state in (S.UPSTREAM_FAILED, S.SKIPPED, S.REMOVED, S.QUEUED, S.RUNNING, S.UP_FOR_RESCHEDULE, S.NONE):
        assert task_notifications(dag, run_of(), ti("load", S.SCHEDULED), ti("load", state)) == []


def test_only_entering_a_state_notifies_and_a_later_try_enters_again(dag):
    run = run_of()
    assert task_notifications(dag, run, ti("extract", S.FAILED), ti("extract", S.FAILED)) == []
    assert len(task_notifications(dag, run, None, ti("extract", S.FAILED))) == 2
    # a cleared task that failed again between two observations
    assert len(task_notifications(dag, run, ti("extract", S.FAILED, 1), ti("extract", S.FAILED, 2))) == 2


def test_no_notifier_for_the_event_or_unknown_task_notifies_nothing(dag):
    run = run_of()
    assert task_notifications(dag, run, ti("quiet", S.RUNNING), ti("quiet", S.FAILED), log=lambda: 1 / 0) == []
    assert task_notifications(dag, run, ti("extract", S.RUNNING), ti("extract", S.SUCCESS)) == []
    assert task_notifications(dag, run, None, ti("gone", S.FAILED)) == []


# -- run transitions -------------------------------------------------------------------------------


def test_a_run_entering_failed_or_success_notifies_the_dags_notifiers(dag):
    running = run_of(state=DagRunState.RUNNING)
    failed = run_of(state=DagRunState.FAILED, reason="task_failure: leaf task load (failed)")
    [(notifier, n)] = run_notifications(dag, running, failed)
    assert notifier == Notifier.model_validate(FAIL_HOOK)
    assert (n.event, n.task_id, n.try_number, n.state, n.reason) == (
        "dag_failure", None, None, "failed", "task_failure: leaf task load (failed)"
    )
    [(notifier, n)] = run_notifications(dag, running, run_of(state=DagRunState.SUCCESS))
    assert notifier.webhook.url == "http://hooks.example/dag-ok" and n.event == "dag_success"


def test_an_unfinished_or_unchanged_run_notifies_nothing(dag):
    assert run_notifications(dag, None, run_of(state=DagRunState.RUNNING)) == []
    assert run_notifications(dag, run_of(state=DagRunState.FAILED), run_of(state=DagRunState.FAILED)) == []
    quiet = parse_dag(manifest([{"name": "a", "command": ["true"]}]))
    assert run_notifications(quiet, None, run_of(state=DagRunState.FAILED)) == []


# -- SLA -------------------------------------------------------------------------------------------


@pytest.fixture
def sla_dag():
    return parse_dag(manifest(
        [
            {"name": "a", "command": ["true"], "sla": "1h"},
            {"name": "b", "command": ["true"], "dependsOn": ["a"], "sla": "2h"},
            {"name": "c", "command": ["true"]},
        ],
        onSlaMiss=[FAIL_HOOK],
    ))


def at(delta: timedelta) -> datetime:
    return INTERVAL_END + delta


def test_an_sla_is_measured_from_the_end_of_the_data_interval(sla_dag):
    run = run_of(state=DagRunState.RUNNING)
    tis = {"a": ti("a", S.RUNNING, start_date=at(timedelta(0)))}
    assert sla_misses(sla_dag, run, tis, at(timedelta(minutes=59))) == []
    [(task_id, n)] = sla_misses(sla_dag, run, tis, at(timedelta(hours=1)))
    assert task_id == "a"
    assert (n.event, n.dag_id, n.run_id, n.task_id, n.try_number, n.state, n.log_tail) == (
        "sla_miss", "etl", run.run_id, "a", 1, "running", None
    )
    assert "1h" in n.reason and "2026-01-02T01:00:00Z" in n.reason and "still running" in n.reason


def test_success_or_skipped_by_the_deadline_meets_the_sla(sla_dag):
    run = run_of()
    tis = {"a": ti("a", S.SUCCESS, end_date=at(timedelta(hours=1))), "b": ti("b", S.SKIPPED, end_date=at(timedelta(0)))}
    assert sla_misses(sla_dag, run, tis, at(timedelta(days=3))) == []
    assert next_sla_check(sla_dag, run, tis, at(timedelta(0))) is None


def test_failed_not_started_or_late_tasks_miss_their_sla(sla_dag):
    run = run_of(state=DagRunState.FAILED)
    late = {"a": ti("a", S.SUCCESS, end_date=at(timedelta(hours=1, seconds=1)))}
    [(task_id, n)] = sla_misses(sla_dag, run, late, at(timedelta(hours=1, minutes=5)))
    assert task_id == "a" and "success at 2026-01-02T01:00:01Z" in n.reason
    failed = {"a": ti("a", S.FAILED, 2)}
    missed = dict(sla_misses(sla_dag, run, failed, at(timedelta(hours=3))))
    assert list(missed) == ["a", "b"]  # DAG order; c has no sla
    assert (missed["a"].state, missed["a"].try_number) == ("failed", 2)
    assert (missed["b"].state, missed["b"].try_number) == ("none", 0)  # never created: not started


def test_each_task_is_reported_once_per_run(sla_dag):
    run = run_of()
    already: set[str] = set()
    first = sla_misses(sla_dag, run, {}, at(timedelta(hours=1)), already)
    already |= {task_id for task_id, _ in first}
    assert already == {"a"}
    assert [t for t, _ in sla_misses(sla_dag, run, {}, at(timedelta(hours=5)), already)] == ["b"]
    assert sla_misses(sla_dag, run, {}, at(timedelta(hours=5)), {"a", "b"}) == []


def test_manual_and_backfill_runs_are_not_checked(sla_dag):
    # Airflow 2: "Manually-triggered tasks ... will not be checked for an SLA miss".
    for run_type in (RunType.MANUAL, RunType.BACKFILL):
        run = run_of(run_type)
        assert sla_misses(sla_dag, run, {}, at(timedelta(days=1))) == []
        assert next_sla_check(sla_dag, run, {}, at(timedelta(0))) is None


def test_next_sla_check_is_the_nearest_deadline_still_to_be_met(sla_dag):
    run = run_of()
    assert next_sla_check(sla_dag, run, {}, LOGICAL) == at(timedelta(hours=1))
    done_a = {"a": ti("a", S.SUCCESS, end_date=at(timedelta(minutes=5)))}
    assert next_sla_check(sla_dag, run, done_a, LOGICAL) == at(timedelta(hours=2))
    assert next_sla_check(sla_dag, run, {}, LOGICAL, already={"a"}) == at(timedelta(hours=2))
    # a deadline that has come is sla_misses' business at that instant
    assert next_sla_check(sla_dag, run, {}, at(timedelta(hours=1))) == at(timedelta(hours=2))
    assert next_sla_check(sla_dag, run, {}, at(timedelta(hours=2))) is None


def test_a_task_inherits_sla_from_defaults():
    dag = parse_dag(manifest(
        [{"name": "a", "command": ["true"]}, {"name": "b", "command": ["true"], "sla": "2h"}],
        defaults={"sla": "30m"},
    ))
    assert [t for t, _ in sla_misses(dag, run_of(), {}, at(timedelta(minutes=30)))] == ["a"]


def test_sla_functions_reject_naive_now(sla_dag):
    with pytest.raises(ValueError, match="timezone-aware"):
        sla_misses(sla_dag, run_of(), {}, datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="timezone-aware"):
        next_sla_check(sla_dag, run_of(), {}, datetime(2026, 1, 2))
