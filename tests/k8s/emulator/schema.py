"""
Structural-schema handling of custom resources, as apiextensions-apiserver does.

For every write of a custom resource, the real server:

1. **prunes** fields that the CRD's ``openAPIV3Schema`` does not declare
   (unless ``x-kubernetes-preserve-unknown-fields: true``; ``apiVersion``,
   ``kind`` and ``metadata`` at the root and in embedded resources survive),
   silently — so a controller that writes undeclared status fields sees them
   vanish;
2. applies ``default:`` values of absent fields, and replaces a ``null`` in a
   non-``nullable`` field by its default (or drops it if it has none);
3. **validates** the result (types incl. ``x-kubernetes-int-or-string``,
   ``nullable``, ``required``, ``enum``, ``pattern``, ``minimum``/``maximum``
   (and exclusive), ``minLength``/``maxLength``, ``minItems``/``maxItems``,
   ``uniqueItems``, ``x-kubernetes-list-type`` set/map key uniqueness, ``minProperties``/``maxProperties``, ``additionalProperties``
   as a schema for map values, ``allOf``/``anyOf``/``oneOf``/``not``) and
   answers 422 ``Invalid`` whose causes name each field as ``spec.foo[0].bar``
   with the real server's wording.

``format`` and CEL ``x-kubernetes-validations`` are not evaluated.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any

from . import errors

_ROOT_KEEP = ('apiVersion', 'kind', 'metadata')


def _value_repr(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return '"null"'
    return json.dumps(value)


def _type_of(value: Any) -> str:
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'boolean'
    if isinstance(value, int):
        return 'integer'
    if isinstance(value, float):
        return 'integer' if value.is_integer() else 'number'
    if isinstance(value, str):
        return 'string'
    if isinstance(value, list):
        return 'array'
    if isinstance(value, dict):
        return 'object'
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f'{path}.{key}' if path else key


# --- pruning & defaulting -------------------------------------------------------------------------

def prune(value: Any, schema: dict[str, Any] | None, *, root: bool = False) -> Any:
    """Drop undeclared fields (in place where possible); returns the pruned value."""
    if schema is None:
        return value
    if isinstance(value, dict):
        embedded = schema.get('x-kubernetes-embedded-resource')
        props = schema.get('properties')
        addl = schema.get('additionalProperties')
        preserve = schema.get('x-kubernetes-preserve-unknown-fields')
        for key in list(value):
            if (root or embedded) and key in _ROOT_KEEP:
                continue
            if props is not None and key in props:
                value[key] = prune(value[key], props[key])
            elif isinstance(addl, dict):
                value[key] = prune(value[key], addl)
            elif addl is True or preserve:
                continue
            else:
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get('items'), dict):
        return [prune(item, schema['items']) for item in value]
    return value


def default(value: Any, schema: dict[str, Any] | None) -> Any:
    """Fill in ``default:`` for absent properties (recursively), as on read/write.

    Like ``PruneNonNullableNullsWithoutDefaults`` + ``Default``: a ``null`` in a
    field that is not ``nullable`` is replaced by the field's default, or
    dropped if it has none — it is not a validation error.
    """
    if schema is None:
        return value
    if isinstance(value, dict):
        props = schema.get('properties') or {}
        addl = schema.get('additionalProperties')
        for key in list(value):
            sub = props.get(key, addl if isinstance(addl, dict) else None)
            if value[key] is None and sub is not None and not sub.get('nullable'):
                if 'default' in sub:
                    value[key] = copy.deepcopy(sub['default'])
                else:
                    del value[key]
        for key, sub in props.items():
            if key not in value and 'default' in sub:
                value[key] = copy.deepcopy(sub['default'])
            if key in value:
                value[key] = default(value[key], sub)
        if isinstance(addl, dict):
            for key in value:
                if key not in props:
                    value[key] = default(value[key], addl)
    elif isinstance(value, list) and isinstance(schema.get('items'), dict):
        return [default(item, schema['items']) for item in value]
    return value


# --- validation -----------------------------------------------------------------------------------

def validate(value: Any, schema: dict[str, Any] | None, path: str = '') -> list[dict[str, str]]:
    """Return the list of ``Status`` causes (empty if valid)."""
    if schema is None:
        return []
    causes: list[dict[str, str]] = []
    _validate(value, schema, path, causes, root=True)
    return causes


def _invalid(causes: list[dict[str, str]], path: str, value: Any, text: str) -> None:
    causes.append(errors.field_error(path, f'Invalid value: {_value_repr(value)}: {path} in body {text}'))


def _validate(value: Any, schema: dict[str, Any], path: str, causes: list[dict[str, str]], root: bool = False) -> None:
    if value is None:
        if schema.get('nullable') or schema.get('x-kubernetes-preserve-unknown-fields') and 'type' not in schema:
            return
        if 'type' in schema or schema.get('x-kubernetes-int-or-string'):
            expected = 'string' if schema.get('x-kubernetes-int-or-string') else schema['type']
            _invalid(causes, path, None, f'must be of type {expected}: "null"')
        return

    actual = _type_of(value)
    if schema.get('x-kubernetes-int-or-string'):
        if actual not in ('integer', 'string'):
            causes.append(errors.field_error(path, f'Invalid value: {_value_repr(value)}: {path} in body must be of type integer,string: "{actual}"'))
            return
    elif (expected := schema.get('type')) is not None:
        ok = actual == expected or (expected == 'number' and actual == 'integer')
        if not ok:
            _invalid(causes, path, value, f'must be of type {expected}: "{actual}"')
            return

    if 'enum' in schema and value not in schema['enum']:
        supported = ', '.join(_value_repr(v) for v in schema['enum'])
        causes.append(errors.field_error(path, f'Unsupported value: {_value_repr(value)}: supported values: {supported}', 'FieldValueNotSupported'))

    if isinstance(value, str):
        if 'pattern' in schema and not re.search(schema['pattern'], value):
            _invalid(causes, path, value, f"should match '{schema['pattern']}'")
        if 'minLength' in schema and len(value) < schema['minLength']:
            _invalid(causes, path, value, f"should be at least {schema['minLength']} chars long")
        if 'maxLength' in schema and len(value) > schema['maxLength']:
            causes.append(errors.field_error(path, f"Too long: may not be more than {schema['maxLength']} bytes", 'FieldValueTooLong'))

    if actual in ('integer', 'number'):
        if 'minimum' in schema:
            if schema.get('exclusiveMinimum') is True and not value > schema['minimum']:
                _invalid(causes, path, value, f"should be greater than {schema['minimum']}")
            elif value < schema['minimum']:
                _invalid(causes, path, value, f"should be greater than or equal to {schema['minimum']}")
        if 'maximum' in schema:
            if schema.get('exclusiveMaximum') is True and not value < schema['maximum']:
                _invalid(causes, path, value, f"should be less than {schema['maximum']}")
            elif value > schema['maximum']:
                _invalid(causes, path, value, f"should be less than or equal to {schema['maximum']}")
        if 'multipleOf' in schema and value % schema['multipleOf']:
            _invalid(causes, path, value, f"should be a multiple of {schema['multipleOf']}")

    if isinstance(value, list):
        if 'minItems' in schema and len(value) < schema['minItems']:
            _invalid(causes, path, len(value), f"should have at least {schema['minItems']} items")
        if 'maxItems' in schema and len(value) > schema['maxItems']:
            causes.append(errors.field_error(path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items", 'FieldValueTooMany'))
        if schema.get('uniqueItems') or schema.get('x-kubernetes-list-type') == 'set':
            seen: list[Any] = []
            for i, item in enumerate(value):
                if item in seen:
                    causes.append(errors.field_error(f'{path}[{i}]', f'Duplicate value: {_value_repr(item)}', 'FieldValueDuplicate'))
                seen.append(item)
        if schema.get('x-kubernetes-list-type') == 'map' and schema.get('x-kubernetes-list-map-keys'):
            keys = schema['x-kubernetes-list-map-keys']
            seen_keys: list[Any] = []
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    key = {k: item.get(k) for k in keys}
                    if key in seen_keys:
                        causes.append(errors.field_error(f'{path}[{i}]', f'Duplicate value: {_value_repr(key)}', 'FieldValueDuplicate'))
                    seen_keys.append(key)
        if isinstance(schema.get('items'), dict):
            for i, item in enumerate(value):
                _validate(item, schema['items'], f'{path}[{i}]', causes)

    if isinstance(value, dict):
        for req in schema.get('required', []):
            if req not in value:
                causes.append(errors.field_error(_join(path, req), 'Required value', 'FieldValueRequired'))
        if 'minProperties' in schema and len(value) < schema['minProperties']:
            _invalid(causes, path, len(value), f"should have at least {schema['minProperties']} properties")
        if 'maxProperties' in schema and len(value) > schema['maxProperties']:
            _invalid(causes, path, len(value), f"should have at most {schema['maxProperties']} properties")
        props = schema.get('properties') or {}
        addl = schema.get('additionalProperties')
        for key, item in value.items():
            if root and key in _ROOT_KEEP and key not in props:
                continue
            if key in props:
                _validate(item, props[key], _join(path, key), causes)
            elif isinstance(addl, dict):
                _validate(item, addl, _join(path, key), causes)

    for sub in schema.get('allOf', []):
        _validate(value, sub, path, causes)
    if 'anyOf' in schema:
        if not any(not validate_sub(value, sub, path) for sub in schema['anyOf']):
            _invalid(causes, path, value, 'must validate at least one schema (anyOf)')
    if 'oneOf' in schema:
        matching = sum(1 for sub in schema['oneOf'] if not validate_sub(value, sub, path))
        if matching != 1:
            _invalid(causes, path, value, 'must validate one and only one schema (oneOf)')
    if 'not' in schema and not validate_sub(value, schema['not'], path):
        _invalid(causes, path, value, 'must not validate the schema (not)')


def validate_sub(value: Any, schema: dict[str, Any], path: str) -> list[dict[str, str]]:
    causes: list[dict[str, str]] = []
    _validate(value, schema, path, causes)
    return causes
