"""
The three PATCH flavours of the real API server.

* ``application/merge-patch+json`` — RFC 7386 JSON merge patch: maps merge
  recursively, ``null`` deletes a key, lists are replaced whole. kopf uses it
  for every body/status patch.
* ``application/json-patch+json`` — RFC 6902 JSON patch (``jsonpatch``
  package). kopf uses it, with a leading ``test`` of
  ``/metadata/resourceVersion``, to add/remove finalizers; a failed ``test``
  (or any op that cannot apply) is a 422, which kopf expects.
* ``application/strategic-merge-patch+json`` — built-in kinds only (a custom
  resource answers 415, as on a real server). The official Python client
  sends it for every dict-bodied ``patch_*`` call on built-ins. Lists merge
  by their Go-struct ``patchMergeKey`` (containers by ``name``, conditions by
  ``type``, ownerReferences by ``uid``...), ``metadata.finalizers`` merges as
  a set, and the ``$patch`` (replace/delete), ``$deleteFromPrimitiveList``,
  ``$setElementOrder`` and ``$retainKeys`` directives are honoured. The merge
  keys are a table of the common fields, not the whole Go type system.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonpatch
import jsonpointer

from . import errors

MERGE_PATCH = 'application/merge-patch+json'
JSON_PATCH = 'application/json-patch+json'
STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json'
APPLY_PATCH = 'application/apply-patch+yaml'


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], ops: Any) -> dict[str, Any]:
    """RFC 6902; errors (incl. a failed ``test``) become 422 as on the real server."""
    if not isinstance(ops, list):
        raise errors.bad_request('json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp')
    try:
        return jsonpatch.apply_patch(target, ops, in_place=False)
    except jsonpatch.JsonPatchTestFailed as e:
        raise errors.unprocessable(f'the server rejected our request due to an error in our request: {e}')
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, KeyError, IndexError, TypeError) as e:
        raise errors.unprocessable(f'the server rejected our request due to an error in our request: {e}')


# --- strategic merge patch --------------------------------------------------------------------

_PRIMITIVE_MERGE = object()  # a list of scalars merged as a set (metadata.finalizers)


def _merge_key(path: tuple[str, ...]) -> Any:
    """The ``patchMergeKey`` of the list at ``path`` (list indexes elided), or None if atomic."""
    if not path:
        return None
    last = path[-1]
    if path[-2:] == ('metadata', 'finalizers'):
        return _PRIMITIVE_MERGE
    if last == 'ownerReferences':
        return 'uid'
    if last in ('containers', 'initContainers', 'ephemeralContainers', 'volumes', 'imagePullSecrets', 'env'):
        return 'name'
    if last == 'ports':
        return 'containerPort' if any(p in ('containers', 'initContainers') for p in path) else 'port'
    if last == 'volumeMounts':
        return 'mountPath'
    if last == 'volumeDevices':
        return 'devicePath'
    if last == 'conditions' or (last == 'addresses' and 'status' in path):
        return 'type'
    if last in ('podIPs', 'hostIPs', 'hostAliases'):
        return 'ip'
    return None


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    try:
        return _smp_map(target if isinstance(target, dict) else {}, patch, ())
    except errors.StatusError:
        raise
    except (TypeError, AttributeError, KeyError) as e:
        raise errors.bad_request(f'unable to apply the strategic merge patch: {e}')


def _smp_map(target: dict[str, Any], patch: Any, path: tuple[str, ...]) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    patch = dict(patch)
    directive = patch.pop('$patch', None)
    if directive == 'replace':
        return _strip_directives(patch)
    if directive == 'delete':
        return None
    retain = patch.pop('$retainKeys', None)
    result = copy.deepcopy(target)
    deletions: dict[str, list[Any]] = {}
    orders: dict[str, list[Any]] = {}
    for key in list(patch):
        if key.startswith('$deleteFromPrimitiveList/'):
            deletions[key.split('/', 1)[1]] = patch.pop(key) or []
        elif key.startswith('$setElementOrder/'):
            orders[key.split('/', 1)[1]] = patch.pop(key) or []
    for key, value in patch.items():
        sub = path + (key,)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_map(result.get(key) if isinstance(result.get(key), dict) else {}, value, sub)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(result.get(key) if isinstance(result.get(key), list) else [], value, sub,
                                    orders.get(key))
        else:
            result[key] = value
    for key, removed in deletions.items():
        if isinstance(result.get(key), list):
            result[key] = [item for item in result[key] if item not in removed]
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _smp_list(target: list[Any], patch: list[Any], path: tuple[str, ...], order: list[Any] | None = None) -> list[Any]:
    if any(isinstance(item, dict) and item.get('$patch') == 'replace' for item in patch):
        return [_strip_directives(item) for item in patch if not (isinstance(item, dict) and '$patch' in item)]
    key = _merge_key(path)
    if key is None:
        return [_strip_directives(item) for item in patch]
    if key is _PRIMITIVE_MERGE:
        result = list(target)
        for item in patch:
            if item not in result:
                result.append(item)
        return _element_order(result, target, order if order is not None else patch, lambda item: item)
    result = copy.deepcopy(target)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise errors.bad_request(f'map: {item!r} does not contain declared merge key: {key}')
        index = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get('$patch') == 'delete':
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = _smp_map(result[index], item, path)
    patch_order = order if order is not None else [item for item in patch if item.get('$patch') != 'delete']
    return _element_order(result, target, patch_order, lambda item: item.get(key) if isinstance(item, dict) else item)


def _element_order(merged: list[Any], server: list[Any], patch: list[Any], identity: Callable[[Any], Any]) -> list[Any]:
    """The order the API server gives a merged list (``normalizeElementOrder`` in apimachinery's strategicpatch):
    the patch's items in the patch's order (or its ``$setElementOrder``), the server-only items in the server's
    order, interleaved so that a server-only item comes before a patch item only when both were on the server
    and it was first there. E.g. finalizers ``[one]`` patched with ``[two]`` become ``[two, one]``."""
    server_index = {identity(item): i for i, item in enumerate(server)}
    patch_index = {identity(item): i for i, item in enumerate(patch)}
    in_patch = sorted((m for m in merged if identity(m) in patch_index), key=lambda m: patch_index[identity(m)])
    server_only = sorted((m for m in merged if identity(m) not in patch_index),
                         key=lambda m: server_index.get(identity(m), len(server)))
    result: list[Any] = []
    while in_patch or server_only:
        if not in_patch or (server_only and identity(server_only[0]) in server_index
                            and identity(in_patch[0]) in server_index
                            and server_index[identity(server_only[0])] < server_index[identity(in_patch[0])]):
            result.append(server_only.pop(0))
        else:
            result.append(in_patch.pop(0))
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith('$')}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value
