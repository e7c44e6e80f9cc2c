"""
The real control plane of the test tier (``scripts/controlplane``) and a client with the emulator's helpers.

:class:`ControlPlane` starts and stops it (etcd, kube-apiserver, kube-controller-manager, kube-scheduler built
from ``tests/controlplane``) and runs its ``kubectl``. :class:`RealApiServer` speaks to it with the same
helpers as :class:`tests.k8s.emulator.EmulatedApiServer` (``create``, ``get``, ``list``, ``patch``, ``delete``,
``wait_for``, ``apply_yaml``, ``kubeconfig``, ``api_client``) over HTTPS with a bearer token, so fixtures can
hand either server to the same test.
"""
from __future__ import annotations

import functools
import json
import os
import pathlib
import shutil
import subprocess
import urllib.parse
from typing import Any

import urllib3
import yaml

from tests.k8s.emulator import EmulatedApiServer
from tests.k8s.emulator.errors import StatusError

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'scripts' / 'controlplane'
MERGE_PATCH = 'application/merge-patch+json'


def find_go() -> str | None:
    """The ``go`` command the build would use, or None."""
    found = shutil.which('go')
    if found:
        return found
    return '/usr/local/go/bin/go' if os.access('/usr/local/go/bin/go', os.X_OK) else None


def cached_binary_dir() -> pathlib.Path | None:
    """The directory of the built binary (``scripts/controlplane build`` made it), or None if not built yet."""
    done = subprocess.run([str(SCRIPT), 'path'], capture_output=True, text=True)
    return pathlib.Path(done.stdout.strip()) if done.returncode == 0 else None


