"""
Label and field selectors with the real API server's syntax and semantics.

Label selectors (``?labelSelector=``) support equality (``=``, ``==``,
``!=``), set-based (``in``, ``notin``), existence (``key``, ``!key``) and the
numeric ``gt``/``lt`` operators; requirements are ANDed. ``!=`` and ``notin``
also match objects WITHOUT the label, as in Kubernetes.

Field selectors (``?fieldSelector=``) support ``=``, ``==`` and ``!=`` on the
fields each resource declares selectable; an unknown field is a 400, as on a
real server ("field label not supported").
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from . import errors

_LABEL_KEY = re.compile(r'^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')
_LABEL_VALUE = re.compile(r'^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$')

Matcher = Callable[[Mapping[str, str]], bool]


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``(...)`` of set-based requirements."""
    parts, depth, current = [], 0, ''
    for ch in text:
        if ch == '(':
            depth += 1
        elif ch == ')':
            depth -= 1
        if ch == ',' and depth == 0:
            parts.append(current)
            current = ''
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _check_key(key: str, selector: str) -> str:
    if not key or len(key.split('/')[-1]) > 63 or not _LABEL_KEY.match(key):
        raise errors.bad_request(f'unable to parse requirement: invalid label key "{key}" in selector "{selector}"')
    return key


def _check_value(value: str, selector: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise errors.bad_request(f'unable to parse requirement: invalid label value "{value}" in selector "{selector}"')
    return value


_SET_REQ = re.compile(r'^(?P<key>[^\s!=<>]+)\s+(?P<op>in|notin)\s*\((?P<vals>[^)]*)\)$')
_CMP_REQ = re.compile(r'^(?P<key>[^\s!=<>]+)\s*(?P<op>==|=|!=|<|>)\s*(?P<val>.*)$')


def parse_label_selector(selector: str | None) -> Matcher:
    """Compile a label selector string into a predicate on a labels mapping."""
    if not selector or not selector.strip():
        return lambda labels: True
    checks: list[Matcher] = []
    for req in _split_top_level(selector):
        if m := _SET_REQ.match(req):
            key = _check_key(m['key'], selector)
            values = {_check_value(v.strip(), selector) for v in m['vals'].split(',') if v.strip()}
            if m['op'] == 'in':
                checks.append(lambda l, k=key, vs=values: k in l and l[k] in vs)
            else:
                checks.append(lambda l, k=key, vs=values: k not in l or l[k] not in vs)
        elif m := _CMP_REQ.match(req):
            key, op, val = _check_key(m['key'], selector), m['op'], m['val'].strip()
            if op in ('<', '>'):
                try:
                    num = int(val)
                except ValueError:
                    raise errors.bad_request(f'unable to parse requirement: for \'Gt\', \'Lt\' operators, the value must be an integer in selector "{selector}"')
                if op == '>':
                    checks.append(lambda l, k=key, n=num: k in l and l[k].lstrip('-').isdigit() and int(l[k]) > n)
                else:
                    checks.append(lambda l, k=key, n=num: k in l and l[k].lstrip('-').isdigit() and int(l[k]) < n)
                continue
            val = _check_value(val, selector)
            if op == '!=':
                checks.append(lambda l, k=key, v=val: l.get(k) != v)
            else:
                checks.append(lambda l, k=key, v=val: k in l and l[k] == v)
        elif req.startswith('!'):
            key = _check_key(req[1:].strip(), selector)
            checks.append(lambda l, k=key: k not in l)
        else:
            key = _check_key(req, selector)
            checks.append(lambda l, k=key: k in l)
    return lambda labels: all(check(labels) for check in checks)


def get_field(obj: Mapping[str, Any], path: str) -> str:
    """Read a dotted field for field selectors; absent fields compare as ""."""
    cur: Any = obj
    for part in path.split('.'):
        if not isinstance(cur, Mapping):
            return ''
        cur = cur.get(part)
    if cur is None:
        return ''
    if isinstance(cur, bool):
        return 'true' if cur else 'false'
    return str(cur)


def parse_field_selector(selector: str | None, allowed: set[str]) -> Callable[[Mapping[str, Any]], bool]:
    """Compile a field selector; only ``allowed`` fields may be used (else 400)."""
    if not selector or not selector.strip():
        return lambda obj: True
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for req in _split_top_level(selector):
        m = re.match(r'^(?P<field>[^!=]+?)\s*(?P<op>==|=|!=)\s*(?P<val>.*)$', req)
        if not m:
            raise errors.bad_request(f'invalid selector: \'{selector}\'; can\'t understand \'{req}\'')
        field, op, val = m['field'].strip(), m['op'], m['val'].strip()
        if field not in allowed:
            raise errors.bad_request(f'field label not supported: {field}')
        if op == '!=':
            checks.append(lambda o, f=field, v=val: get_field(o, f) != v)
        else:
            checks.append(lambda o, f=field, v=val: get_field(o, f) == v)
    return lambda obj: all(check(obj) for check in checks)


def validate_labels(labels: Any, path: str = 'metadata.labels') -> list[dict[str, str]]:
    """Label key/value syntax, as ``ValidateLabels`` checks it on every write."""
    causes: list[dict[str, str]] = []
    if labels is None:
        return causes
    if not isinstance(labels, Mapping):
        return [errors.field_error(path, 'Invalid value: must be a map of strings')]
    for key, value in labels.items():
        if len(key.split('/')[-1]) > 63 or not _LABEL_KEY.match(key):
            causes.append(errors.field_error(f'{path}', f'Invalid value: "{key}": name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\', and must start and end with an alphanumeric character'))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(errors.field_error(f'{path}', f'Invalid value: "{value}": a valid label must be an empty string or consist of alphanumeric characters, \'-\', \'_\' or \'.\', and must start and end with an alphanumeric character'))
    return causes
