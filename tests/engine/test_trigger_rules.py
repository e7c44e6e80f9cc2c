"""Trigger rules against Airflow 2.10's TriggerRuleDep._evaluate_direct_relatives (flag_upstream_failed=True).

P = passes, W = waits (not passed, no state change), UF = set upstream_failed, SK = set skipped.
"""

from __future__ import annotations

import pytest

from kubedag.core.engine import CHECKS, RuleResult, UpstreamSummary, evaluate, summarize
from kubedag.core.states import TaskInstanceState as S
from kubedag.core.states import TriggerRule as TR

# Upstream combinations of three direct upstream tasks.
COMBOS = {
    "all_success": (S.SUCCESS, S.SUCCESS, S.SUCCESS),
    "one_failed": (S.SUCCESS, S.FAILED, S.SUCCESS),
    "one_skipped": (S.SUCCESS, S.SKIPPED, S.SUCCESS),
    "mixed_done": (S.SUCCESS, S.FAILED, S.SKIPPED),
    "success_and_running": (S.SUCCESS, S.RUNNING, S.NONE),
    "failed_and_running": (S.FAILED, S.RUNNING, S.SUCCESS),
    "all_skipped": (S.SKIPPED, S.SKIPPED, S.SKIPPED),
    "upstream_failed": (S.UPSTREAM_FAILED, S.SUCCESS, S.SUCCESS),
    "all_failed": (S.FAILED, S.FAILED, S.UPSTREAM_FAILED),
    "skipped_and_running": (S.SKIPPED, S.RUNNING, S.UP_FOR_RETRY),
    "none_done": (S.RUNNING, S.NONE, S.QUEUED),
    "all_upstream_failed": (S.UPSTREAM_FAILED, S.UPSTREAM_FAILED, S.UPSTREAM_FAILED),
}

P, W, UF, SK = "P", "W", S.UPSTREAM_FAILED, S.SKIPPED
ORDER = list(COMBOS)

# Expected outcome per rule, in the order of COMBOS:
#  all_success, one_failed, one_skipped, mixed_done, success_and_running, failed_and_running,
#  all_skipped, upstream_failed, all_failed, skipped_and_running, none_done, all_upstream_failed
EXPECTED = {
    # `if upstream_failed or failed: UPSTREAM_FAILED elif skipped: SKIPPED` -- decided before all are
    # done; a failure wins over a skip (mixed_done -> upstream_failed).
    TR.ALL_SUCCESS: [P, UF, SK, UF, W, UF, SK, UF, UF, SK, W, UF],
    # `if success or skipped: SKIPPED` -- even while other upstream tasks still run; upstream_failed
    # counts as a failure (`num_success = upstream - failed - upstream_failed`).
    TR.ALL_FAILED: [SK, SK, SK, SK, SK, SK, SK, SK, P, SK, W, P],
    # only `if not upstream_done: fail`; never changes the state.
    TR.ALL_DONE: [P, P, P, P, W, W, P, P, P, W, W, P],
    # `if success or failed or upstream_failed: SKIPPED`
    TR.ALL_SKIPPED: [SK, SK, SK, SK, SK, SK, P, SK, SK, W, W, SK],
    # `if upstream_done and done == skipped: SKIPPED elif upstream_done and success <= 0: UPSTREAM_FAILED`;
    # passes on the first success without waiting for the rest.
    TR.ONE_SUCCESS: [P, P, P, P, P, P, SK, P, UF, W, W, UF],
    # `if upstream_done and not (failed or upstream_failed): SKIPPED`; upstream_failed counts as failed.
    TR.ONE_FAILED: [SK, P, SK, P, W, P, SK, P, P, W, W, P],
    # passes on `success + failed > 0` only: upstream_failed does not count as done here, so all
    # upstream_failed -> `if upstream_done and not (failed or success): SKIPPED`.
    TR.ONE_DONE: [P, P, P, P, P, P, SK, P, P, W, W, SK],
    # `if upstream_failed or failed: UPSTREAM_FAILED`; else waits for success + skipped == upstream.
    TR.NONE_FAILED: [P, UF, P, UF, W, UF, P, UF, UF, W, W, UF],
    # as none_failed, plus `elif skipped == upstream: SKIPPED`.
    TR.NONE_FAILED_MIN_ONE_SUCCESS: [P, UF, P, UF, W, UF, SK, UF, UF, W, W, UF],
    # `if skipped: SKIPPED` at once; otherwise `if not upstream_done: fail`.
    TR.NONE_SKIPPED: [P, P, SK, SK, W, W, SK, P, P, SK, W, P],
    TR.ALWAYS: [P] * 12,
}


