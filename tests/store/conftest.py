"""Store fixtures built on ``db_url`` (tests/conftest.py): a migrated engine and sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from kubedag.store import open_store


@pytest.fixture
def store(db_url: str) -> Iterator[tuple[sa.Engine, sessionmaker[Session]]]:
    engine, factory = open_store(db_url)
    yield engine, factory
    engine.dispose()


@pytest.fixture
def engine(store) -> sa.Engine:
    return store[0]


@pytest.fixture
def Session(store) -> sessionmaker[Session]:  # noqa: N802 - reads like the factory it is
    return store[1]


@pytest.fixture
def session(Session) -> Iterator[Session]:  # noqa: N803
    """A session the test drives; whatever it did not commit is rolled back."""
    with Session() as s:
        yield s
        s.rollback()