class RealApiServer:
    """A client of a real API server from a kubeconfig with a token and a CA (the helpers of ``EmulatedApiServer``)."""

    def __init__(self, kubeconfig: str | pathlib.Path) -> None:
        self.kubeconfig_path = pathlib.Path(kubeconfig)
        config = yaml.safe_load(self.kubeconfig_path.read_text())
        cluster, user = config['clusters'][0]['cluster'], config['users'][0]['user']
        self.url: str = cluster['server']
        self.ca_file: str = cluster['certificate-authority']
        self.token: str = user['token']
        self._http = urllib3.PoolManager(ca_certs=self.ca_file, cert_reqs='CERT_REQUIRED', maxsize=4)

    def connection(self) -> Any:
        """This server as the controller's :class:`kubedag.k8s.client.Connection`."""
        from kubedag.k8s.client import Connection
        return Connection(server=self.url, token=self.token, ca_path=self.ca_file)

    def kubeconfig(self, path: str | pathlib.Path, namespace: str = 'default') -> pathlib.Path:
        """Write a copy of the admin kubeconfig whose context's namespace is ``namespace``."""
        config = yaml.safe_load(self.kubeconfig_path.read_text())
        config['contexts'][0]['context']['namespace'] = namespace
        path = pathlib.Path(path)
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def api_client(self) -> Any:
        """A configured ``kubernetes.client.ApiClient`` (close it when done)."""
        import kubernetes
        return kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig_path))

    # raw requests

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = 'application/json',
                params: dict[str, str] | None = None) -> Any:
        """One request; the decoded JSON body, or :class:`StatusError` with the server's Status."""
        url = self.url + path + ('?' + urllib.parse.urlencode(params) if params else '')
        response = self._http.request(method, url, body=None if body is None else json.dumps(body).encode(),
                                      headers={'Authorization': f'Bearer {self.token}', 'Content-Type': content_type,
                                               'Accept': 'application/json'}, timeout=30)
        text = response.data.decode()
        data = json.loads(text) if text.startswith('{') else text
        if response.status >= 400:
            status = data if isinstance(data, dict) else {}
            raise StatusError(response.status, status.get('reason', ''), status.get('message', text), status.get('details'))
        return data

    @functools.cache  # noqa: B019 - one client per session
    def _plural(self, api_version: str, kind: str) -> str:
        prefix = '/api/v1' if api_version == 'v1' else f'/apis/{api_version}'
        resources = self.request('GET', prefix)['resources']
        return next(r['name'] for r in resources if r['kind'] == kind and '/' not in r['name'])

    @staticmethod
    def path(resource: str, name: str | None = None, namespace: str | None = None, subresource: str | None = None) -> str:
        """The URL path of ``resource`` (``v1/pods``, ``kubedag.io/v1alpha1/dags``) in ``namespace``."""
        group_version, plural = resource.rsplit('/', 1)
        path = '/api/v1' if group_version == 'v1' else f'/apis/{group_version}'
        if namespace:
            path += f'/namespaces/{namespace}'
        path += f'/{plural}'
        if name:
            path += f'/{name}'
        return path + (f'/{subresource}' if subresource else '')

    # the emulator's helpers

    def create(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Create an object (kind from its apiVersion/kind)."""
        namespace = namespace or obj.get('metadata', {}).get('namespace')
        plural = self._plural(obj['apiVersion'], obj['kind'])
        return self.request('POST', self.path(f"{obj['apiVersion']}/{plural}", namespace=namespace), obj)

    def apply_yaml(self, text: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Create every document of a YAML text."""
        return [self.create(doc, namespace) for doc in yaml.safe_load_all(text) if doc]

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """Read an object; None if absent."""
        try:
            return self.request('GET', self.path(resource, name, namespace))
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict[str, Any]]:
        """The items of a list, with their ``kind``/``apiVersion`` filled in as the emulator's helper does."""
        params = {k: v for k, v in (('labelSelector', label_selector), ('fieldSelector', field_selector)) if v}
        listing = self.request('GET', self.path(resource, namespace=namespace), params=params)
        kind = listing.get('kind', 'List').removesuffix('List')
        return [{'apiVersion': listing.get('apiVersion'), 'kind': kind, **item} for item in listing['items']]

    def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None, *,
              subresource: str | None = None, content_type: str = MERGE_PATCH) -> dict[str, Any]:
        """Patch an object (merge patch unless ``content_type`` says otherwise)."""
        return self.request('PATCH', self.path(resource, name, namespace, subresource), patch, content_type=content_type)

    def delete(self, resource: str, name: str, namespace: str | None = None, **options: Any) -> dict[str, Any]:
        """Delete with DeleteOptions fields as kwargs (``propagationPolicy=``, ``gracePeriodSeconds=``)."""
        body = {'apiVersion': 'v1', 'kind': 'DeleteOptions', **options}
        return self.request('DELETE', self.path(resource, name, namespace), body)

    # the emulator's polling helper works unchanged on top of get()
    wait_for = EmulatedApiServer.wait_for


class ControlPlane:
    """A control plane started by ``scripts/controlplane start`` in ``state_dir``; :meth:`stop` ends it."""

    def __init__(self, state_dir: pathlib.Path) -> None:
        self.state_dir = state_dir
        self.kubeconfig = state_dir / 'admin.kubeconfig'
        self.bin_dir: pathlib.Path | None = None

    def start(self) -> ControlPlane:
        """Start it (the binary must be built); RuntimeError with the script's output if it fails."""
        done = subprocess.run([str(SCRIPT), 'start', str(self.state_dir)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f'scripts/controlplane start failed:\n{done.stderr[-3000:]}')
        self.startup_message = done.stderr.strip().splitlines()[-1]
        self.bin_dir = cached_binary_dir()
        return self

    def stop(self) -> None:
        """Stop every process it started."""
        subprocess.run([str(SCRIPT), 'stop', str(self.state_dir)], capture_output=True, check=False)

    def api(self) -> RealApiServer:
        """A client with the admin identity."""
        return RealApiServer(self.kubeconfig)

    def kubectl(self, *args: str, kubeconfig: str | pathlib.Path | None = None, input: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the control plane's own ``kubectl`` (admin identity unless ``kubeconfig``)."""
        assert self.bin_dir is not None
        done = subprocess.run([str(self.bin_dir / 'kubectl'), '--kubeconfig', str(kubeconfig or self.kubeconfig),
                               '--cache-dir', str(self.state_dir / 'kubectl-cache'), *args],
                              input=input, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}{done.stdout}")
        return done
