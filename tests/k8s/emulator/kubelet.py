"""
A fake kubelet (plus scheduler) that runs pods' commands as local processes.

It talks to the API server only over HTTP, as a real node agent does:

* registers a ``Node`` (``POST /api/v1/nodes``, then its status through
  ``nodes/<name>/status``: Ready, ``capacity``/``allocatable``) whose
  ``daemonEndpoints.kubeletEndpoint.Port`` is a small HTTP(S) server of its own
  serving ``/containerLogs/<ns>/<pod>/<container>`` — the API server proxies
  ``pods/<name>/log`` there — and renews the node's Lease in
  ``kube-node-lease``;
* lists and watches pods (resuming from the last resourceVersion, relisting on
  410 Gone), binds unscheduled pods to its node through ``pods/<name>/binding``
  (the scheduler's job: only on the emulator; on a real control plane
  kube-scheduler binds and the kubelet watches only pods bound to it — see
  ``node.KubeletAccess``), and for each pod bound to it:

  - writes ``Pending`` (``containerStatuses[0].state.waiting``), sets up the
    volumes the first container mounts and resolves its environment (see
    below), then starts its ``command + args`` (``$(VAR)`` references
    expanded) as a local process in its own process group, in a working
    directory (the kubelet's ``workdir`` or ``cwd_for(pod)``); the image is
    ignored;
  - writes ``Running`` with ``state.running.startedAt``, then on exit
    ``Succeeded``/``Failed`` with ``state.terminated`` (``exitCode`` —
    128+signal for a signal — ``reason`` ``Completed``/``Error``,
    ``startedAt``, ``finishedAt``, ``message``: the termination message, see
    below); ``restartPolicy`` ``Always``/``OnFailure`` restart the process
    with ``restartCount`` and ``lastState``;
  - enforces ``activeDeadlineSeconds`` from ``status.startTime`` (kill, then
    ``Failed`` with pod ``reason: DeadlineExceeded``), re-read on updates;
  - on graceful deletion (a ``deletionTimestamp``) sends SIGTERM to the group,
    SIGKILL after the grace period, writes the final status and confirms the
    deletion with ``gracePeriodSeconds=0``; a pod that vanishes is killed at
    once. A container that never started ends as the kubelet reports it:
    ``terminated`` with ``reason: ContainerStatusUnknown``, ``exitCode: 137``.

Every status write is a strategic-merge PATCH of ``pods/<name>/status``.

**Environment**, as the kubelet builds it: ``envFrom`` (``configMapRef`` /
``secretRef``, with ``prefix``; keys that are no valid variable name are
skipped), then ``env`` in order: ``value`` (``$(VAR)`` referring to variables
defined before it), ``valueFrom.fieldRef`` (name, namespace, uid, labels,
annotations, node name, service account, pod/host IP),
``valueFrom.configMapKeyRef`` / ``secretKeyRef``. ConfigMaps and Secrets are
read from the API server when the container starts (every start). With
``optional: true`` a missing object or key leaves the variable out; otherwise
the container does not start: ``state.waiting`` is
``CreateContainerConfigError`` with the kubelet's message (``secret "s" not
found``, ``couldn't find key k in Secret ns/s``) and the kubelet retries (0.2 s,
doubling up to 5 s) until it can start or the pod is deleted or times out.
The process gets ``os.environ`` + the kubelet's ``env`` + the container's
variables; ``$(VAR)`` in ``command``/``args``/``env`` sees only the
container's variables, as on a node (not the image's, here not the host's).
``resourceFieldRef`` is not emulated (the variable is left out).

**Volumes.** There is no mount namespace: a process sees the host's file
system. The kubelet emulates the mounts of the first container's
``volumeMounts`` by giving each volume a host directory and *rewriting paths*:

* ``emptyDir``: a directory per pod under the kubelet's root
  (``<root>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>``; ``medium``
  and ``sizeLimit`` are ignored), kept across container restarts and removed
  with the pod's other kubelet files when the pod is deleted (or the kubelet
  stops);
* ``hostPath``: the host path itself (``DirectoryOrCreate`` /
  ``FileOrCreate`` create it; other ``type`` checks are not made), never
  removed;
* ``configMap`` / ``secret``: the keys (or ``items``, with ``path``) written
  as files into a per-pod directory when the pod starts (``defaultMode`` /
  ``mode`` applied; no later updates, no ``..data`` symlinks); a missing
  object or key that is not ``optional`` keeps the pod ``ContainerCreating``
  (as a failed mount does) and the kubelet retries;
* ``projected``: ``configMap``, ``downwardAPI`` (``fieldRef``) and
  ``serviceAccountToken`` sources (a TokenRequest bound to the pod: the
  ``kube-api-access-*`` volume a real API server adds to every pod) written
  as files when the pod starts (``node.write_projected``);
* other volume types (``persistentVolumeClaim``, ``downwardAPI``...) are not
  emulated: their mounts are ignored, with a warning;
* ``subPath`` mounts that subdirectory (created if missing) or file;
  ``subPathExpr``, ``readOnly`` and mount propagation are not emulated.

A mount maps its ``mountPath`` to that host directory. Whenever an element of
``command``/``args``, or the value of a container variable (``value``, and
values from ``valueFrom``/``envFrom``), *starts* with a ``mountPath`` — the
whole path or the path followed by ``/``: with a mount at ``/kubedag/xcom``,
``/kubedag/xcom/return.json`` maps, ``/kubedag/xcomx`` does not — that prefix is
replaced by the host directory; the longest matching ``mountPath`` wins. A
literal element is mapped before its ``$(VAR)`` references are expanded, and a
reference expands to the variable's value as the process sees it (already
mapped): ``$(KUBEDAG_XCOM_PATH)`` anywhere in a shell script therefore reaches
the host file. A mount path written *inside* a longer element (``sh -c 'cat
/kubedag/xcom/x'``), in a file or computed by the program is **not**
rewritten: reach mounted files through ``$(VAR)`` or an environment variable.
The working directory is not rewritten (``workingDir`` is ignored; the kubelet's
``workdir``/``cwd_for`` apply).

**Termination message.** As on a node, the container's
``terminationMessagePath`` (default ``/dev/termination-log``) is a file the
kubelet provides, fresh and empty at each start
(``<root>/pods/<uid>/containers/<name>/termination-log``), mounted over that
path — so it is mapped like a mount of its own (longer than, and so taking
precedence over, a volume mounted around it; that volume does not see the file).
When the process exits the kubelet reads the file's **last** 4096 bytes (the
kubelet's ``tail.ReadAtMost``, ``MaxContainerTerminationMessageLength``) into
``state.terminated.message``; with ``terminationMessagePolicy:
FallbackToLogsOnError``, a non-zero exit and an empty (or deleted) file, the
last 80 lines of this run's output, at most their last 2048 bytes, are used
instead. An empty message is left out. The status then keeps the first
12 KiB / (number of containers) bytes, as the kubelet's status manager does.

**Python.** ``command[0]`` named ``python`` or ``python3`` (bare, or a path
ending so, e.g. ``/usr/local/bin/python``) runs with the interpreter running
the tests (``sys.executable``), so pods of kubedag's own image (``python -m
kubedag.sensors ...``) run with kubedag importable; any other ``command[0]``
is looked up on the host's ``PATH``.

**Logs on disk, and a restart of the kubelet.** A container's output goes, as it comes, to
``<root>/logs/<namespace>_<pod>_<uid>/<container>.log`` (the kubelet's ``/var/log/pods``; every start of the
container appends to it) and is served from there, so ``kubectl logs`` and the controller's log archiving still
read it after the kubelet restarted (a new ``FakeKubelet`` given the same ``root``); the files go with the pod.
Stopping the kubelet stops its containers, as a node going down does (no container runtime outlives it here). A
kubelet started again on the same ``root`` never starts a ``restartPolicy: Never`` container a second time: a
pod whose container had started (a marker in its pod directory, written just before the process starts, or a
status showing the container running or created) is reported as a real kubelet reports a container it can no
longer locate: ``Failed``, ``state.terminated`` with ``reason: ContainerStatusUnknown``, ``exitCode: 137`` and
the message "The container could not be located when the pod was deleted.  The container used to be Running"
(kubelet_pods.go, ``convertToAPIContainerStatuses``). A pod whose container never started starts as usual;
``Always``/``OnFailure`` containers are started again, as the kubelet restarts them.

Only the first container runs; init containers, sidecars, probes, image
pulls, ``workingDir``, ``securityContext`` and resource limits are not
emulated (a container without ``command`` fails to start, ``StartError``).
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import glob
import json
import logging
import os
import pathlib
import posixpath
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import aiohttp
import aiohttp.web

from .loopthread import LoopThread
from .node import RENEW_INTERVAL, KubeletAccess, lease_manifest, micro_time, node_manifest, node_status, write_projected
from .server import rfc3339

logger = logging.getLogger(__name__)

SMP = {'Content-Type': 'application/strategic-merge-patch+json'}
_VAR_REF = re.compile(r'\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$')
# What the kubelet accepts as a variable name from envFrom (RelaxedEnvironmentVariableValidation):
# printable ASCII but '='.
_ENV_NAME = re.compile(r'^[ -<>-~]+$')

#: The kubelet's limits (pkg/kubelet/container): bytes read from the termination-message file (its end),
#: lines and bytes of the log used by FallbackToLogsOnError, and bytes of messages per pod.
MAX_TERMINATION_MESSAGE_BYTES = 4096
MAX_TERMINATION_LOG_LINES = 80
MAX_TERMINATION_LOG_BYTES = 2048
MAX_POD_TERMINATION_MESSAGE_BYTES = 12 * 1024

PYTHON_COMMANDS = ('python', 'python3')


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion in command/args (``$$`` escapes; unknown refs stay)."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == '$$':
            return '$'
        return env.get(m.group(1), m.group(0))
    return _VAR_REF.sub(sub, text)


def _field_ref(pod: dict[str, Any], path: str) -> str:
    meta = pod.get('metadata', {})
    if m := re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path):
        return (meta.get(m[1]) or {}).get(m[2], '')
    return {
        'metadata.name': meta.get('name', ''), 'metadata.namespace': meta.get('namespace', ''),
        'metadata.uid': meta.get('uid', ''), 'spec.nodeName': pod.get('spec', {}).get('nodeName', ''),
        'spec.serviceAccountName': pod.get('spec', {}).get('serviceAccountName', ''),
        'status.hostIP': '127.0.0.1', 'status.podIP': '127.0.0.1',
        'status.hostIPs': '127.0.0.1', 'status.podIPs': '127.0.0.1',
    }.get(path, '')


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


#: plural -> the names the kubelet's messages use.
_CONFIG_KINDS = {'configmaps': ('configmap', 'ConfigMap'), 'secrets': ('secret', 'Secret')}


def _config_data(obj: dict[str, Any] | None, plural: str) -> dict[str, str]:
    """``data`` of a ConfigMap, or of a Secret decoded (bytes kept through surrogate escapes, as os.environ does)."""
    data = (obj or {}).get('data') or {}
    if plural == 'secrets':
        return {k: base64.b64decode(v).decode('utf-8', 'surrogateescape') for k, v in data.items()}
    return {k: str(v) for k, v in data.items()}


def _tail(data: bytes, lines: int) -> bytes:
    return b''.join(data.splitlines(keepends=True)[-lines:]) if lines > 0 else b''


class _NotStartable(Exception):
    """The container cannot start yet; the kubelet reports ``state.waiting`` and retries."""

    def __init__(self, reason: str, message: str = '') -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message


class _PodRun:
    """The life of one pod (by uid) on this node."""

    def __init__(self, kubelet: FakeKubelet, pod: dict[str, Any]) -> None:
        self.kubelet = kubelet
        self.pod = pod
        meta = pod['metadata']
        self.namespace, self.name, self.uid = meta['namespace'], meta['name'], meta['uid']
        self.container = pod['spec']['containers'][0]
        self.dir = kubelet.pod_dir(self.uid)
        self.log = bytearray()
        self.log_changed = asyncio.Condition()
        self.process: asyncio.subprocess.Process | None = None
        self.finished = asyncio.Event()
        self.deadline_exceeded = False
        self.deleting = False
        self.vanished = False
        self.start_time: float | None = None
        self.start_time_str = ''
        self.restart_count = 0
        self.last_state: dict[str, Any] = {}
        self.mounts: list[tuple[str, pathlib.Path]] | None = None  # (mountPath, host path), longest first
        self.log_file = kubelet.log_dir(self.namespace, self.name, self.uid) / f"{self.container['name']}.log"
        self.lost = self._started_before(pod)
        if self.log_file.exists():  # what its earlier life logged (kept on disk)
            self.log.extend(self.log_file.read_bytes())
        self.termination_file: pathlib.Path | None = None
        self._volume_dirs: dict[str, pathlib.Path | None] = {}
        self._wake = asyncio.Event()  # set by kill(), once the pod is ending: cuts pauses short
        self._deadline_task: asyncio.Task[None] | None = None
        self._kill_task: asyncio.Task[None] | None = None
        self.task = asyncio.create_task(self._run(), name=f'pod {self.namespace}/{self.name}')

    def _started_before(self, pod: dict[str, Any]) -> bool:
        """True when a ``restartPolicy: Never`` container of this pod was started by an earlier life of this kubelet
        (its start marker) or, as the pod's status shows, by some kubelet: it must not start again."""
        if pod['spec'].get('restartPolicy', 'Always') != 'Never':
            return False
        if (self.dir / 'started').exists():
            return True
        statuses = (pod.get('status') or {}).get('containerStatuses') or []
        return bool(statuses) and ('running' in (statuses[0].get('state') or {}) or bool(statuses[0].get('containerID')))

    @property
    def ending(self) -> bool:
        return self.deleting or self.deadline_exceeded or self.vanished or self.kubelet.stopping

    # status writes

    def _container_status(self, state: dict[str, Any], *, ready: bool = False) -> dict[str, Any]:
        status = {'name': self.container['name'], 'image': self.container.get('image', ''), 'imageID': '',
                  'ready': ready, 'started': 'running' in state, 'restartCount': self.restart_count, 'state': state}
        if self.process is not None:
            status['containerID'] = f'fake://{self.process.pid}'
        if self.last_state:
            status['lastState'] = self.last_state
        return status

    @staticmethod
    def _conditions(ready: bool, reason: str | None = None) -> list[dict[str, Any]]:
        now = rfc3339()
        result = [{'type': 'Initialized', 'status': 'True', 'lastProbeTime': None, 'lastTransitionTime': now}]
        for kind in ('Ready', 'ContainersReady'):
            cond: dict[str, Any] = {'type': kind, 'status': 'True' if ready else 'False', 'lastProbeTime': None,
                                    'lastTransitionTime': now}
            if not ready:
                cond['reason'] = reason or 'ContainersNotReady'
            result.append(cond)
        return result

    async def _write_status(self, phase: str, state: dict[str, Any], *, ready: bool = False,
                            reason: str | None = None, message: str | None = None) -> None:
        status: dict[str, Any] = {
            'phase': phase, 'hostIP': '127.0.0.1', 'hostIPs': [{'ip': '127.0.0.1'}],
            'startTime': self.start_time_str,
            'conditions': self._conditions(ready, 'PodCompleted' if phase in ('Succeeded', 'Failed') else None),
            'containerStatuses': [self._container_status(state, ready=ready)],
        }
        if phase != 'Pending':
            status.update({'podIP': '127.0.0.1', 'podIPs': [{'ip': '127.0.0.1'}]})
        if reason:
            status['reason'] = reason
        if message:
            status['message'] = message
        await self.kubelet._patch_pod_status(self.namespace, self.name, {'status': status})

    # volumes and path mapping

    async def _setup_mounts(self) -> None:
        """Give every volume the container mounts a host path (see the module docstring); raise
        :class:`_NotStartable` (``ContainerCreating``) while a ConfigMap/Secret volume cannot be set up."""
        volumes = {v.get('name'): v for v in self.pod['spec'].get('volumes') or []}
        mounts: list[tuple[str, pathlib.Path]] = []
        for mount in self.container.get('volumeMounts') or []:
            volume = volumes.get(mount.get('name'))
            if volume is None:
                continue  # the API server rejects such pods; nothing to mount
            if volume['name'] not in self._volume_dirs:
                self._volume_dirs[volume['name']] = await self._volume_dir(volume)
            source = self._volume_dirs[volume['name']]
            if source is None:
                continue
            if mount.get('subPath'):
                source = source / mount['subPath']
                if not source.exists():
                    source.mkdir(parents=True, exist_ok=True)
            mounts.append((posixpath.normpath(mount['mountPath']), source))
        path = self.container.get('terminationMessagePath') or ''
        if path:
            self.termination_file = self.dir / 'containers' / self.container['name'] / 'termination-log'
            self.termination_file.parent.mkdir(parents=True, exist_ok=True)
            mounts.append((posixpath.normpath(path), self.termination_file))
        self.mounts = sorted(mounts, key=lambda m: len(m[0]), reverse=True)

    async def _volume_dir(self, volume: dict[str, Any]) -> pathlib.Path | None:
        name = volume['name']
        volumes = self.dir / 'volumes'
        if 'emptyDir' in volume:
            path = volumes / 'kubernetes.io~empty-dir' / name
            path.mkdir(parents=True, exist_ok=True)
            return path
        if 'hostPath' in volume:
            host = volume['hostPath']
            path = pathlib.Path(host['path'])
            if host.get('type') == 'DirectoryOrCreate':
                path.mkdir(parents=True, exist_ok=True)
            elif host.get('type') == 'FileOrCreate' and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            return path
        for key, kind, plural in (('configMap', 'configmap', 'configmaps'), ('secret', 'secret', 'secrets')):
            if key in volume:
                source = volume[key]
                object_name = source.get('name' if key == 'configMap' else 'secretName', '')
                path = volumes / f'kubernetes.io~{kind}' / name
                try:
                    obj = await self.kubelet._read_object(self.namespace, plural, object_name)
                except _NotStartable as e:
                    raise _NotStartable('ContainerCreating') from e
                if obj is None and not source.get('optional'):
                    logger.warning('Fake kubelet: pod %s/%s: volume %r: %s "%s" not found',
                                   self.namespace, self.name, name, kind, object_name)
                    raise _NotStartable('ContainerCreating')
                files = self._projected_files(obj, key == 'secret')
                items = source.get('items')
                if items is not None:
                    missing = [i['key'] for i in items if i.get('key') not in files]
                    if obj is not None and missing and not source.get('optional'):
                        logger.warning('Fake kubelet: pod %s/%s: volume %r: %s references non-existent %s key: %s',
                                       self.namespace, self.name, name, kind, 'config' if kind == 'configmap' else 'secret',
                                       missing[0])
                        raise _NotStartable('ContainerCreating')
                    chosen = [(i['path'], files[i['key']], i.get('mode')) for i in items if i.get('key') in files]
                else:
                    chosen = [(k, v, None) for k, v in files.items()]
                path.mkdir(parents=True, exist_ok=True)
                for rel, data, mode in chosen:
                    target = path / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                    target.chmod(mode if mode is not None else source.get('defaultMode', 0o644))
                return path
        if 'projected' in volume:
            path = volumes / 'kubernetes.io~projected' / name
            await write_projected(self, volume, path)
            return path
        kinds = sorted(k for k in volume if k != 'name')
        logger.warning('Fake kubelet: pod %s/%s: volume %r (%s) is not emulated; its mounts are ignored',
                       self.namespace, self.name, name, ', '.join(kinds))
        return None

    @staticmethod
    def _projected_files(obj: dict[str, Any] | None, secret: bool) -> dict[str, bytes]:
        if obj is None:
            return {}
        if secret:
            return {k: base64.b64decode(v) for k, v in (obj.get('data') or {}).items()}
        files = {k: v.encode() for k, v in (obj.get('data') or {}).items()}
        files.update({k: base64.b64decode(v) for k, v in (obj.get('binaryData') or {}).items()})
        return files

    def map_path(self, text: str) -> str:
        """``text`` with a leading container path replaced by its host path (longest ``mountPath`` first)."""
        for mount_path, host in self.mounts or ():
            if mount_path == '/':
                if text.startswith('/'):
                    return str(host) + text
            elif text == mount_path or text.startswith(mount_path + '/'):
                return str(host) + text[len(mount_path):]
        return text

    # the environment

    async def _config_object(self, plural: str, name: str, optional: bool,
                             cache: dict[tuple[str, str], Any]) -> dict[str, Any] | None:
        """A ConfigMap/Secret of the pod's namespace; None if optional and missing."""
        if (plural, name) not in cache:
            cache[plural, name] = await self.kubelet._read_object(self.namespace, plural, name)
        if cache[plural, name] is None and not optional:
            raise _NotStartable('CreateContainerConfigError', f'{_CONFIG_KINDS[plural][0]} "{name}" not found')
        return cache[plural, name]

    async def _key_ref(self, ref: dict[str, Any], plural: str, cache: dict[tuple[str, str], Any]) -> str | None:
        """The value a ``configMapKeyRef``/``secretKeyRef`` names; None if optional and missing."""
        name, key, optional = ref.get('name', ''), ref.get('key', ''), bool(ref.get('optional'))
        data = _config_data(await self._config_object(plural, name, optional, cache), plural)
        if key not in data:
            if optional:
                return None
            raise _NotStartable('CreateContainerConfigError',
                                f"couldn't find key {key} in {_CONFIG_KINDS[plural][1]} {self.namespace}/{name}")
        return data[key]

    async def _container_env(self) -> dict[str, str]:
        """The container's variables, as the kubelet resolves them (values mapped; see the module docstring)."""
        defined: dict[str, str] = {}
        cache: dict[tuple[str, str], Any] = {}
        for source in self.container.get('envFrom') or []:
            for key, plural in (('configMapRef', 'configmaps'), ('secretRef', 'secrets')):
                if ref := source.get(key):
                    obj = await self._config_object(plural, ref.get('name', ''), bool(ref.get('optional')), cache)
                    prefix = source.get('prefix') or ''
                    for name, value in _config_data(obj, plural).items():
                        if _ENV_NAME.match(prefix + name):
                            defined[prefix + name] = self.map_path(value)
        for item in self.container.get('env') or []:
            name = item['name']
            source = item.get('valueFrom')
            if not source:
                defined[name] = _expand(self.map_path(str(item.get('value') or '')), defined)
                continue
            value: str | None
            if (source.get('fieldRef') or {}).get('fieldPath'):
                value = _field_ref(self.pod, source['fieldRef']['fieldPath'])
            elif source.get('configMapKeyRef'):
                value = await self._key_ref(source['configMapKeyRef'], 'configmaps', cache)
            elif source.get('secretKeyRef'):
                value = await self._key_ref(source['secretKeyRef'], 'secrets', cache)
            else:
                value = None  # resourceFieldRef: not emulated
            if value is not None:
                defined[name] = self.map_path(value)
        return defined

    async def _prepare(self) -> tuple[list[str], dict[str, str]]:
        """Mounts (once), variables and argv for one start; :class:`_NotStartable` while it cannot start."""
        if self.mounts is None:
            await self._setup_mounts()
        defined = await self._container_env()
        argv = [_expand(self.map_path(str(a)), defined)
                for a in (self.container.get('command') or []) + (self.container.get('args') or [])]
        if argv and posixpath.basename(argv[0]) in PYTHON_COMMANDS:
            argv[0] = sys.executable
        env = dict(os.environ)
        env.update(self.kubelet.env)
        env.update(defined)
        return argv, env

    async def _until_startable(self) -> tuple[list[str], dict[str, str]] | None:
        """:meth:`_prepare`, retried with back-off while the container cannot start; None if the pod ends first."""
        delay = 0.2
        shown: dict[str, Any] = {'reason': 'ContainerCreating'} if self.restart_count == 0 else {}
        while not self.ending:
            try:
                return await self._prepare()
            except _NotStartable as e:
                waiting = {'reason': e.reason, **({'message': e.message} if e.message else {})}
                if waiting != shown:
                    await self._write_status('Running' if self.restart_count else 'Pending', {'waiting': waiting})
                    shown = waiting
            await self._pause(delay)
            delay = min(delay * 2, 5.0)
        return None

    async def _pause(self, seconds: float) -> None:
        """Sleep, cut short once the pod is ending (deleted, past its deadline, vanished, the kubelet stopping)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    # the process

    async def _run(self) -> None:
        try:
            if self.lost:
                await self._report_lost()
                return
            loop = asyncio.get_running_loop()
            self.start_time, self.start_time_str = loop.time(), rfc3339()
            await self._write_status('Pending', {'waiting': {'reason': 'ContainerCreating'}})
            self._schedule_deadline()
            state: dict[str, Any] | None = None
            while True:
                launch = await self._until_startable()
                if launch is None:
                    break
                state = await self._run_once(*launch)
                exit_code = state['terminated']['exitCode']
                policy = self.pod['spec'].get('restartPolicy', 'Always')
                again = policy == 'Always' or (policy == 'OnFailure' and exit_code != 0)
                if again and not self.ending:
                    self.last_state = state
                    self.restart_count += 1
                    await self._write_status('Running', {'waiting': {'reason': 'CrashLoopBackOff'}})
                    await self._pause(min(0.2 * 2 ** self.restart_count, 5.0))
                    continue
                break
            if self.vanished or self.kubelet.stopping:
                return
            if state is None or self.last_state is state:  # the container is not running: the kubelet's status manager
                state = {'terminated': {'exitCode': 137, 'reason': 'ContainerStatusUnknown',
                                        'message': 'The container could not be located when the pod was terminated'}}
            exit_code = state['terminated']['exitCode']
            if self.deadline_exceeded:
                await self._write_status('Failed', state, reason='DeadlineExceeded',
                                         message='Pod was active on the node longer than the specified deadline')
            else:
                await self._write_status('Succeeded' if exit_code == 0 else 'Failed', state)
            if self.deleting:
                await self.kubelet._confirm_deletion(self)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception('Fake kubelet failed to run pod %s/%s', self.namespace, self.name)
        finally:
            if self._deadline_task is not None:
                self._deadline_task.cancel()
            if self.vanished:
                self.remove_files()
            self.finished.set()
            async with self.log_changed:
                self.log_changed.notify_all()

    async def _report_lost(self) -> None:
        """The container started in an earlier life of the kubelet and is gone: ``Failed``, as the kubelet reports a
        container it cannot locate (see the module docstring); never started again."""
        self.start_time_str = (self.pod.get('status') or {}).get('startTime') or rfc3339()
        statuses = (self.pod.get('status') or {}).get('containerStatuses') or [{}]
        self.restart_count = int(statuses[0].get('restartCount') or 0)
        await self._write_status('Failed', {'terminated': {
            'exitCode': 137, 'reason': 'ContainerStatusUnknown',
            'message': 'The container could not be located when the pod was deleted.  The container used to be Running'}})
        if self.deleting:
            await self.kubelet._confirm_deletion(self)

    async def _run_once(self, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        started = rfc3339()
        if not argv:
            return {'terminated': {'exitCode': 128, 'reason': 'StartError', 'startedAt': started, 'finishedAt': started,
                                   'message': 'fake kubelet: the container has no command (images are not run)'}}
        cwd = self.kubelet.cwd_for(self.pod) if self.kubelet.cwd_for else self.kubelet.workdir
        if self.termination_file is not None:
            self.termination_file.write_bytes(b'')  # a fresh, empty file per start, as the kubelet mounts one
        log_start = len(self.log)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / 'started').write_text(str(self.restart_count))  # never again for restartPolicy Never, see _started_before
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *argv, cwd=str(cwd), env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            return {'terminated': {'exitCode': 128, 'reason': 'StartError', 'startedAt': started,
                                   'finishedAt': rfc3339(), 'message': str(e)}}
        if self.ending:
            self.kill(0)
        else:
            await self._write_status('Running', {'running': {'startedAt': started}}, ready=True)
        assert self.process.stdout is not None
        with self.log_file.open('ab') as log_file:
            while chunk := await self.process.stdout.read(65536):
                log_file.write(chunk)
                log_file.flush()
                async with self.log_changed:
                    self.log.extend(chunk)
                    self.log_changed.notify_all()
        returncode = await self.process.wait()
        code = _exit_code(returncode)
        terminated = {'exitCode': code, 'reason': 'Completed' if code == 0 else 'Error',
                      'startedAt': started, 'finishedAt': rfc3339(), 'containerID': f'fake://{self.process.pid}'}
        if message := self._termination_message(code, bytes(self.log[log_start:])):
            terminated['message'] = message
        return {'terminated': terminated}

    def _termination_message(self, exit_code: int, output: bytes) -> str:
        """What the kubelet puts in ``state.terminated.message`` (see the module docstring)."""
        fallback = self.container.get('terminationMessagePolicy') == 'FallbackToLogsOnError' and exit_code != 0
        data = b''
        if self.termination_file is not None:
            try:
                with self.termination_file.open('rb') as f:
                    size = f.seek(0, os.SEEK_END)
                    f.seek(max(0, size - MAX_TERMINATION_MESSAGE_BYTES))
                    data = f.read()
            except FileNotFoundError:
                pass
            except OSError as e:
                return f'Error on reading termination log {self.termination_file}: {e}'
        if not data and fallback:
            data = _tail(output, MAX_TERMINATION_LOG_LINES)[-MAX_TERMINATION_LOG_BYTES:]
        containers = len(self.pod['spec'].get('containers') or []) + len(self.pod['spec'].get('initContainers') or [])
        return data[:MAX_POD_TERMINATION_MESSAGE_BYTES // max(containers, 1)].decode('utf-8', 'replace')

    def remove_files(self) -> None:
        """Remove the pod's kubelet files: emptyDir, ConfigMap/Secret volumes, termination-message files, logs."""
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.log_file.parent, ignore_errors=True)

    # deadlines, deletion, killing

    def _schedule_deadline(self) -> None:
        if self._deadline_task is not None:
            self._deadline_task.cancel()
            self._deadline_task = None
        seconds = self.pod['spec'].get('activeDeadlineSeconds')
        if seconds is not None and self.start_time is not None and not self.finished.is_set():
            self._deadline_task = asyncio.create_task(self._enforce_deadline(self.start_time + float(seconds)))

    async def _enforce_deadline(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - asyncio.get_running_loop().time()))
        self.deadline_exceeded = True
        self.kill(self._grace())

    def _grace(self, requested: int | None = None) -> float:
        grace = requested if requested is not None else self.pod['spec'].get('terminationGracePeriodSeconds', 30)
        if self.kubelet.max_grace_seconds is not None:
            grace = min(grace, self.kubelet.max_grace_seconds)
        return float(max(grace, 0))

    def kill(self, grace: float) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds (at once if 0); stop waiting to start."""
        self._wake.set()
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL if grace <= 0 else signal.SIGTERM)
        if grace > 0 and self._kill_task is None:
            self._kill_task = asyncio.create_task(self._kill_later(process, grace))

    @staticmethod
    async def _kill_later(process: asyncio.subprocess.Process, grace: float) -> None:
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    def forget(self) -> None:
        """The pod is gone from the API (or replaced): kill at once; its files go once the process has ended."""
        self.vanished = True
        self.kill(0)
        if self.finished.is_set():
            self.remove_files()

    def update(self, pod: dict[str, Any]) -> None:
        old_deadline = self.pod['spec'].get('activeDeadlineSeconds')
        self.pod = pod
        if pod['spec'].get('activeDeadlineSeconds') != old_deadline:
            self._schedule_deadline()
        if pod['metadata'].get('deletionTimestamp') and not self.deleting:
            self.deleting = True
            self.kill(self._grace(pod['metadata'].get('deletionGracePeriodSeconds')))
            if self.finished.is_set():
                asyncio.create_task(self.kubelet._confirm_deletion(self))


class FakeKubelet(LoopThread):
    """Runs in its own thread and event loop; see the module docstring for the behaviour.

    ``workdir``: the processes' working directory (default: a fresh temporary
    directory, removed at stop); ``cwd_for(pod) -> path`` overrides it per pod.
    ``env``: extra variables for every process (between ``os.environ`` and the
    container's ``env``). ``max_grace_seconds`` caps termination grace periods.
    ``root``: the kubelet's own directory (a fresh temporary one, removed at
    stop; a ``root`` given is kept, for a kubelet started again on it), holding :meth:`pod_dir` and
    :meth:`log_dir` of each pod. ``api_url`` is the emulator's
    URL, or a :class:`~.node.KubeletAccess` (a real API server: TLS, a node
    token, the real scheduler binds; ``KubeletAccess.from_controlplane(dir)``).
    The kubelet registers its Node and renews the node's Lease.
    """

    def __init__(self, api_url: str | KubeletAccess, *, node_name: str = 'kubedag-fake-node', workdir: str | pathlib.Path | None = None,
                 cwd_for: Callable[[dict[str, Any]], str | pathlib.Path] | None = None,
                 env: dict[str, str] | None = None, max_grace_seconds: float | None = None,
                 root: str | pathlib.Path | None = None) -> None:
        super().__init__()
        self.thread_name = f'fake-kubelet-{node_name}'
        self.access = api_url if isinstance(api_url, KubeletAccess) else KubeletAccess(api_url)
        self.api_url = self.access.api_url.rstrip('/')
        self.node_name = node_name
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix='kubedag-kubelet-')
            workdir = self._tmp.name
        self.workdir = pathlib.Path(workdir)
        self._root = tempfile.TemporaryDirectory(prefix='kubedag-kubelet-root-') if root is None else None
        self.root = pathlib.Path(self._root.name if self._root is not None else root)  # type: ignore[arg-type]
        self.root.mkdir(parents=True, exist_ok=True)
        self.cwd_for = cwd_for
        self.env = dict(env or {})
        self.max_grace_seconds = max_grace_seconds
        self.stopping = False
        self.port = 0
        self.pods: dict[tuple[str, str], _PodRun] = {}
        self._bound: set[str] = set()
        self._session: aiohttp.ClientSession | None = None

    # lifecycle (start/context manager: LoopThread)

    description = 'The fake kubelet'

    def stop(self) -> None:
        """Stop the kubelet (its processes are killed); remove its temporary root (pods' volumes and logs) and
        workdir, if any."""
        super().stop()
        if self._root is not None:
            self._root.cleanup()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def _serve(self) -> None:
        assert self._stop is not None
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
                                              headers=self.access.headers(),
                                              connector=aiohttp.TCPConnector(ssl=self.access.client_ssl() or True))
        app = aiohttp.web.Application()
        app.router.add_get('/containerLogs/{namespace}/{pod}/{container}', self._serve_logs)
        runner = aiohttp.web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, '127.0.0.1', 0, ssl_context=self.access.server_ssl())
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        loops: list[asyncio.Task[None]] = []
        try:
            node_uid = await self._register_node()
            loops.append(asyncio.create_task(self._watch_pods(), name='fake-kubelet-watch'))
            loops.append(asyncio.create_task(self._renew_lease(node_uid), name='fake-kubelet-lease'))
            self._ready.set()
            await self._stop.wait()
        finally:
            self.stopping = True
            for loop in loops:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
            for run in list(self.pods.values()):
                run.kill(0)
            runs = [run.task for run in self.pods.values()]
            if runs:
                await asyncio.wait(runs, timeout=10)
            await self._session.close()
            await runner.cleanup()

    def pod_dir(self, uid: str) -> pathlib.Path:
        """The kubelet's directory of a pod (by uid): its emptyDir, ConfigMap and Secret volumes and termination-message
        files, as ``/var/lib/kubelet/pods/<uid>``; removed when the pod is deleted."""
        return self.root / 'pods' / uid

    def log_dir(self, namespace: str, name: str, uid: str) -> pathlib.Path:
        """The directory of a pod's container logs, ``<container>.log`` each, as ``/var/log/pods/<ns>_<name>_<uid>``."""
        return self.root / 'logs' / f'{namespace}_{name}_{uid}'

    def _log_on_disk(self, namespace: str, name: str, container: str | None) -> bytes | None:
        """The log of a pod this kubelet no longer runs (e.g. finished before a restart), from disk: the newest
        pod of that name; ``container`` None: any container; None when there is none."""
        files = sorted((self.root / 'logs').glob(f"{glob.escape(namespace)}_{glob.escape(name)}_*/{glob.escape(container) if container else '*'}.log"),
                       key=lambda f: f.stat().st_mtime)
        return files[-1].read_bytes() if files else None

    # API access (HTTP only, like a real kubelet)

    async def _request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        assert self._session is not None
        async with self._session.request(method, self.api_url + path, json=body, headers=headers) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None)

    async def _register_node(self) -> str | None:
        """Create (or reuse) the Node and set its status: Ready, capacity, the log endpoint; return its uid."""
        status, body = await self._request('POST', '/api/v1/nodes', node_manifest(self.node_name))
        if status not in (201, 409):
            raise RuntimeError(f'Cannot register the node: {status} {body}')
        status, body = await self._request('PATCH', f'/api/v1/nodes/{self.node_name}/status',
                                           node_status(self.node_name, self.port, rfc3339()), SMP)
        if status != 200:
            raise RuntimeError(f'Cannot set the node status: {status} {body}')
        return body.get('metadata', {}).get('uid')

    async def _renew_lease(self, node_uid: str | None) -> None:
        """Create the node's Lease, then renew it (``spec.renewTime``) every :data:`RENEW_INTERVAL` seconds:
        the node lifecycle controller's heartbeat."""
        path = f'/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node_name}'
        while True:
            try:
                status, body = await self._request('PATCH', path, {'spec': {'renewTime': micro_time()}},
                                                   {'Content-Type': 'application/merge-patch+json'})
                if status == 404:
                    lease = lease_manifest(self.node_name, node_uid)
                    status, body = await self._request('POST', path.rsplit('/', 1)[0], lease)
                if status not in (200, 201):
                    logger.warning('Fake kubelet: lease renewal failed: %s %s', status, body)
            except aiohttp.ClientError as e:
                logger.warning('Fake kubelet: lease renewal failed: %s', e)
            await asyncio.sleep(RENEW_INTERVAL)

    async def _patch_pod_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        status, body = await self._request('PATCH', f'/api/v1/namespaces/{namespace}/pods/{name}/status', patch, SMP)
        if status not in (200, 404):
            logger.warning('Fake kubelet: status write of %s/%s failed: %s %s', namespace, name, status, body)

    async def _read_object(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        """A ConfigMap or Secret (``plural``), None if it does not exist; on other failures the container
        cannot start yet (:class:`_NotStartable`)."""
        if not name:
            return None
        try:
            status, body = await self._request('GET', f'/api/v1/namespaces/{namespace}/{plural}/{name}')
        except (aiohttp.ClientError, ValueError) as e:
            raise _NotStartable('CreateContainerConfigError', f'reading {plural} {namespace}/{name}: {e}') from e
        if status == 404:
            return None
        if status != 200:
            raise _NotStartable('CreateContainerConfigError', f'reading {plural} {namespace}/{name}: {status} {body}')
        return body

    async def _confirm_deletion(self, run: _PodRun) -> None:
        await self._delete_pod(run.namespace, run.name, run.uid)

    async def _delete_pod(self, namespace: str, name: str, uid: str) -> None:
        """Confirm a pod's deletion (grace period 0, for this uid only), as the kubelet does once its containers ended."""
        await self._request('DELETE', f'/api/v1/namespaces/{namespace}/pods/{name}',
                            {'apiVersion': 'v1', 'kind': 'DeleteOptions', 'gracePeriodSeconds': 0,
                             'preconditions': {'uid': uid}})

    async def _watch_pods(self) -> None:
        """List+watch pods, resuming from the last resourceVersion; relist after 410 Gone."""
        assert self._session is not None
        while True:
            try:
                status, listing = await self._request('GET', '/api/v1/pods' + (
                    '' if self.access.schedule else f'?fieldSelector=spec.nodeName%3D{self.node_name}'))
                if status != 200:
                    raise RuntimeError(f'pod list failed: {status} {listing}')
                for pod in listing['items']:
                    self._on_pod('ADDED', pod)
                since = listing['metadata']['resourceVersion']
                while since is not None:
                    since = await self._stream(since)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception('Fake kubelet: the pod watch failed; relisting')
                await asyncio.sleep(0.2)

    async def _stream(self, since: str) -> str | None:
        """One watch request; returns the resourceVersion to resume from, or None to relist."""
        assert self._session is not None
        params = {'watch': 'true', 'allowWatchBookmarks': 'true', 'resourceVersion': since, 'timeoutSeconds': '300'}
        if not self.access.schedule:  # a scheduler binds pods: only those bound here matter, as for a kubelet
            params['fieldSelector'] = f'spec.nodeName={self.node_name}'
        async with self._session.get(self.api_url + '/api/v1/pods', params=params) as resp:
            buffer = b''
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while b'\n' in buffer:
                    line, buffer = buffer.split(b'\n', 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event['type'] == 'ERROR':
                        return None
                    since = event['object'].get('metadata', {}).get('resourceVersion', since)
                    if event['type'] != 'BOOKMARK':
                        self._on_pod(event['type'], event['object'])
        return since

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        meta, spec = pod['metadata'], pod.get('spec', {})
        key = (meta['namespace'], meta['name'])
        run = self.pods.get(key)
        if kind == 'DELETED':
            if run is not None and run.uid == meta['uid']:
                run.forget()
                del self.pods[key]
            elif run is None and spec.get('nodeName') == self.node_name:  # finished before this kubelet started
                shutil.rmtree(self.pod_dir(meta['uid']), ignore_errors=True)
                shutil.rmtree(self.log_dir(key[0], key[1], meta['uid']), ignore_errors=True)
            return
        node = spec.get('nodeName')
        if not node:
            if self.access.schedule and spec.get('schedulerName', 'default-scheduler') == 'default-scheduler' \
                    and not meta.get('deletionTimestamp') and meta['uid'] not in self._bound:
                self._bound.add(meta['uid'])
                asyncio.create_task(self._request(
                    'POST', f"/api/v1/namespaces/{key[0]}/pods/{key[1]}/binding",
                    {'apiVersion': 'v1', 'kind': 'Binding', 'metadata': {'name': key[1]},
                     'target': {'apiVersion': 'v1', 'kind': 'Node', 'name': self.node_name}}))
            return
        if node != self.node_name:
            return
        if run is not None and run.uid != meta['uid']:  # recreated under the same name
            run.forget()
            run = None
        if run is None:
            phase = (pod.get('status') or {}).get('phase')
            if meta.get('deletionTimestamp'):
                asyncio.create_task(self._delete_pod(key[0], key[1], meta['uid']))
            elif phase not in ('Succeeded', 'Failed') and spec.get('containers'):
                self.pods[key] = _PodRun(self, pod)
            return
        run.update(pod)

    # the kubelet's log endpoint (the API server proxies pods/<name>/log here)

    async def _serve_logs(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        namespace, name, container = (request.match_info[k] for k in ('namespace', 'pod', 'container'))
        run = self.pods.get((namespace, name))
        on_disk = self._log_on_disk(namespace, name, container) if run is None else None
        if on_disk is None and (run is None or run.container['name'] != container):
            return aiohttp.web.Response(status=404, text='container not found')
        follow = request.query.get('follow') in ('true', '1') and run is not None
        tail = int(request.query['tailLines']) if request.query.get('tailLines') else None
        limit = int(request.query['limitBytes']) if request.query.get('limitBytes') else None
        data = on_disk if run is None else bytes(run.log)
        if tail is not None:
            data = b''.join(data.splitlines(keepends=True)[-tail:]) if tail > 0 else b''
        if limit is not None:
            data = data[:limit]
        if not follow or run is None:
            return aiohttp.web.Response(body=data, content_type='text/plain')
        response = aiohttp.web.StreamResponse(headers={'Content-Type': 'text/plain'})
        await response.prepare(request)
        sent = len(run.log)
        await response.write(data)
        with contextlib.suppress(ConnectionError):
            while True:
                async with run.log_changed:
                    await run.log_changed.wait_for(lambda: len(run.log) > sent or run.finished.is_set() or self.stopping)
                    chunk = bytes(run.log[sent:])
                    sent += len(chunk)
                if chunk:
                    await response.write(chunk)
                if (run.finished.is_set() or self.stopping) and len(run.log) == sent:
                    break
            await response.write_eof()
        return response

    # direct helper for tests

    def logs(self, namespace: str, name: str) -> str:
        """The output captured so far for a pod on this node, from disk for one it no longer runs ('' if unknown)."""
        run = self.pods.get((namespace, name))
        if run is not None:
            return bytes(run.log).decode(errors='replace')
        return (self._log_on_disk(namespace, name, None) or b'').decode(errors='replace')
