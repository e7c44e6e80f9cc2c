"""kubedag.store.config: home directory and database URL from the environment."""

from __future__ import annotations

import pathlib

import platformdirs
import pytest

from kubedag.store import config


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("KUBEDAG_HOME", raising=False)
    monkeypatch.delenv("KUBEDAG_DATABASE_URL", raising=False)


def test_home_defaults_to_platformdirs_and_is_not_created():
    assert config.kubedag_home() == pathlib.Path(platformdirs.user_data_dir("kubedag"))


def test_home_from_env_created_on_demand(monkeypatch, tmp_path):
    home = tmp_path / "a" / "home"
    monkeypatch.setenv("KUBEDAG_HOME", str(home))
    assert config.kubedag_home() == home
    assert not home.exists()
    assert config.ensure_home() == home
    assert home.is_dir()
    assert config.logs_dir() == home / "logs"


def test_relative_home_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KUBEDAG_HOME", "rel")
    assert config.kubedag_home() == tmp_path / "rel"


def test_default_database_url_is_sqlite_in_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBEDAG_HOME", str(tmp_path))
    assert config.database_url() == f"sqlite:///{tmp_path}/kubedag.db"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////x/y.db", "sqlite:////x/y.db"),
    ],
)
def test_database_url_from_env_uses_psycopg3(monkeypatch, given, expected):
    monkeypatch.setenv("KUBEDAG_DATABASE_URL", given)
    assert config.database_url() == expected


def test_make_engine_defaults_to_home_sqlite(monkeypatch, tmp_path):
    from kubedag.store import make_engine

    home = tmp_path / "h"
    monkeypatch.setenv("KUBEDAG_HOME", str(home))
    engine = make_engine()
    try:
        assert engine.url.database == str(home / "kubedag.db")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (home / "kubedag.db").exists()
    finally:
        engine.dispose()


def test_make_engine_rewrites_postgres_url():
    from kubedag.store import make_engine

    engine = make_engine("postgres://u@localhost/db")
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()
