"""The chart's RBAC is least privilege: the controller, run with only its ServiceAccount's token through the
controller tests ([rbac-namespaced], [rbac-cluster] in tests/controller; any 403 fails that test, naming the
verb and resource), used every verb the chart grants (read from the API server's audit log)."""
from __future__ import annotations

import pytest

from tests.controlplane.rbac import MODES, USED

pytestmark = pytest.mark.controlplane


@pytest.mark.parametrize('mode', sorted(MODES))
def test_the_chart_grants_no_verb_the_controller_never_used(mode, _chart_identities):
    if mode not in USED:
        pytest.skip(f'no controller test ran with the {mode} chart identity in this session (run tests/controller too)')
    granted = _chart_identities(mode).granted
    used = USED[mode]
    assert not used - granted  # a forbidden request already failed its controller test
    unused = sorted(f'{verb} {group}/{resource}' for group, resource, verb in granted - used)
    assert not unused, f'granted by the chart ({mode}) but never used by the controller: {unused}'
