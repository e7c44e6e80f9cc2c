"""
A Kubernetes API server emulator over real HTTP, built on kmock.

kmock (``kmock.KubernetesScaffold`` + ``kmock.Server``) provides the HTTP
server on 127.0.0.1 with a random port, request recording and its DSL (tests
can inject faults: ``api.handler['list v1/pods'] << 500``), the discovery
routes and ``Status``-shaped error rendering, and the bundled discovery data of
built-in resources. kmock's own stateful ``KubernetesEmulator`` is a plain
dict store (no resourceVersions, no conflicts, no selectors, naive patching),
so :class:`KubeApiEmulator` keeps its own store and implements what a
controller relies on:

* server-set ``uid``, ``creationTimestamp``, ``generation`` (bumped on spec
  changes only) and ``resourceVersion`` from one global counter, as etcd does;
* 201 on create, 409 ``AlreadyExists``, 409 ``Conflict`` on a stale
  ``resourceVersion`` (PUT, or a PATCH that carries one), 404/400/405/415/422
  with real ``Status`` bodies; no-op writes do not bump ``resourceVersion``;
* the ``status`` subresource kept apart from the main resource;
* list (with ``limit``/``continue``) and watch with label & field selectors,
  ``resourceVersion`` semantics (0/unset = current state as ADDED, N = replay
  from the event history, too old = ``ERROR`` 410 ``Expired``), an object
  leaving/entering a selector is a DELETED/ADDED, ``allowWatchBookmarks``
  (periodic BOOKMARKs), ``sendInitialEvents`` (initial ADDEDs then the
  ``k8s.io/initial-events-end`` BOOKMARK), ``timeoutSeconds``;
* ``generateName``, finalizers and ``deletionTimestamp``, graceful pod
  deletion (bound pods linger until the kubelet confirms), the garbage
  collector (``ownerReferences`` with Background/Foreground/Orphan
  propagation), the namespace lifecycle (no creation in missing or
  terminating namespaces, namespace deletion empties it first), CRD
  registration (a created CRD is served at once; deleting it deletes its
  objects);
* merge, strategic-merge and JSON patches (:mod:`.patching`);
* validation: custom resources against their structural schema, built-ins
  against the real OpenAPI schema with kubernetes-validate, and the per-kind
  strategies of :mod:`.resources` (pod defaulting and immutability, Secrets'
  ``stringData``, ConfigMap/Secret keys and ``immutable``...);
* pods' ``binding`` and ``log`` subresources; the log is proxied to the
  kubelet of the pod's node, as the real API server does.

Not emulated: authentication/authorization/admission webhooks, server-side
apply (``application/apply-patch+yaml`` answers 415), ``managedFields``,
CRD version conversion webhooks (versions share storage as ``strategy: None``),
CEL validation rules, protobuf/CBOR, Table output, and consistent snapshots for
paginated lists.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import copy
import dataclasses
import datetime
import functools
import json
import logging
import pathlib
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import aiohttp
import aiohttp.test_utils
import aiohttp.web
import kmock
import yaml
from kmock._internal import dsl as kmock_dsl
from kmock._internal import parsing as kmock_parsing
from kmock._internal import rendering as kmock_rendering

from . import errors, patching, resources, selectors
from .loopthread import LoopThread
from .resources import ResourceType

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACES = ('default', 'kube-system', 'kube-public', 'kube-node-lease')
_GENERATE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789'  # what the real name generator uses
_SYSTEM_META = ('uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation',
                'name', 'namespace', 'selfLink')


def rfc3339(offset: float = 0.0) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=offset)
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


@dataclasses.dataclass(frozen=True)
class ParsedPath:
    group: str
    version: str
    plural: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    watch_prefix: bool = False


def parse_path(path: str) -> ParsedPath | None:
    """Parse ``/api/v1/...`` and ``/apis/<group>/<version>/...`` resource URLs.

    Unlike kmock 0.8's parser, this handles the namespaces resource itself
    (``/api/v1/namespaces``, ``/api/v1/namespaces/<ns>/status``) and the
    legacy ``/watch/`` prefix.
    """
    parts = [p for p in path.split('/') if p]
    if len(parts) >= 2 and parts[0] == 'api':
        group, version, rest = '', parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == 'apis':
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watch_prefix = bool(rest) and rest[0] == 'watch'
    rest = rest[1:] if watch_prefix else rest
    if not rest:
        return None
    namespace = None
    if rest[0] == 'namespaces' and len(rest) >= 3 and rest[2] not in ('status', 'finalize'):
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = '/'.join(rest[2:]) or None
    return ParsedPath(group, version, plural, namespace, name, subresource, watch_prefix)


@dataclasses.dataclass
class WatchEvent:
    """One committed change, kept in the event history for watch replays."""
    rv: int
    storage: tuple[str, str]
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]  # the new state (for DELETED: the last state, with the deletion's resourceVersion)
    old: dict[str, Any] | None


class _Watch:
    """A live watch request: its filters and the queue of events committed after it began."""

    def __init__(self, rt: ResourceType, namespace: str | None, name: str | None,
                 label_match: selectors.Matcher, field_match: Callable[[dict[str, Any]], bool] | None) -> None:
        self.rt, self.namespace, self.name = rt, namespace, name
        self.label_match, self.field_match = label_match, field_match
        self.queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        meta = obj.get('metadata', {})
        if self.namespace is not None and meta.get('namespace') != self.namespace:
            return False
        if self.name is not None and meta.get('name') != self.name:
            return False
        return self.label_match(meta.get('labels') or {}) and (
            self.field_match is None or self.field_match(self.rt.to_view(obj)))

    def translate(self, ev: WatchEvent) -> dict[str, Any] | None:
        """The event this watcher sees: objects moving in/out of its selectors become ADDED/DELETED."""
        new_match = self.matches(ev.obj)
        old_match = self.matches(ev.old)
        if ev.type == 'ADDED':
            kind = 'ADDED' if new_match else None
        elif ev.type == 'DELETED':
            kind = 'DELETED' if (new_match or old_match) else None
        elif new_match and old_match:
            kind = 'MODIFIED'
        elif new_match:
            kind = 'ADDED'
        elif old_match:
            kind = 'DELETED'
        else:
            kind = None
        return None if kind is None else {'type': kind, 'object': self.rt.to_view(ev.obj)}


_Key = tuple[tuple[str, str], tuple[str | None, str]]
"""Where an object is stored: ``(storage, (namespace, name))``."""


def _sort_key(where: _Key) -> tuple[str, str, str, str]:
    (group, plural), (namespace, name) = where
    return group, plural, namespace or '', name


def _sees(view: Any, request: kmock.Request) -> bool:
    """Whether the kmock view ``view`` (a reaction's source) sees ``request``, the journal's newest request."""
    node = view
    while True:
        if isinstance(node, kmock_dsl.Root):
            return True
        if type(node) is kmock_dsl.Filter:
            if not node.criteria(request):
                return False
        elif type(node) is not kmock_dsl.Priority:
            return request in view  # slices, groups, exclusions, streams: kmock's own (journal-wide) answer
        node = node._source


class _Dispatch(Exception):
    """Raised by the fallback reaction to route a resource request to the emulator."""


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> aiohttp.web.Response:
    return aiohttp.web.json_response(body, status=status, headers=headers)


class KubeApiEmulator(kmock.KubernetesScaffold):
    """The request handler: a kmock scaffold with a stateful, Kubernetes-faithful store.

    All state lives in the event loop the server runs in; every mutation is
    synchronous within that loop, so no request ever sees a half-applied write.
    """

    def __init__(self, *, crd_files: Iterable[str | pathlib.Path] = (), bookmark_interval: float = 30.0,
                 history_limit: int = 10000, watch_timeout: float | None = None,
                 journal_limit: int | None = None, **kwargs: Any) -> None:
        self.journal_limit = journal_limit
        self.user_agents: collections.Counter[str] = collections.Counter()  # requests per User-Agent
        # requests being served now, and the most at once, per User-Agent (a client's concurrency as the server sees it)
        self.in_flight: collections.Counter[str] = collections.Counter()
        self.peak_in_flight: collections.Counter[str] = collections.Counter()
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        self.store: dict[tuple[str, str], dict[tuple[str | None, str], dict[str, Any]]] = collections.defaultdict(dict)
        self.resource_version = 0
        self.history: collections.deque[WatchEvent] = collections.deque(maxlen=history_limit)
        self.compacted_rv = 0
        self.watches: set[_Watch] = set()
        # Indexes for the bookkeeping controllers (kept by _commit), so that a pass costs what changed, not the
        # store's size: live uids, dependents by owner uid, objects being deleted, dependents to look at.
        self._uids: dict[str, _Key] = {}
        self._dependents: dict[str, set[_Key]] = collections.defaultdict(set)
        self._terminating: set[_Key] = set()
        self._gc_queue: set[_Key] = set()
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout
        self.crd_files = [pathlib.Path(p) for p in crd_files]
        self.objects = kmock.ObjectsArray()  # kmock's history-keeping mirror, for test assertions
        self._dirty: asyncio.Event | None = None
        self._closing = False
        self._controller_task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        super().__init__(**kwargs)
        for rt in resources.builtin_types():
            self.types[rt.key] = rt
        self.fallback[self._is_resource_request] << _Dispatch
        for probe in ('/healthz', '/livez', '/readyz'):
            self.fallback[f'get {probe}'] << b'ok'

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._dirty = asyncio.Event()
        self._http = aiohttp.ClientSession()
        for ns in DEFAULT_NAMESPACES:
            self.op_create(self.types['', 'v1', 'namespaces'], None, {'metadata': {'name': ns}})
        for path in self.crd_files:
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    self.op_create(self.types['apiextensions.k8s.io', 'v1', 'customresourcedefinitions'], None, doc)
        self._controller_task = asyncio.create_task(self._controllers(), name='k8s-emulator-controllers')

    async def stop(self) -> None:
        self._closing = True
        for watch in list(self.watches):
            watch.queue.put_nowait(None)
        if self._controller_task is not None:
            self._controller_task.cancel()
            try:
                await self._controller_task
            except asyncio.CancelledError:
                pass
        if self._http is not None:
            await self._http.close()

    # --- kmock integration ----------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """Same as kmock's RawHandler.__call__, but with a URL parser that handles all K8s paths."""
        await raw_request.read()
        raw_response: aiohttp.web.StreamResponse | None = None
        try:
            request = await self._parse_request(raw_request)
            agent = request.headers.get('User-Agent', '')
            self.user_agents[agent] += 1
            self._requests.append(request)
            if self.journal_limit is not None and len(self._requests) > 2 * self.journal_limit:
                # kmock matches each request against its views by scanning the journal: keep it short
                del self._requests[:-self.journal_limit]
            self.in_flight[agent] += 1
            self.peak_in_flight[agent] = max(self.peak_in_flight[agent], self.in_flight[agent])
            try:
                return await self._handle(request)
            except kmock_rendering.StreamingError as e:
                raw_response = e.args[0]
                raise e.__cause__ or e
            finally:
                self.in_flight[agent] -= 1
        except Exception as e:
            if not isinstance(e, errors.StatusError) and self._errors:
                self._errors[-1].append(e)
            if raw_response is None or not raw_response.prepared:
                return await self._render_error(e)
            await self._stream_error(e, raw_response)
            await raw_response.write_eof()
            return raw_response

    async def _parse_request(self, raw: aiohttp.web.BaseRequest) -> kmock.Request:
        body = await raw.read()
        text = body.decode('utf-8', errors='replace')
        data: Any = None
        if body:
            try:
                data = yaml.safe_load(text) if 'yaml' in (raw.content_type or '') else json.loads(text)
            except (ValueError, yaml.YAMLError):
                data = None
        parsed = parse_path(raw.path)
        method = kmock.method(raw.method)
        resource = action = None
        if parsed is not None:
            resource = kmock.resource(parsed.group, parsed.version, parsed.plural)
            kpath = kmock_parsing.ParsedPath(parsed.group, parsed.version, parsed.plural, parsed.namespace,
                                             parsed.name, parsed.subresource)
            query = dict(raw.query)
            if parsed.watch_prefix:
                query['watch'] = 'true'
            action = kmock_parsing.guess_k8s(kpath, method, query)
        return kmock.Request(
            id=len(self._requests), raw_request=raw, url=raw.url, method=raw.method,
            params=dict(raw.query), headers=dict(raw.headers), cookies=dict(raw.cookies),
            body=body, text=text, data=data, action=action, resource=resource,
            namespace=parsed.namespace if parsed else None, name=parsed.name if parsed else None,
            subresource=parsed.subresource if parsed else None,
        )

    def _is_resource_request(self, request: kmock.Request) -> bool:
        return parse_path(request.url.path) is not None

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        """kmock's ``RawHandler._handle`` (user reactions first, by priority, then kmock's and our fallbacks),
        with a cheap test of whether a reaction sees the request.

        kmock asks ``request in reaction._source``, which walks the whole request journal through every filter
        until it meets the request (the newest one) by identity: per request, the journal's length times the
        reactions, each an ``inspect.signature`` call for a callable filter — the emulator slowed to a stop at
        a few thousand requests. A source made only of plain filters and priorities over the root sees the
        request exactly when every filter's criteria accept it; only a source with slices, groups, exclusions or
        streams (whose answer depends on other requests) is still asked kmock's way."""
        try:
            priorities = [payload.priorities for payload in self._payloads]
            width = max((len(p) for p in priorities), default=0)
            keys = [tuple(-p for p in priority) + (0,) * (width - len(priority)) for priority in priorities]
            for index in sorted(range(len(keys)), key=keys.__getitem__):
                payload = self._payloads[index]
                if payload._disabled.is_set() or not _sees(payload._source, request):
                    continue
                try:
                    return await payload(request)
                except kmock_rendering.ReactionMismatchError:  # either mismatch or depletion
                    payload._disabled.set()
                except NotImplementedError:  # matched, but nothing to respond with
                    pass
            raise NotImplementedError('no reaction matches the request')
        except _Dispatch:
            return await self._dispatch(request)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, errors.StatusError):
            return _json(exc.status(), status=exc.code)
        logger.error('Emulator failure', exc_info=exc)
        return await super()._render_error(exc)

    # --- discovery (overrides kmock's, which guess from the reactions) ---------------------------

    def _get_resources(self) -> list[kmock.resource]:
        return [rt.resource() for rt in self.types.values()]

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for rt in self.types.values():
            if rt.group:
                groups.setdefault(rt.group, [])
                if rt.version not in groups[rt.group]:
                    groups[rt.group].append(rt.version)
        return {g: resources.sort_versions(v) for g, v in sorted(groups.items())}

    @staticmethod
    def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{'groupVersion': f'{group}/{v}', 'version': v} for v in versions]
        return {'name': group, 'versions': gvs, 'preferredVersion': gvs[0]}

    async def _serve_api(self, request: kmock.Request) -> Any:
        host = request.url.host or '127.0.0.1'
        return {'kind': 'APIVersions', 'versions': ['v1'],
                'serverAddressByClientCIDRs': [{'clientCIDR': '0.0.0.0/0', 'serverAddress': f'{host}:{request.url.port}'}]}

    async def _serve_apis(self, request: kmock.Request) -> Any:
        return {'kind': 'APIGroupList', 'apiVersion': 'v1',
                'groups': [self._group_doc(g, vs) for g, vs in self._groups().items()]}

    async def _serve_group(self, request: kmock.Request) -> Any:
        group = request.url.path.strip('/').split('/')[1]
        groups = self._groups()
        if group not in groups:
            raise errors.endpoint_not_found()
        return {'kind': 'APIGroup', 'apiVersion': 'v1', **self._group_doc(group, groups[group])}

    async def _serve_version(self, request: kmock.Request) -> Any:
        parts = request.url.path.strip('/').split('/')
        group, version = ('', parts[1]) if parts[0] == 'api' else (parts[1], parts[2])
        served = [rt for rt in self.types.values() if rt.group == group and rt.version == version]
        if not served:
            raise errors.endpoint_not_found()
        docs = []
        for rt in sorted(served, key=lambda r: r.plural):
            docs.append({'name': rt.plural, 'singularName': rt.singular, 'namespaced': rt.namespaced,
                         'kind': rt.kind, 'verbs': rt.verbs, 'shortNames': rt.shortnames,
                         'categories': rt.categories})
            for sub in sorted(rt.subresources):
                kind, verbs = {
                    'status': (rt.kind, ['get', 'patch', 'update']),
                    'log': ('Pod', ['get']),
                    'binding': ('Binding', ['create']),
                    'finalize': (rt.kind, ['update']),
                }[sub]
                docs.append({'name': f'{rt.plural}/{sub}', 'singularName': '', 'namespaced': rt.namespaced,
                             'kind': kind, 'verbs': verbs})
        return {'kind': 'APIResourceList', 'apiVersion': 'v1',
                'groupVersion': f'{group}/{version}' if group else version, 'resources': docs}

    async def _serve_server_version(self, request: kmock.Request) -> Any:
        major, minor = resources.KUBERNETES_VERSION.split('.')[:2]
        return {'major': major, 'minor': minor, 'gitVersion': f'v{major}.{minor}.0-kubedag-emulator',
                'gitCommit': 'emulator', 'gitTreeState': 'clean', 'buildDate': '2026-01-01T00:00:00Z',
                'goVersion': 'n/a', 'compiler': 'kmock', 'platform': 'linux/amd64'}

    # --- the store ------------------------------------------------------------------------------

    def type_for(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.types.get((group, version, plural))
        if rt is None:
            raise errors.endpoint_not_found()
        return rt

    def type_for_kind(self, api_version: str, kind: str) -> ResourceType:
        group, _, version = api_version.rpartition('/')
        for rt in self.types.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        raise errors.bad_request(f'no matches for kind "{kind}" in version "{api_version}"')

    def _types_for_storage(self, storage: tuple[str, str]) -> list[ResourceType]:
        return [rt for rt in self.types.values() if rt.storage == storage]

    def _stored(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.store[rt.storage].get((namespace if rt.namespaced else None, name))

    def _require(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self._stored(rt, namespace, name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return obj

    def _commit(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, kind: str) -> dict[str, Any]:
        """Store a change under the next resourceVersion and fan it out to watchers."""
        self.resource_version += 1
        obj['metadata']['resourceVersion'] = str(self.resource_version)
        meta = obj['metadata']
        key = (meta.get('namespace') if rt.namespaced else None, meta['name'])
        self._unindex(rt.storage, key)
        if kind == 'DELETED':
            self.store[rt.storage].pop(key, None)
            self._gc_queue.update(self._dependents.get(meta['uid'], ()))
        else:
            self.store[rt.storage][key] = obj
            self._index(rt.storage, key, obj)
        if len(self.history) == self.history.maxlen:
            self.compacted_rv = self.history[0].rv
        event = WatchEvent(self.resource_version, rt.storage, kind, copy.deepcopy(obj), copy.deepcopy(old) if old else None)
        self.history.append(event)
        for watch in list(self.watches):
            if watch.rt.storage == rt.storage:
                watch.queue.put_nowait(event)
        self._mirror(rt, key, obj, kind)
        if rt.plural == 'customresourcedefinitions':
            self._sync_crd(obj, deleted=kind == 'DELETED')
        if self._dirty is not None:
            self._dirty.set()
        return obj

    def _index(self, storage: tuple[str, str], key: tuple[str | None, str], obj: dict[str, Any]) -> None:
        meta, where = obj['metadata'], (storage, key)
        self._uids[meta['uid']] = where
        if meta.get('deletionTimestamp'):
            self._terminating.add(where)
        refs = meta.get('ownerReferences') or []
        for ref in refs:
            self._dependents[ref.get('uid')].add(where)
        if any(ref.get('uid') not in self._uids for ref in refs):
            self._gc_queue.add(where)

    def _unindex(self, storage: tuple[str, str], key: tuple[str | None, str]) -> None:
        prev = self.store[storage].get(key)
        if prev is None:
            return
        meta, where = prev['metadata'], (storage, key)
        if self._uids.get(meta['uid']) == where:
            del self._uids[meta['uid']]
        self._terminating.discard(where)
        for ref in meta.get('ownerReferences') or []:
            held = self._dependents.get(ref.get('uid'))
            if held is not None:
                held.discard(where)
                if not held:
                    del self._dependents[ref.get('uid')]

    def _located(self, where: _Key) -> tuple[ResourceType, dict[str, Any]] | None:
        """The type and stored object at ``where``; None when it is gone or its type is no longer served."""
        obj = self.store[where[0]].get(where[1])
        types = self._types_for_storage(where[0]) if obj is not None else []
        return (types[0], obj) if types else None

    def _dependents_of(self, owner_uid: str) -> list[tuple[ResourceType, dict[str, Any]]]:
        return [found for where in sorted(self._dependents.get(owner_uid, ()), key=_sort_key)
                if (found := self._located(where)) is not None]

    def _mirror(self, rt: ResourceType, key: tuple[str | None, str], obj: dict[str, Any], kind: str) -> None:
        res = kmock.resource(rt.group, rt.version, rt.plural)
        okey = (res, key[0], key[1])
        if kind == 'DELETED':
            if okey in self.objects:
                self.objects[okey].delete()
        elif okey in self.objects:
            self.objects[okey].create(copy.deepcopy(obj))
        else:
            self.objects[okey] = copy.deepcopy(obj)

    def _sync_crd(self, crd: dict[str, Any], *, deleted: bool) -> None:
        """Serve (or stop serving) the resource types of a CRD, as apiextensions-apiserver does."""
        name = crd['metadata']['name']
        for key in [k for k, rt in self.types.items() if rt.crd_name == name]:
            del self.types[key]
        if not deleted:
            for rt in resources.crd_types(crd):
                self.types[rt.key] = rt

    def compact(self) -> None:
        """Forget the event history, as etcd compaction does: older watches get 410 Gone."""
        self.history.clear()
        self.compacted_rv = self.resource_version

    def select(self, rt: ResourceType, namespace: str | None, *, name: str | None = None,
               label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
        label_match = selectors.parse_label_selector(label_selector)
        field_match = selectors.parse_field_selector(field_selector, rt.field_selectors)
        result = []
        for (ns, obj_name), obj in sorted(self.store[rt.storage].items(), key=lambda kv: (kv[0][0] or '', kv[0][1])):
            if namespace is not None and ns != namespace:
                continue
            if name is not None and obj_name != name:
                continue
            if label_match(obj['metadata'].get('labels') or {}) and (not field_selector or field_match(rt.to_view(obj))):
                result.append(obj)
        return result

    # --- operations (synchronous within the loop; raise StatusError) -----------------------------

    def _check_namespace(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        if not rt.namespaced:
            return
        if namespace is None:
            raise errors.endpoint_not_found()
        ns = self.store['', 'namespaces'].get((None, namespace))
        if ns is None:
            raise errors.not_found('namespaces', '', namespace)
        if ns['metadata'].get('deletionTimestamp'):
            raise errors.forbidden(rt.plural, rt.group, name,
                                   f'unable to create new content in namespace {namespace} because it is being terminated')

    def _check_kind(self, rt: ResourceType, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request('the body of the request was in an unknown format')
        body = copy.deepcopy(body)
        api_version, kind = body.setdefault('apiVersion', rt.api_version), body.setdefault('kind', rt.kind)
        if api_version != rt.api_version:
            raise errors.bad_request(f'the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})')
        if kind != rt.kind:
            raise errors.bad_request(f'the kind in the data ({kind}) does not match the expected kind ({rt.kind})')
        if not isinstance(body.setdefault('metadata', {}), dict):
            raise errors.bad_request('metadata must be an object')
        return body

    def _validate(self, rt: ResourceType, view: dict[str, Any], params: dict[str, str], warnings: list[str]) -> None:
        """Validate (and prune) an object in its served form; raise 422 on failure."""
        meta = view['metadata']
        causes = selectors.validate_labels(meta.get('labels'))
        if meta.get('annotations') is not None and not all(isinstance(v, str) for v in meta['annotations'].values()):
            causes.append(errors.field_error('metadata.annotations', 'Invalid value: annotation values must be strings'))
        if causes:
            raise errors.invalid(rt.kind, rt.group, meta.get('name', ''), causes)
        if rt.is_custom:
            resources.validate_custom(rt, view)
            return
        if rt.plural == 'customresourcedefinitions':
            resources.validate_crd(view)
        resources.validate_builtin(rt, view)
        if rt.plural == 'pods' and not rt.group:
            resources.validate_pod_semantics(view)
        if rt.plural in ('secrets', 'configmaps') and not rt.group:
            resources.validate_config_keys(rt, view)
        dropped = resources.drop_unknown_builtin_fields(view)
        if dropped and params.get('fieldValidation') == 'Strict':
            raise errors.bad_request('strict decoding error: ' + ', '.join(f'unknown field "{d}"' for d in dropped))
        if params.get('fieldValidation') != 'Ignore':
            warnings.extend(f'unknown field "{d}"' for d in dropped)

    def op_get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        return rt.to_view(self._require(rt, namespace, name))

    def op_list(self, rt: ResourceType, namespace: str | None, params: dict[str, str]) -> dict[str, Any]:
        items = self.select(rt, namespace, label_selector=params.get('labelSelector'),
                            field_selector=params.get('fieldSelector'))
        start, list_rv = 0, self.resource_version
        if params.get('continue'):
            try:
                token = json.loads(base64.urlsafe_b64decode(params['continue']))
                start = next((i for i, o in enumerate(items)
                              if [o['metadata'].get('namespace') or '', o['metadata']['name']] > token['after']), len(items))
                list_rv = int(token['rv'])  # every page says the first page's resourceVersion, as the API server's
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request('continue key is not valid')
        items = items[start:]
        meta: dict[str, Any] = {'resourceVersion': str(list_rv)}
        limit = int(params.get('limit') or 0)
        if limit and len(items) > limit:
            last = items[limit - 1]['metadata']
            token = {'after': [last.get('namespace') or '', last['name']], 'rv': list_rv}
            meta['continue'] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            meta['remainingItemCount'] = len(items) - limit
            items = items[:limit]
        views = [rt.to_view(o) for o in items]
        if not rt.is_custom:  # typed lists of built-ins carry no per-item kind/apiVersion
            for view in views:
                view.pop('kind', None)
                view.pop('apiVersion', None)
        return {'kind': rt.list_kind, 'apiVersion': rt.api_version, 'metadata': meta, 'items': views}

    def op_create(self, rt: ResourceType, namespace: str | None, body: Any,
                  params: dict[str, str] | None = None, warnings: list[str] | None = None) -> dict[str, Any]:
        params, warnings = params or {}, warnings if warnings is not None else []
        view = self._check_kind(rt, body)
        meta = view['metadata']
        if rt.namespaced:
            if meta.get('namespace') and namespace and meta['namespace'] != namespace:
                raise errors.bad_request('the namespace of the provided object does not match the namespace sent on the request')
            namespace = namespace or meta.get('namespace')
            meta['namespace'] = namespace
        else:
            meta.pop('namespace', None)
        if meta.get('resourceVersion'):
            raise errors.bad_request('resourceVersion should not be set on objects to be created')
        if not meta.get('name'):
            if not meta.get('generateName'):
                raise errors.invalid(rt.kind, rt.group, '', [errors.field_error(
                    'metadata.name', 'Required value: name or generateName is required', 'FieldValueRequired')])
            for _ in range(100):
                candidate = meta['generateName'] + ''.join(random.choices(_GENERATE_ALPHABET, k=5))
                if self._stored(rt, namespace, candidate) is None:
                    break
            meta['name'] = candidate
        name = meta['name']
        self._check_namespace(rt, namespace, name)
        causes = resources.validate_name(rt, name)
        if causes:
            raise errors.invalid(rt.kind, rt.group, name, causes)
        for key in ('uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation',
                    'selfLink', 'managedFields'):
            meta.pop(key, None)

        # Registry strategies: PrepareForCreate.
        if rt.has_status_subresource:
            view.pop('status', None)
        if rt.plural == 'pods' and not rt.group:
            resources.default_pod(view)
            view['status'] = resources.pod_create_status(view)
        elif rt.plural == 'namespaces' and not rt.group:
            resources.default_namespace(view)
            view['status'] = {'phase': 'Active'}
        elif rt.plural == 'secrets' and not rt.group:
            resources.prepare_secret(view)
        elif rt.plural == 'configmaps' and not rt.group:
            resources.prepare_config_map(view)
        elif rt.plural == 'customresourcedefinitions':
            resources.validate_crd(view)
            view['status'] = resources.crd_status(view, rfc3339())
            finalizers = meta.setdefault('finalizers', [])
            if 'customresourcecleanup.apiextensions.k8s.io' not in finalizers:
                finalizers.append('customresourcecleanup.apiextensions.k8s.io')

        self._validate(rt, view, params, warnings)
        if self._stored(rt, namespace, name) is not None:
            raise errors.already_exists(rt.plural, rt.group, name)
        meta['uid'] = str(uuid.uuid4())
        meta['creationTimestamp'] = rfc3339()
        if rt.has_generation:
            meta['generation'] = 1
        obj = rt.from_view(view)
        if params.get('dryRun') == 'All':
            return rt.to_view(obj)
        return rt.to_view(self._commit(rt, obj, None, 'ADDED'))

    def _finish_update(self, rt: ResourceType, old: dict[str, Any], candidate: dict[str, Any],
                       subresource: str | None, params: dict[str, str], warnings: list[str]) -> dict[str, Any]:
        """The common tail of PUT and PATCH: subresource split, system fields, validation, commit."""
        old_view = rt.to_view(old)
        cand_meta = candidate.setdefault('metadata', {})
        if not isinstance(cand_meta, dict):
            raise errors.bad_request('metadata must be an object')
        rv = cand_meta.get('resourceVersion')
        if rv is not None and str(rv) != old['metadata']['resourceVersion']:
            raise errors.conflict(rt.plural, rt.group, old['metadata']['name'])

        if subresource == 'status':
            new = copy.deepcopy(old_view)
            if 'status' in candidate:
                new['status'] = candidate['status']
            else:
                new.pop('status', None)
        elif subresource == 'finalize':
            new = copy.deepcopy(old_view)
            new.setdefault('spec', {})['finalizers'] = (candidate.get('spec') or {}).get('finalizers') or []
        else:
            new = copy.deepcopy(candidate)
            if rt.has_status_subresource:
                if 'status' in old_view:
                    new['status'] = copy.deepcopy(old_view['status'])
                else:
                    new.pop('status', None)
            if rt.plural == 'pods' and not rt.group:
                new.setdefault('spec', {}).setdefault('nodeName', old_view.get('spec', {}).get('nodeName'))
                if new['spec']['nodeName'] is None:
                    new['spec'].pop('nodeName')
                resources.default_pod(new)
                resources.check_pod_update(old_view, new)
            elif rt.plural in ('secrets', 'configmaps') and not rt.group:
                (resources.prepare_secret if rt.plural == 'secrets' else resources.prepare_config_map)(new)
                resources.check_config_update(rt, old_view, new)
        new['apiVersion'], new['kind'] = rt.api_version, rt.kind
        meta = new.setdefault('metadata', {})
        for key in _SYSTEM_META:
            if key in old_view['metadata']:
                meta[key] = old_view['metadata'][key]
            else:
                meta.pop(key, None)
        meta['resourceVersion'] = old['metadata']['resourceVersion']
        if old_view['metadata'].get('deletionTimestamp'):
            added = [f for f in meta.get('finalizers') or [] if f not in (old_view['metadata'].get('finalizers') or [])]
            if added:
                raise errors.invalid(rt.kind, rt.group, meta['name'], [errors.field_error(
                    'metadata.finalizers', f'Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added}',
                    'FieldValueForbidden')])
        if rt.plural == 'customresourcedefinitions':
            resources.validate_crd(new)
            if subresource != 'status':
                new['status'] = resources.crd_status(new, rfc3339())
        self._validate(rt, new, params, warnings)

        if rt.has_generation and self._spec_changed(rt, old_view, new):
            meta['generation'] = old_view['metadata'].get('generation', 1) + 1
        if new == old_view:
            return old_view  # a no-op write: no new resourceVersion, no watch event
        obj = rt.from_view(new)
        if params.get('dryRun') == 'All':
            return rt.to_view(obj)
        committed = self._commit(rt, obj, old, 'MODIFIED')
        result = rt.to_view(committed)
        self._remove_if_released(rt, committed)
        return result

    @staticmethod
    def _spec_changed(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> bool:
        if rt.is_custom:
            skip = {'metadata', 'status'} if rt.has_status_subresource else {'metadata'}
            return {k: v for k, v in old.items() if k not in skip} != {k: v for k, v in new.items() if k not in skip}
        return old.get('spec') != new.get('spec')

    def op_update(self, rt: ResourceType, namespace: str | None, name: str, body: Any, subresource: str | None = None,
                  params: dict[str, str] | None = None, warnings: list[str] | None = None) -> dict[str, Any]:
        params, warnings = params or {}, warnings if warnings is not None else []
        old = self._require(rt, namespace, name)
        candidate = self._check_kind(rt, body)
        if candidate['metadata'].get('name') not in (None, name):
            raise errors.bad_request(f"the name of the object ({candidate['metadata']['name']}) does not match the name on the URL ({name})")
        if not candidate['metadata'].get('resourceVersion') and rt.is_custom:
            raise errors.invalid(rt.kind, rt.group, name, [errors.field_error(
                'metadata.resourceVersion', 'Invalid value: 0x0: must be specified for an update')])
        return self._finish_update(rt, old, candidate, subresource, params, warnings)

    def op_patch(self, rt: ResourceType, namespace: str | None, name: str, patch: Any, content_type: str,
                 subresource: str | None = None, params: dict[str, str] | None = None,
                 warnings: list[str] | None = None) -> dict[str, Any]:
        params, warnings = params or {}, warnings if warnings is not None else []
        old = self._require(rt, namespace, name)
        base = rt.to_view(old)
        content_type = (content_type or '').split(';')[0].strip()
        if content_type == patching.MERGE_PATCH:
            if not isinstance(patch, dict):
                raise errors.bad_request('a merge patch must be a JSON object')
            candidate = patching.merge_patch(base, patch)
        elif content_type == patching.JSON_PATCH:
            candidate = patching.json_patch(base, patch)
        elif content_type == patching.STRATEGIC_MERGE_PATCH:
            if rt.is_custom:
                raise errors.StatusError(415, 'UnsupportedMediaType',
                                         'the body of the request was in an unknown format - accepted media types include: '
                                         'application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml')
            if not isinstance(patch, dict):
                raise errors.bad_request('a strategic merge patch must be a JSON object')
            candidate = patching.strategic_merge_patch(base, patch)
        else:
            raise errors.unsupported_media_type(content_type)
        if not isinstance(candidate, dict):
            raise errors.unprocessable('the patched object is not a JSON object')
        return self._finish_update(rt, old, candidate, subresource, params, warnings)

    def _remove_if_released(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """An object being deleted disappears once nothing holds it any more."""
        meta = obj['metadata']
        if not meta.get('deletionTimestamp') or meta.get('finalizers'):
            return
        if rt.plural == 'namespaces' and not rt.group and (obj.get('spec') or {}).get('finalizers'):
            return
        if rt.plural == 'pods' and not rt.group and meta.get('deletionGracePeriodSeconds'):
            return  # waits for the kubelet's final delete with gracePeriodSeconds=0
        self._remove(rt, obj)

    def _remove(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        final = copy.deepcopy(obj)
        self._commit(rt, final, obj, 'DELETED')
        return final

    def op_delete(self, rt: ResourceType, namespace: str | None, name: str, options: dict[str, Any] | None = None
                  ) -> tuple[dict[str, Any], bool]:
        """Delete; return (body, removed). Objects held by finalizers or grace only get a deletionTimestamp."""
        options = options or {}
        obj = self._require(rt, namespace, name)
        meta = obj['metadata']
        pre = options.get('preconditions') or {}
        if pre.get('uid') and pre['uid'] != meta['uid']:
            raise errors.conflict(rt.plural, rt.group, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta['uid']}")
        if pre.get('resourceVersion') and pre['resourceVersion'] != meta['resourceVersion']:
            raise errors.conflict(rt.plural, rt.group, name, f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: {meta['resourceVersion']}")
        policy = options.get('propagationPolicy')
        if policy is None and options.get('orphanDependents') is not None:
            policy = 'Orphan' if options['orphanDependents'] else 'Background'
        if policy not in (None, 'Background', 'Foreground', 'Orphan'):
            raise errors.invalid('DeleteOptions', '', '', [errors.field_error(
                'propagationPolicy', f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"', 'FieldValueNotSupported')])
        is_pod = rt.plural == 'pods' and not rt.group

        grace = 0
        if is_pod:
            requested = options.get('gracePeriodSeconds')
            grace = int(requested) if requested is not None else int(obj['spec'].get('terminationGracePeriodSeconds', 30))
            if not obj['spec'].get('nodeName') or (obj.get('status') or {}).get('phase') in ('Succeeded', 'Failed'):
                grace = 0
            grace = max(grace, 0)

        if meta.get('deletionTimestamp'):
            if is_pod and grace < (meta.get('deletionGracePeriodSeconds') or 0):
                new = copy.deepcopy(obj)
                new['metadata']['deletionGracePeriodSeconds'] = grace
                new['metadata']['deletionTimestamp'] = rfc3339(grace)
                committed = self._commit(rt, new, obj, 'MODIFIED')
                self._remove_if_released(rt, committed)
                return rt.to_view(committed), self._stored(rt, namespace, name) is None
            return rt.to_view(obj), False

        if policy == 'Orphan':
            self._orphan_dependents(meta['uid'])
        new = copy.deepcopy(obj)
        new_meta = new['metadata']
        if policy == 'Foreground':
            new_meta.setdefault('finalizers', [])
            if 'foregroundDeletion' not in new_meta['finalizers']:
                new_meta['finalizers'].append('foregroundDeletion')
        held = bool(new_meta.get('finalizers')) or grace > 0 or (
            rt.plural == 'namespaces' and not rt.group and (new.get('spec') or {}).get('finalizers'))
        if not held:
            final = self._remove(rt, obj)
            return (rt.to_view(final) if is_pod or rt.is_custom else {
                'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Success',
                'details': {'name': name, 'group': rt.group, 'kind': rt.plural, 'uid': meta['uid']}}), True
        new_meta['deletionTimestamp'] = rfc3339(grace)
        new_meta['deletionGracePeriodSeconds'] = grace
        if rt.has_generation:
            new_meta['generation'] = new_meta.get('generation', 1) + 1
        if rt.plural == 'namespaces' and not rt.group:
            new.setdefault('status', {})['phase'] = 'Terminating'
        return rt.to_view(self._commit(rt, new, obj, 'MODIFIED')), False

    def op_delete_collection(self, rt: ResourceType, namespace: str | None, params: dict[str, str],
                             options: dict[str, Any]) -> dict[str, Any]:
        victims = self.select(rt, namespace, label_selector=params.get('labelSelector'),
                              field_selector=params.get('fieldSelector'))
        items = []
        for obj in victims:
            body, _ = self.op_delete(rt, obj['metadata'].get('namespace'), obj['metadata']['name'], options)
            items.append(body)
        return {'kind': rt.list_kind, 'apiVersion': rt.api_version,
                'metadata': {'resourceVersion': str(self.resource_version)}, 'items': items}

    def op_bind(self, rt: ResourceType, namespace: str | None, name: str, body: Any) -> dict[str, Any]:
        """``pods/<name>/binding``: what the scheduler does to assign a pod to a node."""
        pod = self._require(rt, namespace, name)
        target = (body or {}).get('target') or {}
        if not target.get('name'):
            raise errors.invalid('Binding', '', name, [errors.field_error('target.name', 'Required value', 'FieldValueRequired')])
        if pod['spec'].get('nodeName'):
            raise errors.conflict(rt.plural, rt.group, name, f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"')
        if pod['metadata'].get('deletionTimestamp'):
            raise errors.conflict(rt.plural, rt.group, name, f'pod {name} is being deleted, cannot be assigned to a host')
        new = copy.deepcopy(pod)
        new['spec']['nodeName'] = target['name']
        conditions = [c for c in new.setdefault('status', {}).get('conditions', []) if c.get('type') != 'PodScheduled']
        conditions.append({'type': 'PodScheduled', 'status': 'True', 'lastProbeTime': None, 'lastTransitionTime': rfc3339()})
        new['status']['conditions'] = conditions
        self._commit(rt, new, pod, 'MODIFIED')
        return {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Success', 'code': 201}

    # --- the garbage collector, namespace and CRD-cleanup controllers ------------------------------

    def _all_objects(self) -> Iterator[tuple[ResourceType, dict[str, Any]]]:
        for storage, objs in list(self.store.items()):
            types = self._types_for_storage(storage)
            if not types:
                continue
            for obj in list(objs.values()):
                yield types[0], obj

    def _orphan_dependents(self, owner_uid: str) -> None:
        for rt, obj in self._dependents_of(owner_uid):
            refs = obj['metadata'].get('ownerReferences') or []
            if any(r.get('uid') == owner_uid for r in refs):
                new = copy.deepcopy(obj)
                new['metadata']['ownerReferences'] = [r for r in refs if r.get('uid') != owner_uid]
                if not new['metadata']['ownerReferences']:
                    del new['metadata']['ownerReferences']
                self._commit(rt, new, obj, 'MODIFIED')

    def _drop_finalizer(self, rt: ResourceType, obj: dict[str, Any], finalizer: str) -> None:
        new = copy.deepcopy(obj)
        new['metadata']['finalizers'] = [f for f in new['metadata'].get('finalizers', []) if f != finalizer]
        if not new['metadata']['finalizers']:
            del new['metadata']['finalizers']
        committed = self._commit(rt, new, obj, 'MODIFIED')
        self._remove_if_released(rt, committed)

    def _delete_quietly(self, rt: ResourceType, obj: dict[str, Any], policy: str = 'Background') -> None:
        meta = obj['metadata']
        if meta.get('deletionTimestamp') or self._stored(rt, meta.get('namespace'), meta['name']) is not obj:
            return
        try:
            self.op_delete(rt, meta.get('namespace'), meta['name'], {'propagationPolicy': policy})
        except errors.StatusError:
            pass

    def reconcile(self) -> None:
        """One pass of the kube-controller-manager parts that are pure API-object bookkeeping.

        It looks only at objects being deleted and at dependents whose owners changed (the indexes kept by
        :meth:`_commit`): with thousands of objects stored, a write no longer costs a walk over all of them."""
        for where in sorted(self._terminating, key=_sort_key):
            found = self._located(where)
            if found is None:
                continue
            rt, obj = found
            meta = obj['metadata']
            # Namespace controller: empty a terminating namespace, then release it.
            if rt.plural == 'namespaces' and not rt.group and meta.get('deletionTimestamp'):
                contents = [(crt, o) for crt, o in self._all_objects()
                            if crt.namespaced and o['metadata'].get('namespace') == meta['name']]
                for crt, o in contents:
                    self._delete_quietly(crt, o)
                if not any(self._stored(crt, o['metadata'].get('namespace'), o['metadata']['name']) for crt, o in contents):
                    if (obj.get('spec') or {}).get('finalizers'):
                        new = copy.deepcopy(obj)
                        new['spec']['finalizers'] = []
                        committed = self._commit(rt, new, obj, 'MODIFIED')
                        self._remove_if_released(rt, committed)
            # CRD cleanup: delete all instances, then release the CRD.
            elif rt.plural == 'customresourcedefinitions' and meta.get('deletionTimestamp') \
                    and 'customresourcecleanup.apiextensions.k8s.io' in (meta.get('finalizers') or []):
                storage = (obj['spec']['group'], obj['spec']['names']['plural'])
                instances = list(self.store[storage].values())
                for instance in instances:
                    self._delete_quietly(self._types_for_storage(storage)[0], instance)
                if not self.store[storage]:
                    self._drop_finalizer(rt, obj, 'customresourcecleanup.apiextensions.k8s.io')
            # Garbage collector, foreground: delete dependents first, then release the owner.
            elif meta.get('deletionTimestamp') and 'foregroundDeletion' in (meta.get('finalizers') or []):
                dependents = self._dependents_of(meta['uid'])
                for drt, dependent in dependents:
                    self._delete_quietly(drt, dependent, 'Foreground')
                if not any(self._stored(drt, d['metadata'].get('namespace'), d['metadata']['name']) for drt, d in dependents):
                    self._drop_finalizer(rt, obj, 'foregroundDeletion')

        # Garbage collector, background: dependents whose owners are all gone are deleted;
        # references to gone owners are dropped from dependents that still have a live owner.
        while self._gc_queue:
            found = self._located(self._gc_queue.pop())
            if found is None:
                continue
            rt, obj = found
            refs = obj['metadata'].get('ownerReferences') or []
            if not refs:
                continue
            live = [r for r in refs if r.get('uid') in self._uids]
            if not live:
                self._delete_quietly(rt, obj)
            elif len(live) < len(refs) and self._stored(rt, obj['metadata'].get('namespace'), obj['metadata']['name']) is obj:
                new = copy.deepcopy(obj)
                new['metadata']['ownerReferences'] = live
                self._commit(rt, new, obj, 'MODIFIED')

    async def _controllers(self) -> None:
        assert self._dirty is not None
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                self.reconcile()
            except Exception:  # never let a bookkeeping bug kill the server
                logger.exception('Emulator controllers failed')
            await asyncio.sleep(0)

    # --- HTTP dispatch ----------------------------------------------------------------------------

    async def _dispatch(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        path = parse_path(request.url.path)
        assert path is not None
        rt = self.type_for(path.group, path.version, path.plural)
        params = dict(request.params)
        if path.watch_prefix:
            params['watch'] = 'true'
        ns, name, sub = path.namespace, path.name, path.subresource
        if ns is not None and not rt.namespaced:
            raise errors.endpoint_not_found()
        if sub is not None and sub not in rt.subresources:
            raise errors.endpoint_not_found()
        if rt.namespaced and ns is None and (name is not None or request.method != 'GET'):
            raise errors.endpoint_not_found()
        method = request.method.upper()
        warnings: list[str] = []
        body = request.data

        if method == 'GET':
            if params.get('watch') in ('true', '1'):
                return await self._serve_watch(request, rt, ns, name, params)
            if name is None:
                return _json(self.op_list(rt, ns, params))
            if sub == 'log':
                return await self._serve_log(request, rt, ns, name, params)
            return _json(self.op_get(rt, ns, name))
        if method == 'POST':
            if name is None:
                return self._respond(self.op_create(rt, ns, body, params, warnings), warnings, 201)
            if sub == 'binding':
                return _json(self.op_bind(rt, ns, name, body), status=201)
        elif method == 'PUT' and name is not None and sub != 'log':
            return self._respond(self.op_update(rt, ns, name, body, sub, params, warnings), warnings)
        elif method == 'PATCH' and name is not None and sub in (None, 'status'):
            content_type = request.headers.get('Content-Type', '')
            if content_type.startswith(patching.APPLY_PATCH):
                raise errors.StatusError(415, 'UnsupportedMediaType', 'server-side apply is not supported by the kubedag emulator')
            return self._respond(self.op_patch(rt, ns, name, body, content_type, sub, params, warnings), warnings)
        elif method == 'DELETE' and sub is None:
            options = dict(body) if isinstance(body, dict) else {}
            for key in ('propagationPolicy', 'gracePeriodSeconds', 'orphanDependents'):
                if key in params:
                    options[key] = params[key] if key == 'propagationPolicy' else (
                        params[key] == 'true' if key == 'orphanDependents' else int(params[key]))
            if name is None:
                return _json(self.op_delete_collection(rt, ns, params, options))
            result, _ = self.op_delete(rt, ns, name, options)
            return _json(result)
        raise errors.method_not_allowed()

    @staticmethod
    def _respond(body: dict[str, Any], warnings: list[str], status: int = 200) -> aiohttp.web.Response:
        headers = {'Warning': ', '.join(f'299 - "{w}"' for w in warnings)} if warnings else None
        return _json(body, status=status, headers=headers)

    async def _serve_watch(self, request: kmock.Request, rt: ResourceType, namespace: str | None,
                           name: str | None, params: dict[str, str]) -> aiohttp.web.StreamResponse:
        label_match = selectors.parse_label_selector(params.get('labelSelector'))
        field_match = selectors.parse_field_selector(params.get('fieldSelector'), rt.field_selectors)
        watch = _Watch(rt, namespace, name, label_match, field_match if params.get('fieldSelector') else None)
        bookmarks = params.get('allowWatchBookmarks') in ('true', '1')
        send_initial = params.get('sendInitialEvents') in ('true', '1')
        since = params.get('resourceVersion') or ''
        if send_initial and (params.get('resourceVersionMatch') != 'NotOlderThan' or not bookmarks):
            raise errors.invalid('ListOptions', 'meta.k8s.io', '', [errors.field_error(
                'sendInitialEvents', 'Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled and allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan', 'FieldValueForbidden')])
        try:
            timeout = float(params['timeoutSeconds']) if params.get('timeoutSeconds') else self.watch_timeout
        except ValueError:
            raise errors.bad_request(f"invalid timeoutSeconds: {params['timeoutSeconds']!r}")

        # Snapshot and registration happen with no await in between: no event can slip through.
        initial: list[dict[str, Any]] = []
        expired = False
        if since in ('', '0') or send_initial:
            initial = [{'type': 'ADDED', 'object': rt.to_view(o)} for o in self.select(rt, namespace, name=name)
                       if watch.matches(o)]
            if send_initial:
                initial.append(self._bookmark(rt, initial_end=True))
        else:
            try:
                since_rv = int(since)
            except ValueError:
                raise errors.bad_request(f'invalid resource version: {since}')
            if since_rv < self.compacted_rv:
                expired = True
                initial = [{'type': 'ERROR', 'object': errors.gone(
                    f'too old resource version: {since_rv} ({self.compacted_rv})').status()}]
            else:
                for ev in self.history:
                    if ev.rv > since_rv and ev.storage == rt.storage and (seen := watch.translate(ev)):
                        initial.append(seen)
        if not expired:
            self.watches.add(watch)

        raw = request._raw_request
        assert raw is not None
        response = aiohttp.web.StreamResponse(status=200, headers={'Content-Type': 'application/json'})
        response.enable_chunked_encoding()
        loop = asyncio.get_running_loop()
        try:
            await response.prepare(raw)
            for item in initial:
                await response.write(json.dumps(item).encode() + b'\n')
            if expired:
                await response.write_eof()
                return response
            deadline = loop.time() + timeout if timeout else None
            next_bookmark = loop.time() + self.bookmark_interval
            while not self._closing:
                now = loop.time()
                if deadline is not None and now >= deadline:
                    break
                wait = min(1.0, max(0.0, next_bookmark - now), (deadline - now) if deadline is not None else 1.0)
                try:
                    ev = await asyncio.wait_for(watch.queue.get(), timeout=max(wait, 0.01))
                except TimeoutError:
                    if raw.transport is None or raw.transport.is_closing():
                        break  # the client went away
                    if bookmarks and loop.time() >= next_bookmark:
                        await response.write(json.dumps(self._bookmark(rt)).encode() + b'\n')
                        next_bookmark = loop.time() + self.bookmark_interval
                    continue
                if ev is None:
                    break
                if seen := watch.translate(ev):
                    await response.write(json.dumps(seen).encode() + b'\n')
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client disconnected mid-stream
        finally:
            self.watches.discard(watch)
        return response

    def _bookmark(self, rt: ResourceType, initial_end: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {'resourceVersion': str(self.resource_version)}
        if initial_end:
            meta['annotations'] = {'k8s.io/initial-events-end': 'true'}
        return {'type': 'BOOKMARK', 'object': {'kind': rt.kind, 'apiVersion': rt.api_version, 'metadata': meta}}

    async def _serve_log(self, request: kmock.Request, rt: ResourceType, namespace: str | None, name: str,
                         params: dict[str, str]) -> aiohttp.web.StreamResponse:
        """``pods/<name>/log``: proxied to the kubelet of the pod's node, like the real API server."""
        pod = self._require(rt, namespace, name)
        names = [c['name'] for c in pod['spec'].get('containers', [])]
        container = params.get('container')
        if not container:
            if len(names) != 1:
                raise errors.bad_request(f'a container name must be specified for pod {name}, choose one of: [{" ".join(names)}]')
            container = names[0]
        if container not in names:
            raise errors.bad_request(f'container {container} is not valid for pod {name}')
        statuses = {s.get('name'): s for s in (pod.get('status') or {}).get('containerStatuses') or []}
        state = (statuses.get(container) or {}).get('state') or {}
        node_name = pod['spec'].get('nodeName')
        if not node_name or not statuses.get(container) or ('waiting' in state and not statuses[container].get('lastState')):
            reason = (state.get('waiting') or {}).get('reason', 'ContainerCreating')
            raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        node = self.store['', 'nodes'].get((None, node_name))
        if node is None:
            raise errors.not_found('nodes', '', node_name)
        status = node.get('status') or {}
        address = next((a['address'] for a in status.get('addresses', []) if a.get('type') == 'InternalIP'), '127.0.0.1')
        port = ((status.get('daemonEndpoints') or {}).get('kubeletEndpoint') or {}).get('Port')
        if not port:
            raise errors.StatusError(500, 'InternalError', f'node {node_name} has no kubelet endpoint')
        forwarded = {k: v for k, v in params.items() if k in ('follow', 'tailLines', 'limitBytes', 'timestamps', 'previous', 'sinceSeconds')}
        url = f'http://{address}:{port}/containerLogs/{namespace}/{name}/{container}'
        assert self._http is not None and request._raw_request is not None
        try:
            upstream = await self._http.get(url, params=forwarded, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        except aiohttp.ClientError as e:
            raise errors.StatusError(500, 'InternalError', f'Get "{url}": {e}')
        async with upstream:
            if upstream.status != 200:
                raise errors.bad_request(await upstream.text())
            response = aiohttp.web.StreamResponse(status=200, headers={'Content-Type': 'text/plain'})
            try:  # the client may be gone already (a controller killed while it read a log)
                await response.prepare(request._raw_request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionError, aiohttp.ClientError):
                pass
            return response


# --- the threaded runner -------------------------------------------------------------------------

class EmulatedApiServer(LoopThread):
    """Runs :class:`KubeApiEmulator` over real HTTP on 127.0.0.1:<random port> in a background thread.

    Usable as a context manager. The ``k8s_api`` fixture yields one. Besides
    ``url``/``kubeconfig()``/``api_client()`` for code under test, it offers
    synchronous helpers that act on the store through the same code paths as
    the HTTP verbs (so watchers see the changes), ``wait_for`` polling,
    ``compact()``, and ``handler`` — the kmock handler, for its request journal
    (kmock views, e.g. ``list(api.handler['patch'])``),
    its object histories (``api.handler.objects[...]``) and fault injection
    (``api.handler['list v1/pods'] << 500``).
    """

    thread_name = 'k8s-api-emulator'
    description = 'The Kubernetes API emulator'

    def __init__(self, crd_files: Iterable[str | pathlib.Path] = (), **options: Any) -> None:
        super().__init__()
        self._crd_files = list(crd_files)
        self._options = options
        self.handler: KubeApiEmulator | None = None
        self.url = ''

    # lifecycle (start/stop/context manager: LoopThread)

    async def _serve(self) -> None:
        assert self._stop is not None
        handler = KubeApiEmulator(crd_files=self._crd_files, **self._options)
        self.handler = handler
        server_cls = functools.partial(aiohttp.test_utils.RawTestServer, shutdown_timeout=1.0)
        async with handler, kmock.Server(handler, server_cls=server_cls) as server:
            await handler.start()
            self.url = str(server.url).rstrip('/')
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await handler.stop()

    # access for clients

    @property
    def host_port(self) -> str:
        return self.url.split('://', 1)[1]

    def kubeconfig(self, path: str | pathlib.Path, namespace: str = 'default') -> pathlib.Path:
        """Write a kubeconfig pointing at the emulator (any token is accepted)."""
        path = pathlib.Path(path)
        path.write_text(yaml.safe_dump({
            'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'kubedag-emulator',
            'clusters': [{'name': 'kubedag-emulator', 'cluster': {'server': self.url}}],
            'users': [{'name': 'kubedag-emulator', 'user': {'token': 'kubedag-emulator'}}],
            'contexts': [{'name': 'kubedag-emulator',
                          'context': {'cluster': 'kubedag-emulator', 'user': 'kubedag-emulator', 'namespace': namespace}}],
        }))
        return path

    def api_client(self) -> Any:
        """A configured ``kubernetes.client.ApiClient`` (close it when done)."""
        import kubernetes.client
        config = kubernetes.client.Configuration()
        config.host = self.url
        return kubernetes.client.ApiClient(config)

    # direct helpers (run inside the server's loop, through the same code paths as HTTP)

    def call(self, fn: Callable[[KubeApiEmulator], Any], timeout: float = 10) -> Any:
        """Run ``fn(handler)`` in the emulator's event loop and return its result."""
        assert self._loop is not None and self.handler is not None
        handler = self.handler

        async def invoke() -> Any:
            return fn(handler)
        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout)

    def _rt(self, resource: str) -> ResourceType:
        res = kmock.resource(resource)
        assert self.handler is not None
        return self.handler.type_for(res.group or '', res.version or 'v1', res.plural or '')

    def create(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Create an object (kind from its apiVersion/kind)."""
        def run(h: KubeApiEmulator) -> Any:
            rt = h.type_for_kind(obj['apiVersion'], obj['kind'])
            return h.op_create(rt, namespace or obj.get('metadata', {}).get('namespace'), obj)
        return self.call(run)

    def apply_yaml(self, text: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Create every document of a YAML text."""
        return [self.create(doc, namespace) for doc in yaml.safe_load_all(text) if doc]

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """Read an object, e.g. ``api.get('v1/pods', 'p1', 'ns')``; None if absent."""
        rt = self._rt(resource)

        def run(h: KubeApiEmulator) -> Any:
            obj = h._stored(rt, namespace, name)
            return None if obj is None else rt.to_view(obj)
        return self.call(run)

    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict[str, Any]]:
        rt = self._rt(resource)
        return self.call(lambda h: [rt.to_view(o) for o in h.select(
            rt, namespace, label_selector=label_selector, field_selector=field_selector)])

    def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None, *,
              subresource: str | None = None, content_type: str = patching.MERGE_PATCH) -> dict[str, Any]:
        rt = self._rt(resource)
        return self.call(lambda h: h.op_patch(rt, namespace, name, patch, content_type, subresource))

    def delete(self, resource: str, name: str, namespace: str | None = None, **options: Any) -> dict[str, Any]:
        """Delete with DeleteOptions fields as kwargs (``propagationPolicy=``, ``gracePeriodSeconds=``)."""
        rt = self._rt(resource)
        return self.call(lambda h: h.op_delete(rt, namespace, name, options)[0])

    def compact(self) -> None:
        """Drop the watch history: a watch resuming from an older resourceVersion gets 410 Gone."""
        self.call(lambda h: h.compact())

    @property
    def resource_version(self) -> int:
        return self.call(lambda h: h.resource_version)

    def wait_for(self, resource: str, name: str, namespace: str | None = None,
                 predicate: Callable[[dict[str, Any] | None], bool] = lambda obj: obj is not None,
                 timeout: float = 10.0, interval: float = 0.02) -> dict[str, Any] | None:
        """Poll until ``predicate(obj)`` holds (obj is None when absent); return the last obj."""
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get(resource, name, namespace)
            if predicate(obj):
                return obj
            if time.monotonic() > deadline:
                raise TimeoutError(f'{resource} {namespace}/{name} did not reach the condition in {timeout}s; last: {obj!r}')
            time.sleep(interval)
