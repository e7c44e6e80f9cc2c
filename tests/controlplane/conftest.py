"""Fixtures of the real control-plane tier (see tests/controlplane/fixtures.py)."""
import pytest

from tests.controlplane.fixtures import control_plane, real_api, real_kubelet, real_namespace  # noqa: F401
from tests.controlplane.servers import _chart_identities, _real_with_crds  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The RBAC comparison reads what the controller tests did: run it after them, whatever the order given."""
    last = [item for item in items if item.nodeid.startswith('tests/controlplane/test_rbac.py')]
    items[:] = [item for item in items if item not in last] + last
