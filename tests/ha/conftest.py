"""Fixtures of the hot-standby tests: the emulator with the project's CRDs, a fake kubelet, a SQLite DB."""
from __future__ import annotations

from tests.controller.conftest import k8s_crd_files, sqlite_url  # noqa: F401
from tests.k8s.conftest import _no_leaks  # noqa: F401 - every thread and pod process must end
from tests.k8s.emulator.fixtures import fake_kubelet, k8s_api, k8s_api_options  # noqa: F401
