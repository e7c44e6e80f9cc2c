"""Where kubedag keeps its local state, and which database it talks to.

Everything here is read from the environment at call time (nothing is cached),
so tests and the CLI can point kubedag elsewhere by setting variables:

``KUBEDAG_HOME``
    kubedag's home directory. Unset: ``platformdirs.user_data_dir("kubedag")``
    (e.g. ``~/.local/share/kubedag`` on Linux). The directory is *not* created
    by :func:`kubedag_home`; call :func:`ensure_home` for that.

``KUBEDAG_DATABASE_URL``
    SQLAlchemy URL of the metadata database. Unset: a SQLite file
    ``<home>/kubedag.db``. ``postgresql://`` and ``postgres://`` URLs are
    rewritten to ``postgresql+psycopg://`` so that psycopg 3 (the driver
    kubedag depends on) is used rather than SQLAlchemy's default psycopg2.
"""

from __future__ import annotations

import os
import pathlib

import platformdirs

__all__ = [
    "HOME_ENV",
    "DATABASE_URL_ENV",
    "kubedag_home",
    "ensure_home",
    "logs_dir",
    "database_url",
    "normalize_database_url",
]

HOME_ENV = "KUBEDAG_HOME"
DATABASE_URL_ENV = "KUBEDAG_DATABASE_URL"

_PG_PREFIXES = ("postgresql://", "postgres://")
_PG_DRIVER_PREFIX = "postgresql+psycopg://"


def kubedag_home() -> pathlib.Path:
    """Return kubedag's home directory, without creating it.

    ``$KUBEDAG_HOME`` (``~`` expanded, made absolute) if set and non-empty,
    else ``platformdirs.user_data_dir("kubedag")``.
    """
    env = os.environ.get(HOME_ENV)
    if env:
        return pathlib.Path(env).expanduser().absolute()
    return pathlib.Path(platformdirs.user_data_dir("kubedag"))


def ensure_home() -> pathlib.Path:
    """Create :func:`kubedag_home` (and parents) if missing; return it.

    Raises ``OSError`` if the directory cannot be created.
    """
    home = kubedag_home()
    home.mkdir(parents=True, exist_ok=True)
    return home


def logs_dir() -> pathlib.Path:
    """Return ``<home>/logs``, where task logs are archived (not created here)."""
    return kubedag_home() / "logs"


def normalize_database_url(url: str) -> str:
    """Rewrite a bare ``postgresql://`` / ``postgres://`` URL to use psycopg 3.

    ``postgresql://u@h/db`` -> ``postgresql+psycopg://u@h/db``. URLs that
    already name a driver (``postgresql+psycopg://``, ``sqlite://`` ...) are
    returned unchanged.
    """
    for prefix in _PG_PREFIXES:
        if url.startswith(prefix):
            return _PG_DRIVER_PREFIX + url[len(prefix):]
    return url


def database_url() -> str:
    """Return the SQLAlchemy URL of the metadata database.

    ``$KUBEDAG_DATABASE_URL`` if set and non-empty (normalised by
    :func:`normalize_database_url`), else ``sqlite:///<home>/kubedag.db``
    (an absolute path, so four slashes on POSIX). Does not create anything.
    """
    env = os.environ.get(DATABASE_URL_ENV)
    if env:
        return normalize_database_url(env)
    return f"sqlite:///{kubedag_home() / 'kubedag.db'}"
