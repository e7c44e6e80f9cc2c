"""Trigger rules: may a task run, given the states of its direct upstream task instances?

A faithful, pure port of Airflow 2.10's ``airflow/ti_deps/deps/trigger_rule_dep.py``
(``TriggerRuleDep._evaluate_direct_relatives`` with ``flag_upstream_failed=True``, which is how the
scheduler's ``DagRun.task_instance_scheduling_decisions`` evaluates it). For every rule there are
three outcomes:

- passed: the task may be started;
- not passed, ``new_state`` set: the rule can never pass; Airflow sets the task instance to
  ``upstream_failed`` or ``skipped`` right away, often before all upstream tasks are done
  (e.g. ``all_success`` with one failed upstream);
- not passed, ``new_state`` None: wait, the upstream tasks have not decided it yet.

Only finished upstream task instances are counted (Airflow's ``_UpstreamTIStates.calculate`` over
``ensure_finished_tis``); ``total`` is the number of direct upstream tasks. Setup/teardown tasks and
mapped tasks do not exist in kubedag, so their branches of Airflow's code are left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kubedag.core.states import FINISHED_STATES, TaskInstanceState, TriggerRule

S = TaskInstanceState


@dataclass(frozen=True)
class UpstreamSummary:
    """Counts of a task's direct upstream task instances by state (Airflow's ``_UpstreamTIStates``).

    ``done`` counts upstream task instances in a finished state (success, failed, skipped,
    upstream_failed, removed); ``total`` counts all direct upstream tasks, finished or not.
    """

    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0
    removed: int = 0
    done: int = 0
    total: int = 0

    @property
    def upstream_done(self) -> bool:
        """True when every upstream task instance is finished (Airflow: ``done >= upstream``)."""
        return self.done >= self.total

    def describe(self) -> str:
        """The counts as a user reads them, e.g. ``"upstream: 3 done of 4; 2 success, 1 failed"``."""
        parts = [
            f"{n} {name}"
            for name, n in (
                ("success", self.success),
                ("failed", self.failed),
                ("upstream_failed", self.upstream_failed),
                ("skipped", self.skipped),
                ("removed", self.removed),
            )
            if n
        ]
        detail = f"; {', '.join(parts)}" if parts else ""
        return f"upstream: {self.done} done of {self.total}{detail}"


def summarize(states: Iterable[TaskInstanceState]) -> UpstreamSummary:
    """Count the states of a task's direct upstream task instances, one state per upstream task."""
    states = list(states)
    counter = Counter(s for s in states if s in FINISHED_STATES)
    return UpstreamSummary(
        success=counter[S.SUCCESS],
        skipped=counter[S.SKIPPED],
        failed=counter[S.FAILED],
        upstream_failed=counter[S.UPSTREAM_FAILED],
        removed=counter[S.REMOVED],
        done=sum(counter.values()),
        total=len(states),
    )


@dataclass(frozen=True)
class RuleResult:
    """The verdict of a trigger rule.

    ``passed``: the task may start. ``new_state``: when the rule can never pass, the state Airflow
    sets (``UPSTREAM_FAILED`` or ``SKIPPED``); None when it passed or must wait. ``reason``: one
    sentence for a user, naming the rule and the upstream counts.
    """

    passed: bool
    reason: str
    new_state: TaskInstanceState | None = None


def _ok(rule: TriggerRule, s: UpstreamSummary) -> RuleResult:
    return RuleResult(True, f"trigger rule {rule} is met ({s.describe()})")


def _no(rule: TriggerRule, s: UpstreamSummary, need: str, found: str, new_state: S | None = None) -> RuleResult:
    return RuleResult(False, f"trigger rule {rule} requires {need}, but found {found} ({s.describe()})", new_state)


def check_all_success(s: UpstreamSummary) -> RuleResult:
    """``all_success``: upstream_failed as soon as one upstream failed, skipped as soon as one skipped."""
    r, need = TriggerRule.ALL_SUCCESS, "all upstream tasks to have succeeded"
    found = f"{s.failed} failed, {s.upstream_failed} upstream_failed, {s.skipped} skipped"
    if s.failed or s.upstream_failed:
        return _no(r, s, need, found, S.UPSTREAM_FAILED)
    if s.skipped:
        return _no(r, s, need, found, S.SKIPPED)
    if s.total - s.success > 0:  # Airflow: num_failures = upstream - success
        return _no(r, s, need, f"{s.total - s.success} not yet succeeded")
    return _ok(r, s)


def check_all_failed(s: UpstreamSummary) -> RuleResult:
    """``all_failed``: upstream_failed counts as failed; skipped as soon as one succeeded or skipped."""
    r, need = TriggerRule.ALL_FAILED, "all upstream tasks to have failed"
    if s.success or s.skipped:
        return _no(r, s, need, f"{s.success} success, {s.skipped} skipped", S.SKIPPED)
    if s.total - s.failed - s.upstream_failed > 0:
        return _no(r, s, need, f"{s.total - s.failed - s.upstream_failed} not yet failed")
    return _ok(r, s)


def check_all_done(s: UpstreamSummary) -> RuleResult:
    """``all_done``: waits until every upstream is finished, whatever its state; never skips."""
    if not s.upstream_done:
        return _no(TriggerRule.ALL_DONE, s, "all upstream tasks to be done", f"{s.total - s.done} not done")
    return _ok(TriggerRule.ALL_DONE, s)


