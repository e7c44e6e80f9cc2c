"""Fixtures of the controller's emulated-cluster tests: the project's CRDs served, a fake kubelet, a DB."""
from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests.k8s.conftest import _no_leaks  # noqa: F401 - every thread and pod process must end
from tests.controlplane.fixtures import control_plane  # noqa: F401
from tests.controlplane.servers import (  # noqa: F401
    _chart_identities, _real_with_crds, fake_kubelet, k8s_api, k8s_server, on_both_servers)
from tests.k8s.emulator.fixtures import k8s_api_options  # noqa: F401

#: Tests that also run on the real control plane ([real], marker controlplane): every behaviour of the
#: controller's README. The rest reads emulator-only details (request bodies in the request journal).
ON_BOTH_SERVERS = {
    'test_a_hand_made_run_executes_each_task_in_its_own_pod',
    'test_a_failing_pod_is_retried_with_a_new_pod_and_try_number',
    'test_a_pod_deleted_by_someone_else_fails_its_try',
    'test_max_active_tasks_caps_pods_running_at_once',
    'test_catchup_creates_a_run_per_missed_interval_with_airflow_run_ids',
    'test_without_catchup_only_the_latest_interval_runs',
    'test_max_active_runs_makes_later_intervals_wait',
    'test_a_paused_dag_creates_no_runs_until_unpaused',
    'test_an_invalid_dag_gets_ready_false_while_others_keep_running',
    'test_a_task_without_an_image_makes_the_dag_invalid_on_kubernetes',
    'test_a_controller_killed_mid_run_resumes_without_duplicate_runs_or_pods',
    'test_finished_pods_are_deleted_after_retention_with_their_logs_kept',
    'test_old_runs_beyond_the_history_limit_are_deleted_but_stay_in_the_db',
    'test_the_supermarket_example_runs_on_the_cluster_with_history_in_postgres',
    'test_a_backfill_of_30_days_survives_a_controller_restart_midway',
    'test_a_backfill_of_an_unknown_dag_waits_with_a_condition',
    'test_an_existing_run_is_left_alone_and_deleting_the_backfill_deletes_its_runs',
    'test_an_xcom_reaches_the_next_task_and_a_branch_skips_the_path_not_taken',
    'test_four_file_sensors_reschedule_two_at_a_time_until_their_files_appear',
    'test_a_dag_triggers_another_with_conf_and_waits_for_it',
    'test_an_external_task_sensor_waits_for_the_other_dag_an_execution_delta_earlier',
    'test_clear_with_downstream_reruns_exactly_the_cleared_tasks',
    'test_a_failing_task_posts_to_its_webhook_with_the_log_tail',
    'test_a_pool_caps_two_dags_together',
    'test_variables_and_connections_from_a_configmap_and_a_secret_are_masked_in_the_archived_log',
    'test_dagrun_timeout_fails_the_run_and_deletes_its_pods',
    'test_empty_tasks_succeed_with_no_pod',
    'test_a_backfill_with_reset_dag_runs_clears_an_existing_run_which_runs_again',
    'test_a_pod_deleted_while_the_controller_was_down_fails_its_try_after_the_restart',
    'test_deleting_a_dag_fails_its_hand_made_runs_and_stops_their_pods',
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    on_both_servers(metafunc, ON_BOTH_SERVERS)

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def k8s_crd_files() -> list[pathlib.Path]:
    return sorted((ROOT / 'crds').glob('*.yaml'))


@pytest.fixture
def sqlite_url(tmp_path: pathlib.Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'kubedag.db'}"
