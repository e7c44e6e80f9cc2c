"""The committed CRDs, parsed once (tests/crds/test_crds.py checks they equal the generator's output)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"


@pytest.fixture(scope="session")
def dag_crd() -> dict[str, Any]:
    return yaml.safe_load((CRDS / "dag.yaml").read_text())


@pytest.fixture(scope="session")
def dagrun_crd() -> dict[str, Any]:
    return yaml.safe_load((CRDS / "dagrun.yaml").read_text())
