"""Airflow Variables and Connections from ConfigMaps and Secrets, and masking their secret values in logs.

A DAG's ``spec.variablesFrom`` lists ConfigMaps and Secrets whose keys are Airflow Variables
(``{{ var.value.NAME }}``); ``spec.connectionsFrom`` lists Secrets whose keys are connection ids and values
Airflow connection URIs (``{{ conn.my_db.host }}``). :func:`load_sources` reads them through a ``get``
callable that the adapters supply (the Kubernetes API in a cluster; for local runs, the manifests of the DAG's
folder found by :func:`objects_from_documents`, as ``kubectl apply -f folder/`` would create them), so this
module does no I/O itself.

:class:`Masker` hides secret values in text (task logs) and JSON-like objects, following Airflow 2.10's
``airflow.utils.log.secrets_masker``: every value of a Secret, a ConfigMap value whose key looks sensitive
(:func:`is_sensitive`), and a connection's password and whole URI are replaced by ``***``.

Connection URIs are parsed by :mod:`kubedag.core.connections` (re-exported here). Everything here is pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from kubedag.core.connections import Connection, ConnectionURIError, parse_connection

__all__ = [
    "SENSITIVE_KEYWORDS",
    "MIN_SECRET_LENGTH",
    "MASK",
    "CONN_ENV_PREFIX",
    "is_sensitive",
    "Masker",
    "Connection",
    "ConnectionURIError",
    "parse_connection",
    "Sources",
    "load_sources",
    "connections_env",
    "objects_from_documents",
    "secret_values",
]

SENSITIVE_KEYWORDS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "authorization",
        "passphrase",
        "passwd",
        "password",
        "private_key",
        "secret",
        "token",
        "keyfile_dict",
        "service_account",
    }
)
"""Airflow 2.10's ``DEFAULT_SENSITIVE_FIELDS``: a key containing one of these (any case) is sensitive."""

MIN_SECRET_LENGTH = 5
"""Shorter values are not masked. Airflow 2.10 masks every non-empty value, which turns a short one (``a``,
``db``) into ``***`` wherever it appears in a log; Airflow 3.0 added ``[logging] min_length_masked_secret``
with this default for that reason. Values under a sensitive key are still hidden by
:meth:`Masker.mask_obj`, whatever their length."""

MASK = "***"
"""What a secret is replaced with (Airflow's replacement)."""

CONN_ENV_PREFIX = "KUBEDAG_CONN_"
"""Prefix of the variables :func:`connections_env` makes (Airflow's ``AIRFLOW_CONN_``)."""


def is_sensitive(key: object) -> bool:
    """Whether a value under ``key`` (a Variable name, a connection extra's key, a dict key) must be hidden:
    ``key`` contains one of :data:`SENSITIVE_KEYWORDS`, ignoring case and surrounding spaces (Airflow 2.10's
    ``should_hide_value_for_key``). Non-strings are never sensitive.

    >>> is_sensitive("DB_PASSWORD"), is_sensitive("region")
    (True, False)
    """
    if not isinstance(key, str):
        return False
    name = key.strip().lower()
    return any(word in name for word in SENSITIVE_KEYWORDS)


