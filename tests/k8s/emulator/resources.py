"""
What the emulator serves: resource types and per-kind server-side strategies.

Built-in resource types (kind, verbs, short names, scope) come from kmock's
bundled discovery snapshot of a real cluster (``ResourcesArray.load_bundled``);
:data:`SERVED_BUILTINS` chooses which are served and with which subresources.
Custom resource types are derived from CustomResourceDefinition objects, exactly
as apiextensions-apiserver starts serving a CRD once it is Established.

Per-kind strategies emulate what the real registry does on writes:

* pods: defaulting (``restartPolicy``, ``terminationGracePeriodSeconds``,
  ``dnsPolicy``, container ``imagePullPolicy``...), ``status.phase=Pending``
  and ``qosClass`` on create, spec immutability on update (only images,
  ``activeDeadlineSeconds``, toleration additions and scheduling-gate removal
  may change), graceful deletion;
* namespaces: ``spec.finalizers: [kubernetes]``, ``status.phase``,
  the ``kubernetes.io/metadata.name`` label;
* CRDs: ``status.acceptedNames``/``conditions`` (``Established``),
  ``storedVersions``, the ``customresourcecleanup`` finalizer;
* core ``v1`` events and ``events.k8s.io/v1`` events share one storage, each
  a field-renamed view of the other, as in the real server;
* secrets: ``stringData`` merged into ``data`` (base64) on every write,
  ``type: Opaque`` by default, ``data`` that is no valid base64 is a 400;
  secrets and configmaps: keys validated (``[-._a-zA-Z0-9]+``, no key in both
  ``data`` and ``binaryData``), ``immutable: true`` freezes the data, a
  secret's ``type`` cannot change (the per-type required keys of
  ``kubernetes.io/tls`` etc. and the 1 MiB size limit are not checked);
* built-ins are validated against the real OpenAPI schema with
  ``kubernetes-validate`` (422 with its message), and unknown fields are
  dropped (or rejected with ``?fieldValidation=Strict``), as the decoder does.
"""
from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import functools
import importlib.resources
import re
from typing import Any

import jsonschema
import kmock
import kubernetes_validate
import kubernetes_validate.utils
import referencing

from . import errors, schema as structural

#: The Kubernetes version whose OpenAPI schema validates built-ins; also reported by ``/version``.
KUBERNETES_VERSION = kubernetes_validate.utils.latest_version()

#: (group, version, plural) -> the subresources served for it.
SERVED_BUILTINS: dict[tuple[str, str, str], set[str]] = {
    ('', 'v1', 'pods'): {'status', 'log', 'binding'},
    ('', 'v1', 'events'): set(),
    ('', 'v1', 'namespaces'): {'status', 'finalize'},
    ('', 'v1', 'nodes'): {'status'},
    ('', 'v1', 'configmaps'): set(),
    ('', 'v1', 'secrets'): set(),
    ('', 'v1', 'serviceaccounts'): set(),
    ('events.k8s.io', 'v1', 'events'): set(),
    ('coordination.k8s.io', 'v1', 'leases'): set(),
    ('apiextensions.k8s.io', 'v1', 'customresourcedefinitions'): {'status'},
}

_COMMON_FIELDS = {'metadata.name', 'metadata.namespace'}
_FIELD_SELECTORS: dict[tuple[str, str], set[str]] = {
    ('', 'pods'): {'spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName',
                   'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'},
    ('', 'events'): {'involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name',
                     'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion',
                     'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'},
    ('events.k8s.io', 'events'): {'regarding.kind', 'regarding.namespace', 'regarding.name', 'regarding.uid',
                                  'regarding.apiVersion', 'regarding.resourceVersion', 'regarding.fieldPath',
                                  'reason', 'reportingController', 'type'},
    ('', 'namespaces'): {'status.phase'},
    ('', 'nodes'): {'spec.unschedulable'},
    ('', 'secrets'): {'type'},
}

# Core-v1 event field <-> events.k8s.io/v1 event field.
_EVENT_FIELDS = {
    'involvedObject': 'regarding', 'message': 'note', 'source': 'deprecatedSource',
    'firstTimestamp': 'deprecatedFirstTimestamp', 'lastTimestamp': 'deprecatedLastTimestamp',
    'count': 'deprecatedCount', 'reportingComponent': 'reportingController',
}

