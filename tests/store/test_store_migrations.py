"""Alembic migrations: schema matches the models, upgrade is idempotent, downgrade works."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects import sqlite

from kubedag.store import make_engine, migrate, open_store
from kubedag.store.models import Base, UtcDateTime

TABLES = {"dag", "dag_run", "task_instance", "task_instance_history", "xcom", "job", "backfill"}


def _diffs(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def test_migrated_schema_matches_models(db_url):
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        assert TABLES <= set(sa.inspect(engine).get_table_names())
        assert _diffs(engine) == []
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_reports_revision(db_url):
    engine = make_engine(db_url)
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        migrate.upgrade(engine)  # at head already: no-op
        assert migrate.current_revision(engine) == migrate.head_revision() == "0007"
    finally:
        engine.dispose()


def test_upgrade_from_url_and_open_store(db_url):
    migrate.upgrade(db_url)  # makes and disposes of its own engine
    engine, factory = open_store(db_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
        with factory() as session:
            assert session.execute(sa.text("SELECT count(*) FROM dag")).scalar() == 0
    finally:
        engine.dispose()


def test_downgrade_to_base_then_upgrade_again(db_url):
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        migrate.downgrade(engine, "base")
        assert not TABLES & set(sa.inspect(engine).get_table_names())
        migrate.upgrade(engine)
        assert _diffs(engine) == []
    finally:
        engine.dispose()


def test_migrations_run_without_alembic_ini(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no alembic.ini anywhere near
    cfg = migrate.alembic_config()
    assert cfg.config_file_name is None
    assert (migrate.MIGRATIONS_DIR / "env.py").is_file()
    migrate.upgrade(f"sqlite:///{tmp_path / 'x.db'}")


def test_utc_datetime_rejects_naive_values():
    col = UtcDateTime()
    with pytest.raises(ValueError, match="naive"):
        col.process_bind_param(dt.datetime(2026, 1, 1), sqlite.dialect())


def test_head_revision_constant_matches_the_migration_scripts():
    # upgrade() skips Alembic when the DB is at HEAD_REVISION; a new script must move the constant.
    assert migrate.HEAD_REVISION == migrate.head_revision()


def test_upgrade_from_0001_keeps_data_and_adds_xcom(db_url):
    # A DB made by the previous release is upgraded in place; downgrading drops only the xcom table.
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine, "0001")
        assert "xcom" not in sa.inspect(engine).get_table_names()
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO dag (dag_id, spec, is_paused, created_at, updated_at) VALUES (:d, :s, :p, :t, :t)"),
                {"d": "etl", "s": "{}", "p": False, "t": dt.datetime(2026, 1, 1)},
            )
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        assert _diffs(engine) == []
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT dag_id FROM dag")).scalars().all() == ["etl"]
        migrate.downgrade(engine, "0001")
        names = set(sa.inspect(engine).get_table_names())
        assert "xcom" not in names and "dag" in names
    finally:
        engine.dispose()


def test_upgrade_from_0002_keeps_task_instances_and_adds_their_reason(db_url):
    # 0003 adds task_instance.reason (read back with max_tries after a restart); rows already there keep their
    # values and read a NULL reason; downgrading drops only the column.
    engine = make_engine(db_url)
    t = dt.datetime(2026, 1, 1)
    try:
        migrate.upgrade(engine, "0002")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO dag (dag_id, spec, is_paused, created_at, updated_at) "
                                 "VALUES ('etl', '{}', false, :t, :t)"), {"t": t})
            conn.execute(sa.text("INSERT INTO dag_run (dag_id, run_id, run_type, state, logical_date, conf) "
                                 "VALUES ('etl', 'r1', 'manual', 'failed', :t, '{}')"), {"t": t})
            conn.execute(sa.text("INSERT INTO task_instance (dag_id, run_id, task_id, state, try_number, max_tries, "
                                 "updated_at) VALUES ('etl', 'r1', 'load', 'failed', 1, 0, :t)"), {"t": t})
        migrate.upgrade(engine)
        assert _diffs(engine) == []
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT task_id, state, max_tries, reason FROM task_instance")).all()
        assert [tuple(r) for r in rows] == [("load", "failed", 0, None)]
        migrate.downgrade(engine, "0002")
        columns = {c["name"] for c in sa.inspect(engine).get_columns("task_instance")}
        assert "reason" not in columns and "max_tries" in columns
    finally:
        engine.dispose()