def test_table_covers_every_rule():
    assert set(EXPECTED) == set(TR) == set(CHECKS)
    assert all(len(v) == len(COMBOS) for v in EXPECTED.values())


CASES = [(rule, combo, EXPECTED[rule][i]) for rule in EXPECTED for i, combo in enumerate(ORDER)]


@pytest.mark.parametrize(("rule", "combo", "expected"), CASES, ids=[f"{r}-{c}" for r, c, _ in CASES])
def test_rule_table(rule, combo, expected):
    result = evaluate(rule, summarize(COMBOS[combo]))
    assert isinstance(result, RuleResult)
    assert result.reason
    if expected == P:
        assert result.passed and result.new_state is None
    elif expected == W:
        assert not result.passed and result.new_state is None
    else:
        assert not result.passed and result.new_state == expected


@pytest.mark.parametrize("rule", list(TR))
def test_no_upstream_always_passes(rule):
    # TriggerRuleDep._get_dep_statuses: "The task instance did not have any upstream tasks."
    result = evaluate(rule, summarize([]))
    assert result.passed and result.new_state is None


def test_summarize_counts_finished_only():
    s = summarize([S.SUCCESS, S.SUCCESS, S.FAILED, S.SKIPPED, S.UPSTREAM_FAILED, S.REMOVED, S.RUNNING, S.NONE])
    assert s == UpstreamSummary(success=2, skipped=1, failed=1, upstream_failed=1, removed=1, done=6, total=8)
    assert not s.upstream_done
    assert summarize([S.SUCCESS]).upstream_done


def test_reason_names_rule_and_counts():
    r = evaluate(TR.ALL_SUCCESS, summarize([S.SUCCESS, S.SUCCESS, S.FAILED, S.RUNNING]))
    assert r.reason == (
        "trigger rule all_success requires all upstream tasks to have succeeded, but found "
        "1 failed, 0 upstream_failed, 0 skipped (upstream: 3 done of 4; 2 success, 1 failed)"
    )
    w = evaluate(TR.ALL_DONE, summarize([S.SUCCESS, S.RUNNING]))
    assert w.reason == (
        "trigger rule all_done requires all upstream tasks to be done, but found 1 not done "
        "(upstream: 1 done of 2; 1 success)"
    )


def test_removed_upstream_never_satisfies_all_success():
    # Non-mapped: `num_failures = upstream - success` counts the removed upstream; nothing sets a
    # state, so the task waits forever (the run ends as a deadlock).
    r = evaluate(TR.ALL_SUCCESS, summarize([S.SUCCESS, S.REMOVED]))
    assert not r.passed and r.new_state is None
    # ...but all_done only needs them finished, and removed is finished.
    assert evaluate(TR.ALL_DONE, summarize([S.SUCCESS, S.REMOVED])).passed


def test_one_success_waits_while_undecided_but_not_after():
    # all but one failed, the last still running: not decided yet
    assert evaluate(TR.ONE_SUCCESS, summarize([S.FAILED, S.FAILED, S.RUNNING])).new_state is None
    # a mix of skipped and failed once done: upstream_failed (done != skipped)
    r = evaluate(TR.ONE_SUCCESS, summarize([S.SKIPPED, S.FAILED]))
    assert r.new_state == S.UPSTREAM_FAILED


def test_rule_accepts_plain_string():
    assert evaluate("all_done", summarize([S.FAILED])).passed  # type: ignore[arg-type]