_CONFIG_KEY = re.compile(r'^[-._a-zA-Z0-9]+$')
_CONFIG_KEY_MESSAGE = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                       "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
_DNS_SUBDOMAIN = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')
_DNS_LABEL = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')


@dataclasses.dataclass
class ResourceType:
    """One served group/version/plural, with what discovery reports about it."""
    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool
    verbs: list[str]
    subresources: set[str] = dataclasses.field(default_factory=set)
    shortnames: list[str] = dataclasses.field(default_factory=list)
    categories: list[str] = dataclasses.field(default_factory=list)
    list_kind: str = ''
    schema: dict[str, Any] | None = None  # CRD openAPIV3Schema; None for built-ins
    crd_name: str | None = None
    storage: tuple[str, str] = ('', '')  # objects are stored under this (group, plural)
    field_selectors: set[str] = dataclasses.field(default_factory=set)

    def __post_init__(self) -> None:
        self.list_kind = self.list_kind or f'{self.kind}List'
        self.storage = self.storage if self.storage != ('', '') else (self.group, self.plural)
        self.field_selectors = self.field_selectors | _COMMON_FIELDS | _FIELD_SELECTORS.get((self.group, self.plural), set())

    @property
    def api_version(self) -> str:
        return f'{self.group}/{self.version}' if self.group else self.version

    @property
    def is_custom(self) -> bool:
        return self.crd_name is not None

    @property
    def has_status_subresource(self) -> bool:
        return 'status' in self.subresources

    @property
    def has_generation(self) -> bool:
        # Built-ins whose registry strategy maintains metadata.generation; all custom resources do.
        return self.is_custom or (self.group, self.plural) in {('', 'pods'), ('apiextensions.k8s.io', 'customresourcedefinitions')}

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)

    def resource(self) -> kmock.resource:
        return kmock.resource(self.group, self.version, self.plural)

    # --- views: storage form <-> the form served at this group/version -----------------------

    def to_view(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Render a stored object as this resource's apiVersion serves it."""
        obj = copy.deepcopy(obj)
        if (self.group, self.plural) == ('events.k8s.io', 'events'):
            obj = {_EVENT_FIELDS.get(k, k): v for k, v in obj.items()}
        obj['apiVersion'] = self.api_version
        obj['kind'] = self.kind
        return obj

    def from_view(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Convert an object in this resource's form to the storage form."""
        obj = copy.deepcopy(obj)
        if (self.group, self.plural) == ('events.k8s.io', 'events'):
            reverse = {v: k for k, v in _EVENT_FIELDS.items()}
            obj = {reverse.get(k, k): v for k, v in obj.items()}
            obj['apiVersion'], obj['kind'] = 'v1', 'Event'
        return obj


@functools.cache
def _bundled() -> kmock.ResourcesArray:
    # Same file as ResourcesArray.load_bundled(), which uses a deprecated importlib API.
    array = kmock.ResourcesArray()
    with importlib.resources.as_file(importlib.resources.files('kmock._internal') / 'resources.json.gz') as path:
        array.load_path(path)
    return array


def builtin_types() -> list[ResourceType]:
    bundled = _bundled()
    result = []
    for (group, version, plural), subresources in SERVED_BUILTINS.items():
        info = bundled[kmock.resource(group, version, plural)]
        result.append(ResourceType(
            group=group, version=version, plural=plural,
            kind=info.kind or plural.capitalize(), singular=info.singular or plural.rstrip('s'),
            namespaced=bool(info.namespaced), verbs=sorted(info.verbs),
            subresources=set(subresources), shortnames=sorted(info.shortnames), categories=sorted(info.categories),
            storage=('', 'events') if plural == 'events' else (group, plural),
        ))
    return result


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version ordering: GA > beta > alpha, higher numbers first."""
    m = re.match(r'^v(\d+)(?:(alpha|beta)(\d+))?$', version)
    if not m:
        return (0, 0, 0)
    stage = {'alpha': 1, 'beta': 2, None: 3}[m[2]]
    return (stage, int(m[1]), int(m[3] or 0))


def sort_versions(versions: list[str]) -> list[str]:
    return sorted(versions, key=_version_priority, reverse=True)


def crd_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a (valid, Established) CRD serves: one per served version."""
    spec = crd['spec']
    names = spec['names']
    result = []
    for version in spec['versions']:
        if not version.get('served', True):
            continue
        subresources = set((version.get('subresources') or {}).keys()) & {'status'}
        result.append(ResourceType(
            group=spec['group'], version=version['name'], plural=names['plural'],
            kind=names['kind'], singular=names.get('singular') or names['kind'].lower(),
            namespaced=spec.get('scope', 'Namespaced') == 'Namespaced',
            verbs=['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
            subresources=subresources, shortnames=list(names.get('shortNames', [])),
            categories=list(names.get('categories', [])), list_kind=names.get('listKind') or '',
            schema=(version.get('schema') or {}).get('openAPIV3Schema'), crd_name=crd['metadata']['name'],
            field_selectors={f['jsonPath'].lstrip('.') for f in version.get('selectableFields', [])},
        ))
    return result


# --- validation -----------------------------------------------------------------------------------

def validate_name(rt: ResourceType, name: str) -> list[dict[str, str]]:
    if rt.plural == 'namespaces':
        ok, what = bool(_DNS_LABEL.match(name)) and len(name) <= 63, 'RFC 1123 label'
    else:
        ok, what = bool(_DNS_SUBDOMAIN.match(name)) and len(name) <= 253, 'RFC 1123 subdomain'
    if ok:
        return []
    return [errors.field_error('metadata.name', f'Invalid value: "{name}": a lowercase {what} must consist of lower case alphanumeric characters, \'-\' or \'.\', and must start and end with an alphanumeric character')]


@functools.cache
def _schema_validator(api_version: str, kind: str, strict: bool) -> jsonschema.protocols.Validator | None:
    """The compiled schema of a built-in kind from kubernetes-validate's files (``strict``: no unknown fields),
    built as ``kubernetes_validate.validate`` builds it, once: building it per call (a new ``referencing``
    registry each time) costs ~25 ms a pod. None for an unknown kind."""
    gv = re.sub(r'^([^./]*)(?:\.[^/]*)?/', r'\1-', api_version)
    base = f'kubernetes-json-schema/v{KUBERNETES_VERSION}-local' + ('-strict' if strict else '')
    try:
        schema = kubernetes_validate.utils.schema_contents(f'{base}/{kind.lower()}-{gv}.json', KUBERNETES_VERSION)
    except FileNotFoundError:
        return None
    defs = kubernetes_validate.utils.schema_contents(f'{base}/_definitions.json', KUBERNETES_VERSION)
    registry = referencing.Resource.from_contents(defs) @ (referencing.Resource.from_contents(schema) @ referencing.Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def drop_unknown_builtin_fields(obj: dict[str, Any]) -> list[str]:
    """Remove fields a built-in's schema does not know; return their paths (for warnings)."""
    validator = _schema_validator(obj.get('apiVersion', ''), obj.get('kind', ''), True)
    if validator is None:
        return []
    dropped = []
    for error in validator.iter_errors(obj):
        if error.validator != 'additionalProperties' or not isinstance(error.instance, dict):
            continue
        known = set((error.schema.get('properties') or {}).keys())
        for key in set(error.instance) - known:
            path = '.'.join(str(p) for p in error.absolute_path)
            dropped.append(f'{path}.{key}' if path else key)
            error.instance.pop(key, None)
    return dropped


def validate_builtin(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Validate against the real OpenAPI schema (kubernetes-validate).

    A wrong JSON type is a decoding failure on a real server (400 BadRequest,
    "cannot unmarshal"); other violations are 422 Invalid naming the field.
    Either way the message carries kubernetes-validate's own text.
    """
    validator = _schema_validator(str(obj.get('apiVersion', '')), str(obj.get('kind', '')), False)
    if validator is None:
        return
    try:
        validator.validate(obj)
    except jsonschema.ValidationError as e:
        field = ''
        for part in e.absolute_path:
            field += f'[{part}]' if isinstance(part, int) else (f'.{part}' if field else str(part))
        name = obj.get('metadata', {}).get('name', '')
        if e.validator == 'type':
            raise errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                                     f'json: cannot unmarshal {field}: {e.message}')
        if e.validator == 'required' and (missing := re.match(r"'([^']+)' is a required property", e.message)):
            field = f'{field}.{missing[1]}' if field else missing[1]
            raise errors.invalid(rt.kind, rt.group, name, [errors.field_error(field, 'Required value', 'FieldValueRequired')])
        raise errors.invalid(rt.kind, rt.group, name, [errors.field_error(field, f'Invalid value: {e.message}')])


def validate_pod_semantics(pod: dict[str, Any]) -> None:
    """The most common checks of the real ``ValidatePod`` that the OpenAPI schema cannot express."""
    spec = pod.get('spec') or {}
    causes = []
    policy = spec.get('restartPolicy')
    if policy not in ('Always', 'OnFailure', 'Never'):
        causes.append(errors.field_error('spec.restartPolicy', f'Unsupported value: "{policy}": supported values: "Always", "OnFailure", "Never"', 'FieldValueNotSupported'))
    ads = spec.get('activeDeadlineSeconds')
    if ads is not None and (not isinstance(ads, int) or ads < 1):
        causes.append(errors.field_error('spec.activeDeadlineSeconds', f'Invalid value: {ads}: must be between 1 and 2147483647, inclusive'))
    seen: set[str] = set()
    for key in ('initContainers', 'containers'):
        for i, container in enumerate(spec.get(key) or []):
            path = f'spec.{key}[{i}]'
            name = container.get('name') or ''
            if not _DNS_LABEL.match(name) or len(name) > 63:
                causes.append(errors.field_error(f'{path}.name', f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\', and must start and end with an alphanumeric character'))
            elif name in seen:
                causes.append(errors.field_error(f'{path}.name', f'Duplicate value: "{name}"', 'FieldValueDuplicate'))
            seen.add(name)
            if not container.get('image'):
                causes.append(errors.field_error(f'{path}.image', 'Required value', 'FieldValueRequired'))
    if causes:
        raise errors.invalid('Pod', '', pod.get('metadata', {}).get('name', ''), causes)


def validate_custom(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Prune, default and validate a custom resource against its structural schema."""
    if rt.schema is None:
        return
    structural.prune(obj, rt.schema, root=True)
    structural.default(obj, rt.schema)
    causes = structural.validate(obj, rt.schema)
    if causes:
        raise errors.invalid(rt.kind, rt.group, obj.get('metadata', {}).get('name', ''), causes)


def validate_crd(crd: dict[str, Any]) -> None:
    """The apiextensions checks a controller author trips over first."""
    spec = crd.get('spec') or {}
    names = spec.get('names') or {}
    name = crd.get('metadata', {}).get('name', '')
    causes = []
    for field, value in [('spec.group', spec.get('group')), ('spec.names.plural', names.get('plural')),
                         ('spec.names.kind', names.get('kind')), ('spec.scope', spec.get('scope'))]:
        if not value:
            causes.append(errors.field_error(field, 'Required value', 'FieldValueRequired'))
    if spec.get('scope') and spec['scope'] not in ('Namespaced', 'Cluster'):
        causes.append(errors.field_error('spec.scope', f'Unsupported value: "{spec["scope"]}": supported values: "Cluster", "Namespaced"', 'FieldValueNotSupported'))
    if names.get('plural') and spec.get('group') and name != f"{names['plural']}.{spec['group']}":
        causes.append(errors.field_error('metadata.name', f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    versions = spec.get('versions') or []
    if not versions:
        causes.append(errors.field_error('spec.versions', 'Invalid value: must have exactly one version marked as storage version'))
    elif sum(1 for v in versions if v.get('storage')) != 1:
        causes.append(errors.field_error('spec.versions', 'Invalid value: must have exactly one version marked as storage version'))
    for i, version in enumerate(versions):
        if not (version.get('schema') or {}).get('openAPIV3Schema'):
            causes.append(errors.field_error(f'spec.versions[{i}].schema.openAPIV3Schema', 'Required value: schemas are required', 'FieldValueRequired'))
    if causes:
        raise errors.invalid('CustomResourceDefinition', 'apiextensions.k8s.io', name, causes)


# --- per-kind strategies ---------------------------------------------------------------------------

def _image_pull_policy(image: str) -> str:
    last = image.rsplit('/', 1)[-1]
    if '@' in last:
        return 'IfNotPresent'
    return 'Always' if ':' not in last or last.endswith(':latest') else 'IfNotPresent'


def _qos_class(spec: dict[str, Any]) -> str:
    containers = spec.get('containers', []) + spec.get('initContainers', [])
    resources = [c.get('resources') or {} for c in containers]
    if not any(r.get('requests') or r.get('limits') for r in resources):
        return 'BestEffort'
    guaranteed = all(
        set((r.get('limits') or {}).keys()) >= {'cpu', 'memory'}
        and all((r.get('requests') or {}).get(k, v) == v for k, v in (r.get('limits') or {}).items())
        for r in resources)
    return 'Guaranteed' if guaranteed else 'Burstable'


def default_pod(pod: dict[str, Any]) -> None:
    spec = pod.setdefault('spec', {})
    spec.setdefault('restartPolicy', 'Always')
    spec.setdefault('terminationGracePeriodSeconds', 30)
    spec.setdefault('dnsPolicy', 'ClusterFirst')
    spec.setdefault('schedulerName', 'default-scheduler')
    spec.setdefault('securityContext', {})
    spec.setdefault('enableServiceLinks', True)
    spec.setdefault('preemptionPolicy', 'PreemptLowerPriority')
    spec.setdefault('priority', 0)
    spec.setdefault('serviceAccountName', spec.get('serviceAccount') or 'default')
    spec.setdefault('serviceAccount', spec['serviceAccountName'])
    for container in spec.get('containers', []) + spec.get('initContainers', []):
        if isinstance(container, dict):
            container.setdefault('terminationMessagePath', '/dev/termination-log')
            container.setdefault('terminationMessagePolicy', 'File')
            container.setdefault('resources', {})
            if isinstance(container.get('image'), str):
                container.setdefault('imagePullPolicy', _image_pull_policy(container['image']))


def pod_create_status(pod: dict[str, Any]) -> dict[str, Any]:
    return {'phase': 'Pending', 'qosClass': _qos_class(pod.get('spec', {}))}


_POD_MUTABLE_HINT = ('pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,'
                     '`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),'
                     '`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)')


def check_pod_update(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Pod spec is immutable except for a few fields (ValidatePodUpdate)."""
    def masked(spec: dict[str, Any]) -> dict[str, Any]:
        spec = copy.deepcopy(spec)
        for key in ('containers', 'initContainers'):
            for container in spec.get(key, []):
                container.pop('image', None)
        for key in ('activeDeadlineSeconds', 'tolerations', 'schedulingGates'):
            spec.pop(key, None)
        return spec

    old_spec, new_spec = old.get('spec', {}), new.get('spec', {})
    causes = []
    if masked(old_spec) != masked(new_spec):
        causes.append(errors.field_error('spec', f'Forbidden: {_POD_MUTABLE_HINT}', 'FieldValueForbidden'))
    old_tol = old_spec.get('tolerations') or []
    if any(t not in (new_spec.get('tolerations') or []) for t in old_tol):
        causes.append(errors.field_error('spec.tolerations', 'Forbidden: existing toleration can not be modified except its tolerationSeconds', 'FieldValueForbidden'))
    old_ads, new_ads = old_spec.get('activeDeadlineSeconds'), new_spec.get('activeDeadlineSeconds')
    if old_ads is not None and (new_ads is None or new_ads > old_ads):
        causes.append(errors.field_error('spec.activeDeadlineSeconds', f'Invalid value: {new_ads}: must be less than or equal to previous value', 'FieldValueInvalid'))
    if causes:
        raise errors.invalid('Pod', '', new.get('metadata', {}).get('name', ''), causes)


def _check_base64(kind: str, values: Any) -> None:
    """``[]byte`` fields are base64 in JSON: anything else fails decoding (400), as in the real server."""
    if not isinstance(values, dict):
        return
    for value in values.values():
        if not isinstance(value, str):
            continue  # a type error: left to schema validation
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise errors.bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: illegal base64 data')


def prepare_secret(secret: dict[str, Any]) -> None:
    """What decoding a Secret does: ``stringData`` is write-only, merged over ``data``; ``type`` defaults to Opaque."""
    _check_base64('Secret', secret.get('data'))
    string_data = secret.get('stringData')
    if isinstance(string_data, dict) and all(isinstance(v, str) for v in string_data.values()):
        del secret['stringData']
        if string_data:
            data = secret.get('data') if isinstance(secret.get('data'), dict) else {}
            data.update({k: base64.b64encode(v.encode()).decode() for k, v in string_data.items()})
            secret['data'] = data
    elif string_data is None:
        secret.pop('stringData', None)
    if not secret.get('type'):
        secret['type'] = 'Opaque'


def prepare_config_map(config_map: dict[str, Any]) -> None:
    _check_base64('ConfigMap', config_map.get('binaryData'))


def validate_config_keys(rt: ResourceType, obj: dict[str, Any]) -> None:
    """ValidateConfigMap/ValidateSecret: valid keys; a ConfigMap key is in ``data`` or ``binaryData``, not both."""
    causes = []
    fields = ('data', 'binaryData') if rt.plural == 'configmaps' else ('data',)
    for field in fields:
        for key in obj.get(field) or {}:
            if not _CONFIG_KEY.match(key) or len(key) > 253:
                causes.append(errors.field_error(f'{field}[{key}]', f'Invalid value: "{key}": {_CONFIG_KEY_MESSAGE}'))
    if rt.plural == 'configmaps':
        for key in set(obj.get('data') or {}) & set(obj.get('binaryData') or {}):
            causes.append(errors.field_error(f'binaryData[{key}]', f'Invalid value: "{key}": duplicate of key present in data'))
    if causes:
        raise errors.invalid(rt.kind, '', obj.get('metadata', {}).get('name', ''), causes)


def check_config_update(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    """ValidateSecretUpdate/ValidateConfigMapUpdate: ``immutable`` objects keep their data; a secret keeps its type."""
    causes = []
    if rt.plural == 'secrets' and new.get('type') != old.get('type'):
        causes.append(errors.field_error('type', f'Invalid value: "{new.get("type")}": field is immutable'))
    if old.get('immutable'):
        if not new.get('immutable'):
            causes.append(errors.field_error('immutable', 'Forbidden: field is immutable when `immutable` is set', 'FieldValueForbidden'))
        for field in ('data', 'binaryData') if rt.plural == 'configmaps' else ('data',):
            if (new.get(field) or {}) != (old.get(field) or {}):
                causes.append(errors.field_error(field, 'Forbidden: field is immutable when `immutable` is set', 'FieldValueForbidden'))
    if causes:
        raise errors.invalid(rt.kind, '', new.get('metadata', {}).get('name', ''), causes)


def default_namespace(ns: dict[str, Any]) -> None:
    ns.setdefault('spec', {}).setdefault('finalizers', ['kubernetes'])
    ns['metadata'].setdefault('labels', {})['kubernetes.io/metadata.name'] = ns['metadata']['name']


def crd_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    spec = crd['spec']
    names = dict(spec['names'])
    names.setdefault('singular', names['kind'].lower())
    names.setdefault('listKind', f"{names['kind']}List")
    storage = next(v['name'] for v in spec['versions'] if v.get('storage'))
    stored = list((crd.get('status') or {}).get('storedVersions') or [])
    if storage not in stored:
        stored.append(storage)
    return {
        'acceptedNames': names,
        'conditions': [
            {'type': 'NamesAccepted', 'status': 'True', 'reason': 'NoConflicts',
             'message': 'no conflicts found', 'lastTransitionTime': now},
            {'type': 'Established', 'status': 'True', 'reason': 'InitialNamesAccepted',
             'message': 'the initial names have been accepted', 'lastTransitionTime': now},
        ],
        'storedVersions': stored,
    }
