"""Issue 13: a long-running process (controller, scheduler, standalone) whose metadata DB is unreachable at start
waits for it with capped backoff, one line per attempt, instead of exiting into a crash loop."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from kubedag.store.db import DB_WAIT_MAX, open_store_waiting


def test_a_db_that_appears_later_is_opened_after_one_line_per_failed_attempt(tmp_path):
    path = tmp_path / "kubedag.db"
    path.mkdir()  # a folder where the DB file should be: SQLite cannot open it (unreachable)
    said, waits = [], []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            path.rmdir()  # mended: the next attempt opens (creates) the DB

    engine, sessions = open_store_waiting(f"sqlite:///{path}", say=said.append, sleep=sleep)
    try:
        with sessions() as session:
            assert session.execute(sa.text("select count(*) from dag_run")).scalar() == 0  # migrated to head
    finally:
        engine.dispose()
    assert waits == [0.5, 1.0, 2.0]
    assert len(said) == 3
    assert all(line.startswith("metadata DB unreachable at start: OperationalError: ") for line in said), said
    assert said[0].endswith("retrying in 0.5 s") and said[2].endswith("retrying in 2 s")


def test_waits_are_capped_and_no_password_is_said():
    said, waits = [], []

    class Stop(Exception):
        pass

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 9:
            raise Stop  # SIGTERM, in the test's terms

    with pytest.raises(Stop):
        open_store_waiting("postgresql://kubedag:hunter2@127.0.0.1:1/kubedag", say=said.append, sleep=sleep)
    assert waits == [0.5, 1, 2, 4, 8, 16, DB_WAIT_MAX, DB_WAIT_MAX, DB_WAIT_MAX]
    assert len(said) == 9 and not any("hunter2" in line for line in said)
    assert "127.0.0.1" in said[0]  # the driver names where it tried, as the operator needs


def test_an_error_that_waiting_cannot_mend_is_raised_at_once(tmp_path):
    with pytest.raises(sa.exc.ArgumentError):
        open_store_waiting("nosuchdialect://x", say=lambda line: pytest.fail(line), sleep=lambda s: pytest.fail("slept"))
