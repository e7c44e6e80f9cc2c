"""Fixtures of the real control-plane tier (see tests/controlplane/fixtures.py)."""
from tests.controlplane.fixtures import control_plane, real_api, real_kubelet, real_namespace  # noqa: F401
from tests.controlplane.servers import _chart_identities, _real_with_crds  # noqa: F401
