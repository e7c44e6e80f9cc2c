"""Fixtures of the real control-plane tier (see tests/controlplane/fixtures.py), and its collection rules."""
import pytest

from tests.controlplane.fixtures import control_plane, real_api, real_kubelet, real_namespace, skip_reason  # noqa: F401
from tests.controlplane.servers import _chart_identities, _real_with_crds, controller_on_default  # noqa: F401

_NOT_RUN: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without Go (or the built binary) the tier is left out with one line saying why; otherwise the RBAC
    comparison, which reads what the controller tests did, runs after them whatever the order given."""
    tier = {id(item) for item in items if item.get_closest_marker('controlplane')}
    reason = skip_reason() if tier else None
    if reason:
        config.hook.pytest_deselected(items=[item for item in items if id(item) in tier])
        items[:] = [item for item in items if id(item) not in tier]
        _NOT_RUN.append(f'controlplane tier: {len(tier)} tests not run: {reason}')
        return
    last = [item for item in items if item.nodeid.startswith('tests/controlplane/test_rbac.py')]
    items[:] = [item for item in items if item not in last] + last


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _NOT_RUN:
        terminalreporter.write_line(line)
