"""
A fake kubelet (plus scheduler) that runs pods' commands as local processes.

It talks to the API server only over HTTP, as a real node agent does:

* registers a ``Node`` (``POST /api/v1/nodes``, then its status through
  ``nodes/<name>/status``) whose ``daemonEndpoints.kubeletEndpoint.Port`` is a
  small HTTP server of its own serving ``/containerLogs/<ns>/<pod>/<container>``
  — the API server proxies ``pods/<name>/log`` there;
* lists and watches pods (resuming from the last resourceVersion, relisting on
  410 Gone), binds unscheduled pods to its node through ``pods/<name>/binding``
  (the scheduler's job), and for each pod bound to it:

  - writes ``Pending`` (``containerStatuses[0].state.waiting``), starts the
    first container's ``command + args`` (``$(VAR)`` references expanded) as a
    local process in its own process group, with the container's ``env``
    (``value`` and the common ``fieldRef``s) on top of ``os.environ``, in a
    working directory (the kubelet's ``workdir`` or ``cwd_for(pod)``); the
    image is ignored;
  - writes ``Running`` with ``state.running.startedAt``, then on exit
    ``Succeeded``/``Failed`` with ``state.terminated`` (``exitCode`` —
    128+signal for a signal — ``reason`` ``Completed``/``Error``,
    ``startedAt``, ``finishedAt``); ``restartPolicy`` ``Always``/``OnFailure``
    restart the process with ``restartCount`` and ``lastState``;
  - enforces ``activeDeadlineSeconds`` from ``status.startTime`` (kill, then
    ``Failed`` with pod ``reason: DeadlineExceeded``), re-read on updates;
  - on graceful deletion (a ``deletionTimestamp``) sends SIGTERM to the group,
    SIGKILL after the grace period, writes the final status and confirms the
    deletion with ``gracePeriodSeconds=0``; a pod that vanishes is killed at once.

Every status write is a strategic-merge PATCH of ``pods/<name>/status``.
Only the first container runs; init containers, probes, volumes and image
pulls are not emulated (a container without ``command`` fails to start).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pathlib
import re
import signal
import tempfile
from collections.abc import Callable
from typing import Any

import aiohttp
import aiohttp.web

from .loopthread import LoopThread
from .server import rfc3339

logger = logging.getLogger(__name__)

SMP = {'Content-Type': 'application/strategic-merge-patch+json'}
_VAR_REF = re.compile(r'\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$')


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
    }.get(path, '')


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class _PodRun:
    """The life of one pod (by uid) on this node."""

    def __init__(self, kubelet: FakeKubelet, pod: dict[str, Any]) -> None:
        self.kubelet = kubelet
        self.pod = pod
        meta = pod['metadata']
        self.namespace, self.name, self.uid = meta['namespace'], meta['name'], meta['uid']
        self.container = pod['spec']['containers'][0]
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
        self._deadline_task: asyncio.Task[None] | None = None
        self._kill_task: asyncio.Task[None] | None = None
        self.task = asyncio.create_task(self._run(), name=f'pod {self.namespace}/{self.name}')

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

    # the process

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.kubelet.env)
        for item in self.container.get('env') or []:
            if 'value' in item:
                env[item['name']] = _expand(str(item['value']), env)
            elif ((item.get('valueFrom') or {}).get('fieldRef') or {}).get('fieldPath'):
                env[item['name']] = _field_ref(self.pod, item['valueFrom']['fieldRef']['fieldPath'])
        return env

    async def _run(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            self.start_time, self.start_time_str = loop.time(), rfc3339()
            await self._write_status('Pending', {'waiting': {'reason': 'ContainerCreating'}})
            self._schedule_deadline()
            while True:
                state = await self._run_once()
                exit_code = state['terminated']['exitCode']
                policy = self.pod['spec'].get('restartPolicy', 'Always')
                again = policy == 'Always' or (policy == 'OnFailure' and exit_code != 0)
                if again and not (self.deleting or self.deadline_exceeded or self.vanished or self.kubelet.stopping):
                    self.last_state = state
                    self.restart_count += 1
                    await self._write_status('Running', {'waiting': {'reason': 'CrashLoopBackOff'}})
                    await asyncio.sleep(min(0.2 * 2 ** self.restart_count, 5.0))
                    continue
                break
            if self.vanished or self.kubelet.stopping:
                return
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
            self.finished.set()
            async with self.log_changed:
                self.log_changed.notify_all()

    async def _run_once(self) -> dict[str, Any]:
        env = self._env()
        argv = [_expand(str(a), env) for a in (self.container.get('command') or []) + (self.container.get('args') or [])]
        started = rfc3339()
        if not argv:
            return {'terminated': {'exitCode': 128, 'reason': 'StartError', 'startedAt': started, 'finishedAt': started,
                                   'message': 'fake kubelet: the container has no command (images are not run)'}}
        cwd = self.kubelet.cwd_for(self.pod) if self.kubelet.cwd_for else self.kubelet.workdir
        try:
            self.process = await asyncio.create_subprocess_exec(
                *argv, cwd=str(cwd), env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            return {'terminated': {'exitCode': 128, 'reason': 'StartError', 'startedAt': started,
                                   'finishedAt': rfc3339(), 'message': str(e)}}
        if self.deleting or self.deadline_exceeded or self.vanished:
            self.kill(0)
        else:
            await self._write_status('Running', {'running': {'startedAt': started}}, ready=True)
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.read(65536):
            async with self.log_changed:
                self.log.extend(chunk)
                self.log_changed.notify_all()
        returncode = await self.process.wait()
        code = _exit_code(returncode)
        return {'terminated': {'exitCode': code, 'reason': 'Completed' if code == 0 else 'Error',
                               'startedAt': started, 'finishedAt': rfc3339(), 'containerID': f'fake://{self.process.pid}'}}

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
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds (at once if 0)."""
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
    """

    def __init__(self, api_url: str, *, node_name: str = 'kubedag-fake-node', workdir: str | pathlib.Path | None = None,
                 cwd_for: Callable[[dict[str, Any]], str | pathlib.Path] | None = None,
                 env: dict[str, str] | None = None, max_grace_seconds: float | None = None) -> None:
        super().__init__()
        self.thread_name = f'fake-kubelet-{node_name}'
        self.api_url = api_url.rstrip('/')
        self.node_name = node_name
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix='kubedag-kubelet-')
            workdir = self._tmp.name
        self.workdir = pathlib.Path(workdir)
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
        """Stop the kubelet (its processes are killed) and remove its temporary workdir, if any."""
        super().stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def _serve(self) -> None:
        assert self._stop is not None
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        app = aiohttp.web.Application()
        app.router.add_get('/containerLogs/{namespace}/{pod}/{container}', self._serve_logs)
        runner = aiohttp.web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, '127.0.0.1', 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        watcher: asyncio.Task[None] | None = None
        try:
            await self._register_node()
            watcher = asyncio.create_task(self._watch_pods(), name='fake-kubelet-watch')
            self._ready.set()
            await self._stop.wait()
        finally:
            self.stopping = True
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            for run in list(self.pods.values()):
                run.kill(0)
            runs = [run.task for run in self.pods.values()]
            if runs:
                await asyncio.wait(runs, timeout=10)
            await self._session.close()
            await runner.cleanup()

    # API access (HTTP only, like a real kubelet)

    async def _request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        assert self._session is not None
        async with self._session.request(method, self.api_url + path, json=body, headers=headers) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None)

    async def _register_node(self) -> None:
        node = {'apiVersion': 'v1', 'kind': 'Node',
                'metadata': {'name': self.node_name, 'labels': {'kubernetes.io/hostname': self.node_name,
                                                                'kubernetes.io/os': 'linux'}}}
        status, body = await self._request('POST', '/api/v1/nodes', node)
        if status not in (201, 409):
            raise RuntimeError(f'Cannot register the node: {status} {body}')
        now = rfc3339()
        status_patch = {'status': {
            'addresses': [{'type': 'InternalIP', 'address': '127.0.0.1'}, {'type': 'Hostname', 'address': self.node_name}],
            'daemonEndpoints': {'kubeletEndpoint': {'Port': self.port}},
            'conditions': [{'type': 'Ready', 'status': 'True', 'reason': 'KubeletReady', 'message': 'fake kubelet is ready',
                            'lastHeartbeatTime': now, 'lastTransitionTime': now}],
            'nodeInfo': {'kubeletVersion': 'v0.0.0-fake', 'operatingSystem': 'linux', 'architecture': 'amd64',
                         'containerRuntimeVersion': 'fake://local-processes', 'kernelVersion': '', 'osImage': '',
                         'kubeProxyVersion': '', 'machineID': '', 'systemUUID': '', 'bootID': ''},
        }}
        status, body = await self._request('PATCH', f'/api/v1/nodes/{self.node_name}/status', status_patch, SMP)
        if status != 200:
            raise RuntimeError(f'Cannot set the node status: {status} {body}')

    async def _patch_pod_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        status, body = await self._request('PATCH', f'/api/v1/namespaces/{namespace}/pods/{name}/status', patch, SMP)
        if status not in (200, 404):
            logger.warning('Fake kubelet: status write of %s/%s failed: %s %s', namespace, name, status, body)

    async def _confirm_deletion(self, run: _PodRun) -> None:
        await self._request('DELETE', f'/api/v1/namespaces/{run.namespace}/pods/{run.name}',
                            {'gracePeriodSeconds': 0, 'preconditions': {'uid': run.uid}})

    async def _watch_pods(self) -> None:
        """List+watch pods, resuming from the last resourceVersion; relist after 410 Gone."""
        assert self._session is not None
        while True:
            try:
                status, listing = await self._request('GET', '/api/v1/pods')
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
                run.vanished = True
                run.kill(0)
                del self.pods[key]
            return
        node = spec.get('nodeName')
        if not node:
            if spec.get('schedulerName', 'default-scheduler') == 'default-scheduler' \
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
            run.vanished = True
            run.kill(0)
            run = None
        if run is None:
            phase = (pod.get('status') or {}).get('phase')
            if meta.get('deletionTimestamp'):
                asyncio.create_task(self._request('DELETE', f'/api/v1/namespaces/{key[0]}/pods/{key[1]}',
                                                  {'gracePeriodSeconds': 0, 'preconditions': {'uid': meta['uid']}}))
            elif phase not in ('Succeeded', 'Failed') and spec.get('containers'):
                self.pods[key] = _PodRun(self, pod)
            return
        run.update(pod)

    # the kubelet's log endpoint (the API server proxies pods/<name>/log here)

    async def _serve_logs(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        run = self.pods.get((request.match_info['namespace'], request.match_info['pod']))
        if run is None or run.container['name'] != request.match_info['container']:
            return aiohttp.web.Response(status=404, text='container not found')
        follow = request.query.get('follow') in ('true', '1')
        tail = int(request.query['tailLines']) if request.query.get('tailLines') else None
        limit = int(request.query['limitBytes']) if request.query.get('limitBytes') else None
        data = bytes(run.log)
        if tail is not None:
            data = b''.join(data.splitlines(keepends=True)[-tail:]) if tail > 0 else b''
        if limit is not None:
            data = data[:limit]
        if not follow:
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
        """The output captured so far for a pod on this node ('' if unknown)."""
        run = self.pods.get((namespace, name))
        return bytes(run.log).decode(errors='replace') if run is not None else ''
