"""
Test-support layer for kubedag's controller: a Kubernetes API emulator served
over real HTTP (built on kmock) and a fake kubelet that runs pods' commands as
local processes. See ``server.py`` and ``kubelet.py`` for what is emulated,
``fixtures.py`` for the pytest fixtures.
"""
from .errors import StatusError
from .kubelet import FakeKubelet
from .server import EmulatedApiServer, KubeApiEmulator

__all__ = ['EmulatedApiServer', 'FakeKubelet', 'KubeApiEmulator', 'StatusError']