class Masker:
    """A set of secret strings, and the means to hide them in text and objects.

    ``min_length``: values shorter than this are not added (see :data:`MIN_SECRET_LENGTH`).
    Masking is by plain substring, longest secret first, so a secret containing another is hidden whole.
    A caller masking a stream must mask whole lines: a secret split across two chunks is not found.
    """

    def __init__(self, min_length: int = MIN_SECRET_LENGTH) -> None:
        self.min_length = max(1, min_length)
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    @property
    def secrets(self) -> frozenset[str]:
        """The strings that :meth:`mask` replaces."""
        return frozenset(self._secrets)

    def __len__(self) -> int:
        return len(self._secrets)

    def __repr__(self) -> str:  # never shows the secrets themselves
        return f"<Masker of {len(self._secrets)} secret(s)>"

    def add(self, value: object) -> None:
        """Mask ``value`` from now on. Non-strings, empty strings and strings shorter than ``min_length``
        are ignored (Airflow's ``mask_secret`` also skips empty values)."""
        if isinstance(value, str) and len(value) >= self.min_length and value not in self._secrets:
            self._secrets.add(value)
            self._pattern = None

    def add_variables(self, variables: Mapping[str, str], all_secret: bool) -> None:
        """Mask Variables: every value when ``all_secret`` (they come from a Secret), else only those whose
        key :func:`is_sensitive` (a ConfigMap; Airflow's ``Variable.get`` masks by key likewise)."""
        for key, value in variables.items():
            if all_secret or is_sensitive(key):
                self.add(value)

    def add_connection(self, uri: str) -> None:
        """Mask a connection: its whole URI (or JSON form), its password (plain and percent-encoded, as
        Airflow 2.10's ``Connection`` masks both) and the values of sensitive keys of its extra. A value that
        does not parse is masked whole."""
        self.add(uri)
        try:
            conn = parse_connection(uri)
        except ConnectionURIError:
            return
        if conn.password:
            self.add(conn.password)
            self.add(quote(conn.password, safe=""))
        extra = conn.extra_dejson
        if isinstance(extra, Mapping):
            for key, value in extra.items():
                if is_sensitive(key):
                    self._add_all(value)

    def _add_all(self, value: object) -> None:
        if isinstance(value, str):
            self.add(value)
        elif isinstance(value, Mapping):
            for v in value.values():
                self._add_all(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                self._add_all(v)

    def mask(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        if not self._secrets or not text:
            return text
        if self._pattern is None:
            ordered = sorted(self._secrets, key=lambda s: (-len(s), s))
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
        return self._pattern.sub(MASK, text)

    def mask_obj(self, obj: Any, key: object = None) -> Any:
        """A copy of a JSON-like ``obj`` (dicts, lists, tuples, strings, scalars) with secrets masked in every
        string, and every string under a sensitive key (at any depth below it) replaced by ``***`` (Airflow's
        ``SecretsMasker.redact``). Other values are returned as they are."""
        if key is not None and is_sensitive(key):
            return _redact_all(obj)
        if isinstance(obj, str):
            return self.mask(obj)
        if isinstance(obj, Mapping):
            return {k: self.mask_obj(v, k) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.mask_obj(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self.mask_obj(v) for v in obj)
        return obj


def _redact_all(obj: Any) -> Any:
    """Every string in ``obj`` replaced by ``***`` (Airflow's ``SecretsMasker._redact_all``)."""
    if isinstance(obj, str):
        return MASK
    if isinstance(obj, Mapping):
        return {k: _redact_all(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact_all(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_redact_all(v) for v in obj)
    return obj


# --------------------------------------------------------------------- sources
@dataclass
class Sources:
    """What a DAG's ``variablesFrom`` and ``connectionsFrom`` hold.

    ``variables``: name -> value (a later source wins on a repeated key, as ``envFrom``);
    ``connections``: conn id -> URI (or JSON form); ``masker``: their secrets (see :class:`Masker`);
    ``missing``: one message per source that could not be read, e.g.
    ``spec.variablesFrom[0].configMapRef: ConfigMap 'x' not found`` (also for a Secret value that is not
    base64 of UTF-8 text). The other sources are still loaded.
    """

    variables: dict[str, str] = field(default_factory=dict)
    connections: dict[str, str] = field(default_factory=dict)
    masker: Masker = field(default_factory=Masker)
    missing: list[str] = field(default_factory=list)


def secret_values(obj: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, str]:
    """A Secret's keys and decoded values (a message naming ``where`` is appended to ``problems`` for each value
    that is not base64 of UTF-8 text, and the key is left out): ``data`` is base64 (as the API returns it), ``stringData`` plain
    text and wins on a repeated key (the API server merges it over ``data`` on write)."""
    out: dict[str, str] = {}
    for key, value in (obj.get("data") or {}).items():
        try:
            out[key] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            problems.append(f"{where}: key {key!r} is not base64 of UTF-8 text")
    for key, value in (obj.get("stringData") or {}).items():
        out[key] = "" if value is None else str(value)
    return out


def _configmap_values(obj: Mapping[str, Any]) -> dict[str, str]:
    """A ConfigMap's ``data`` (``binaryData`` is ignored, as ``envFrom`` does)."""
    return {k: "" if v is None else str(v) for k, v in (obj.get("data") or {}).items()}


def load_sources(
    variables_from: Iterable[Mapping[str, Any]],
    connections_from: Iterable[Mapping[str, Any]],
    get: Callable[[str, str], Mapping[str, Any] | None],
) -> Sources:
    """Read a DAG's Variables and Connections.

    ``variables_from`` / ``connections_from``: the DAG's ``variables_from`` and ``connections_from``
    (``{"configMapRef": {"name": ...}}`` or ``{"secretRef": {"name": ...}}`` items). ``get(kind, name)``
    returns the object of that kind (``"ConfigMap"`` or ``"Secret"``) and name of the DAG's namespace as the
    Kubernetes API gives it (a dict), or None if there is none; whatever it raises propagates.

    Every Secret value is masked; ConfigMap values only under a sensitive key; every connection as
    :meth:`Masker.add_connection` does. Objects that are missing are listed in ``missing`` (see
    :class:`Sources`) and skipped.
    """
    sources = Sources()
    for i, ref in enumerate(variables_from):
        if ref.get("configMapRef"):
            name = ref["configMapRef"]["name"]
            where = f"spec.variablesFrom[{i}].configMapRef"
            obj = get("ConfigMap", name)
            if obj is None:
                sources.missing.append(f"{where}: ConfigMap {name!r} not found")
                continue
            values = _configmap_values(obj)
            sources.masker.add_variables(values, all_secret=False)
        elif ref.get("secretRef"):
            name = ref["secretRef"]["name"]
            where = f"spec.variablesFrom[{i}].secretRef"
            obj = get("Secret", name)
            if obj is None:
                sources.missing.append(f"{where}: Secret {name!r} not found")
                continue
            values = secret_values(obj, f"{where}: Secret {name!r}", sources.missing)
            sources.masker.add_variables(values, all_secret=True)
        else:
            sources.missing.append(f"spec.variablesFrom[{i}]: needs configMapRef or secretRef")
            continue
        sources.variables.update(values)
    for i, ref in enumerate(connections_from):
        if not ref.get("secretRef"):
            sources.missing.append(f"spec.connectionsFrom[{i}]: needs secretRef")
            continue
        name = ref["secretRef"]["name"]
        where = f"spec.connectionsFrom[{i}].secretRef"
        obj = get("Secret", name)
        if obj is None:
            sources.missing.append(f"{where}: Secret {name!r} not found")
            continue
        values = secret_values(obj, f"{where}: Secret {name!r}", sources.missing)
        for uri in values.values():
            sources.masker.add_connection(uri)
        sources.connections.update(values)
    return sources


def connections_env(connections: Mapping[str, str]) -> dict[str, str]:
    """Environment variables carrying connections to a try: ``KUBEDAG_CONN_<ID>`` -> URI, the id upper-cased
    with every character other than ``A-Z``, ``0-9`` and ``_`` replaced by ``_`` (Airflow's
    ``AIRFLOW_CONN_{CONN_ID.upper()}``; ``my-db`` gives ``KUBEDAG_CONN_MY_DB``).

    Raises:
        ValueError: if two ids give the same variable (``my-db`` and ``my_db``), naming both.
    """
    out: dict[str, str] = {}
    origin: dict[str, str] = {}
    for conn_id, uri in connections.items():
        name = CONN_ENV_PREFIX + re.sub(r"[^A-Z0-9_]", "_", conn_id.upper())
        if name in origin:
            raise ValueError(
                f"connections {origin[name]!r} and {conn_id!r} would both be passed as ${name}: rename one"
            )
        origin[name] = conn_id
        out[name] = uri
    return out


_SOURCE_KINDS = ("ConfigMap", "Secret")


def objects_from_documents(docs: Iterable[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The ConfigMaps and Secrets among parsed YAML documents (e.g. every document of a DAG's folder), as
    ``{(kind, name): object}``; items of a ``kind: List`` are looked at too. Other documents (DAGs, empty
    ones, non-dicts) are skipped; a later object of the same kind and name replaces an earlier one, as
    ``kubectl apply -f folder/`` would. Use ``lambda kind, name: objects.get((kind, name))`` as the ``get``
    of :func:`load_sources`."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    stack = list(docs)
    stack.reverse()
    while stack:
        doc = stack.pop()
        if not isinstance(doc, dict):
            continue
        kind = doc.get("kind")
        if kind == "List" and isinstance(doc.get("items"), list):
            stack.extend(reversed(doc["items"]))
            continue
        if kind not in _SOURCE_KINDS or doc.get("apiVersion", "v1") != "v1":
            continue
        name = (doc.get("metadata") or {}).get("name")
        if isinstance(name, str) and name:
            out[(kind, name)] = doc
    return out
