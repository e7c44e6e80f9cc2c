"""The previous successful run of a DAG (Airflow's ``DagRun.get_previous_dagrun(state=SUCCESS)``), the source of the
template context's ``prev_*_success`` values, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from kubedag.core.templating import PreviousRun, RunContext, render, template_context
from kubedag.store import repository as repo

from ._helpers import T0, make_run

DAY = dt.timedelta(days=1)


def test_the_latest_success_before_the_run_is_found(Session):  # noqa: N803
    with Session.begin() as s:
        for n, state in enumerate(["success", "success", "failed", "success", "success"]):
            make_run(s, run_id=f"r{n}", logical_date=T0 + n * DAY, state=state,
                     data_interval_start=T0 + n * DAY, data_interval_end=T0 + (n + 1) * DAY)
            repo.set_dag_run_state(s, "etl", f"r{n}", state, start_date=T0 + (n + 1) * DAY,
                                   end_date=T0 + (n + 1) * DAY + dt.timedelta(minutes=5))
        make_run(s, dag_id="other", run_id="x", logical_date=T0 + 2 * DAY, state="success")
    with Session() as s:
        # the run of day 3: day 2 failed, so day 1's success is the previous one
        prev = PreviousRun.of(repo.previous_successful_run(s, "etl", T0 + 3 * DAY))
        assert repo.previous_successful_run(s, "etl", T0) is None  # nothing before the first run
        assert repo.previous_successful_run(s, "nope", T0 + 9 * DAY) is None
    assert prev == PreviousRun(logical_date=T0 + DAY, data_interval_start=T0 + DAY, data_interval_end=T0 + 2 * DAY,
                               start_date=T0 + 2 * DAY, end_date=T0 + 2 * DAY + dt.timedelta(minutes=5))
    context = template_context(RunContext(dag_id="etl", task_id="t", run_id="r3", run_type="scheduled",
                                          logical_date=T0 + 3 * DAY, data_interval_start=T0 + 3 * DAY,
                                          data_interval_end=T0 + 4 * DAY, prev_success=prev))
    assert render("{{ prev_data_interval_start_success | ds }} {{ prev_end_date_success | ts }}", context) == (
        "2026-01-02 2026-01-03T00:05:00+00:00")
    assert PreviousRun.of(None) is None