def check_all_skipped(s: UpstreamSummary) -> RuleResult:
    """``all_skipped``: skipped as soon as one upstream succeeded, failed or upstream_failed."""
    r, need = TriggerRule.ALL_SKIPPED, "all upstream tasks to have been skipped"
    if s.success or s.failed or s.upstream_failed:
        found = f"{s.success} success, {s.failed} failed, {s.upstream_failed} upstream_failed"
        return _no(r, s, need, found, S.SKIPPED)
    if s.total - s.skipped > 0:
        return _no(r, s, need, f"{s.total - s.skipped} not yet skipped")
    return _ok(r, s)


def check_one_success(s: UpstreamSummary) -> RuleResult:
    """``one_success``: runs on the first success; once all are done: skipped if all were skipped,
    otherwise upstream_failed."""
    r, need = TriggerRule.ONE_SUCCESS, "at least one upstream task to have succeeded"
    if s.success > 0:
        return _ok(r, s)
    if s.upstream_done and s.done == s.skipped:
        return _no(r, s, need, "all skipped", S.SKIPPED)
    if s.upstream_done:
        return _no(r, s, need, "none", S.UPSTREAM_FAILED)
    return _no(r, s, need, "none yet")


def check_one_failed(s: UpstreamSummary) -> RuleResult:
    """``one_failed``: runs on the first failed or upstream_failed; skipped once all are done without one."""
    r, need = TriggerRule.ONE_FAILED, "at least one upstream task to have failed"
    if s.failed or s.upstream_failed:
        return _ok(r, s)
    if s.upstream_done:
        return _no(r, s, need, "none", S.SKIPPED)
    return _no(r, s, need, "none yet")


def check_one_done(s: UpstreamSummary) -> RuleResult:
    """``one_done``: runs on the first success or failed (upstream_failed and skipped do not count);
    skipped once all are done without one."""
    r, need = TriggerRule.ONE_DONE, "at least one upstream task to have succeeded or failed"
    if s.success + s.failed > 0:
        return _ok(r, s)
    if s.upstream_done:
        return _no(r, s, need, "none", S.SKIPPED)
    return _no(r, s, need, "none yet")


def check_none_failed(s: UpstreamSummary) -> RuleResult:
    """``none_failed``: upstream_failed as soon as one upstream failed; otherwise waits for all to
    have succeeded or been skipped."""
    r, need = TriggerRule.NONE_FAILED, "no upstream task to have failed"
    if s.failed or s.upstream_failed:
        return _no(r, s, need, f"{s.failed} failed, {s.upstream_failed} upstream_failed", S.UPSTREAM_FAILED)
    if s.total - s.success - s.skipped > 0:
        return _no(r, s, need + " and all to be done", f"{s.total - s.success - s.skipped} not yet done")
    return _ok(r, s)


def check_none_failed_min_one_success(s: UpstreamSummary) -> RuleResult:
    """``none_failed_min_one_success``: as ``none_failed``, and skipped when every upstream skipped."""
    r, need = TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, "no upstream task to have failed and one to have succeeded"
    if s.failed or s.upstream_failed:
        return _no(r, s, need, f"{s.failed} failed, {s.upstream_failed} upstream_failed", S.UPSTREAM_FAILED)
    if s.skipped == s.total:
        return _no(r, s, need, "all skipped", S.SKIPPED)
    if s.total - s.success - s.skipped > 0:
        return _no(r, s, need, f"{s.total - s.success - s.skipped} not yet done")
    return _ok(r, s)


def check_none_skipped(s: UpstreamSummary) -> RuleResult:
    """``none_skipped``: skipped as soon as one upstream skipped; otherwise waits for all to be done."""
    r, need = TriggerRule.NONE_SKIPPED, "no upstream task to have been skipped"
    if s.skipped:
        return _no(r, s, need, f"{s.skipped} skipped", S.SKIPPED)
    if not s.upstream_done:
        return _no(r, s, need + " and all to be done", f"{s.total - s.done} not yet done")
    return _ok(r, s)


def check_always(s: UpstreamSummary) -> RuleResult:
    """``always``: passes whatever the upstream states (Airflow returns before counting)."""
    return _ok(TriggerRule.ALWAYS, s)


CHECKS: dict[TriggerRule, Callable[[UpstreamSummary], RuleResult]] = {
    TriggerRule.ALL_SUCCESS: check_all_success,
    TriggerRule.ALL_FAILED: check_all_failed,
    TriggerRule.ALL_DONE: check_all_done,
    TriggerRule.ALL_SKIPPED: check_all_skipped,
    TriggerRule.ONE_SUCCESS: check_one_success,
    TriggerRule.ONE_FAILED: check_one_failed,
    TriggerRule.ONE_DONE: check_one_done,
    TriggerRule.NONE_FAILED: check_none_failed,
    TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS: check_none_failed_min_one_success,
    TriggerRule.NONE_SKIPPED: check_none_skipped,
    TriggerRule.ALWAYS: check_always,
}
"""TriggerRule -> its check; one entry per rule of :class:`~kubedag.core.states.TriggerRule`."""


def evaluate(rule: TriggerRule, summary: UpstreamSummary) -> RuleResult:
    """Evaluate ``rule`` against ``summary``. A task with no upstream task always passes
    (``TriggerRuleDep._get_dep_statuses``: "The task instance did not have any upstream tasks")."""
    if summary.total == 0:
        return RuleResult(True, "the task has no upstream tasks")
    return CHECKS[TriggerRule(rule)](summary)
