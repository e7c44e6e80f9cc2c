"""Airflow Variables and Connections from ConfigMaps and Secrets, and masking their secret values in logs.

A DAG's ``spec.variablesFrom`` lists ConfigMaps and Secrets whose keys are Airflow Variables
(``{{ var.value.NAME }}``); ``spec.connectionsFrom`` lists Secrets whose keys are connection ids and values
Airflow connection URIs (``{{ conn.my_db.host }}``). :func:`load_sources` reads them through a ``get``
callable (the Kubernetes API in a cluster; for local runs, the manifests of the DAG's folder found by
:func:`objects_from_documents`, as ``kubectl apply -f folder/`` would create them).

:class:`Masker` hides secret values in text (task logs) and JSON-like objects, following Airflow 2.10's
``airflow.utils.log.secrets_masker``: every value of a Secret, a ConfigMap value whose key looks sensitive
(:func:`is_sensitive`), and a connection's password and whole URI are replaced by ``***``.

:class:`Connection` parses connection URIs exactly as Airflow 2.10's ``Connection._parse_from_uri`` and
rebuilds them as its ``get_uri``. Everything here is pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

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


# ----------------------------------------------------------------- connections
class ConnectionURIError(ValueError):
    """A connection value that Airflow could not parse. The message never contains the value (it may hold a
    password)."""


def _parse_netloc_to_hostname(parts: Any) -> str:
    """The host of a split URI, keeping its case and ``/`` (Airflow 2.10's ``_parse_netloc_to_hostname``)."""
    hostname = unquote(parts.hostname or "")
    if "/" in hostname:
        hostname = parts.netloc
        if "@" in hostname:
            hostname = hostname.rsplit("@", 1)[1]
        if ":" in hostname:
            hostname = hostname.split(":", 1)[0]
        hostname = unquote(hostname)
    return hostname


def _normalize_conn_type(conn_type: str) -> str:
    """``postgresql`` -> ``postgres``; ``-`` -> ``_`` (Airflow 2.10's ``Connection._normalize_conn_type``)."""
    if conn_type == "postgresql":
        return "postgres"
    if "-" in conn_type:
        return conn_type.replace("-", "_")
    return conn_type


@dataclass(frozen=True, repr=False)
class Connection:
    """An Airflow connection, as templates see it (``{{ conn.my_db.host }}``).

    Fields as Airflow 2.10's ``Connection``: ``conn_type`` (``postgres``), ``host``, ``login``, ``password``,
    ``schema`` (the URI's path, e.g. the database), ``port`` (int or None), ``extra`` (a JSON text or None).
    ``str()``/``repr()`` give the ``conn_id`` only, as Airflow's, so a password is not printed by accident.
    """

    conn_id: str | None = None
    conn_type: str | None = None
    host: str | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    port: int | None = None
    extra: str | None = None
    description: str | None = field(default=None)

    EXTRA_KEY = "__extra__"

    def __repr__(self) -> str:
        return self.conn_id or ""

    __str__ = __repr__

    @classmethod
    def from_uri(cls, uri: str, conn_id: str | None = None) -> Connection:
        """Parse an Airflow connection URI as Airflow 2.10's ``Connection._parse_from_uri``.

        ``postgres://user:p%40ss@db.example:5432/sales?sslmode=require`` gives conn_type ``postgres``
        (``postgresql`` too; ``-`` in the scheme becomes ``_``), login ``user``, password ``p@ss`` (login,
        password, host and schema are percent-decoded), host ``db.example``, port 5432, schema ``sales`` and
        extra ``{"sslmode": "require"}`` (the query string; a ``__extra__`` parameter is taken as the extra's
        JSON text instead). ``scheme://protocol://host`` keeps ``protocol://host`` as the host.

        Raises:
            ConnectionURIError: for more than two ``://``, credentials in the host's protocol, or a port that
                is not an integer in 0-65535.
        """
        what = f"connection {conn_id!r}" if conn_id else "connection"
        schemes = uri.count("://")
        if schemes > 2:
            raise ConnectionURIError(f"{what}: invalid connection URI: it has more than two '://'")
        host_with_protocol = schemes == 2
        try:
            parts = urlsplit(uri)
            conn_type = parts.scheme
            rest = uri.replace(f"{conn_type}://", "" if host_with_protocol else "//")
            if host_with_protocol:
                head = rest.split("://", 1)[0]
                if "@" in head or ":" in head:
                    raise ConnectionURIError(
                        f"{what}: invalid connection URI: the host's protocol holds '@' or ':'"
                    )
            parts = urlsplit(rest)
            protocol = parts.scheme if host_with_protocol else None
            host: str | None = _parse_netloc_to_hostname(parts)
            if host and protocol:
                host = f"{protocol}://{host}"
            quoted_schema = parts.path[1:]
            port = parts.port
        except ConnectionURIError:
            raise
        except ValueError as exc:  # urlsplit: bad port, bad IPv6 literal
            raise ConnectionURIError(f"{what}: invalid connection URI: {exc}") from None
        extra = None
        if parts.query:
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            extra = query[cls.EXTRA_KEY] if cls.EXTRA_KEY in query else json.dumps(query)
        return cls(
            conn_id=conn_id,
            conn_type=_normalize_conn_type(conn_type),
            host=host,
            login=unquote(parts.username) if parts.username else parts.username,
            password=unquote(parts.password) if parts.password else parts.password,
            schema=unquote(quoted_schema) if quoted_schema else quoted_schema,
            port=port,
            extra=extra,
        )

    @classmethod
    def from_json(cls, value: str, conn_id: str | None = None) -> Connection:
        """Parse Airflow's JSON form of a connection (``{"conn_type": "postgres", "host": ..., "port": 5432,
        "extra": {...}}``), as Airflow 2.10's ``Connection.from_json``.

        Raises:
            ConnectionURIError: if it is not a JSON object of those fields, or ``port`` is not an integer.
        """
        what = f"connection {conn_id!r}" if conn_id else "connection"
        try:
            kwargs = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConnectionURIError(
                f"{what}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        allowed = {"conn_type", "description", "host", "login", "password", "schema", "port", "extra"}
        if not isinstance(kwargs, dict) or set(kwargs) - allowed:
            raise ConnectionURIError(
                f"{what}: a JSON connection must be an object with keys among {sorted(allowed)}"
            )
        extra = kwargs.pop("extra", None)
        if extra:
            kwargs["extra"] = extra if isinstance(extra, str) else json.dumps(extra)
        if kwargs.get("conn_type"):
            kwargs["conn_type"] = _normalize_conn_type(kwargs["conn_type"])
        port = kwargs.pop("port", None)
        if port:
            try:
                kwargs["port"] = int(port)
            except (TypeError, ValueError):
                raise ConnectionURIError(f"{what}: expected an integer port, got {port!r}") from None
        return cls(conn_id=conn_id, **kwargs)

    def get_extra_dejson(self, nested: bool = False) -> Any:
        """``extra`` parsed as JSON (an object, normally); ``{}`` if empty or not JSON (Airflow logs that and
        returns ``{}``). With ``nested``, string values that hold JSON are parsed too."""
        if not self.extra:
            return {}
        try:
            extra = json.loads(self.extra)
        except json.JSONDecodeError:
            return {}
        if not isinstance(extra, dict):
            return extra
        if nested:
            for key, value in list(extra.items()):
                if isinstance(value, str):
                    try:
                        extra[key] = json.loads(value)
                    except json.JSONDecodeError:
                        pass
        return extra

    @property
    def extra_dejson(self) -> Any:
        """``extra`` parsed as JSON (see :meth:`get_extra_dejson`)."""
        return self.get_extra_dejson()

    def get_uri(self) -> str:
        """The connection as an Airflow URI, built as Airflow 2.10's ``Connection.get_uri`` (``_`` in the
        type becomes ``-``; login, password, host and schema are percent-encoded; extra as query string, or
        as ``__extra__`` when it does not survive that)."""
        uri = f"{self.conn_type.lower().replace('_', '-')}://" if self.conn_type else "//"
        if self.host and "://" in self.host:
            protocol, host = self.host.split("://", 1)
        else:
            protocol, host = None, self.host
        if protocol:
            uri += f"{protocol}://"
        authority = ""
        if self.login is not None:
            authority += quote(self.login, safe="")
        if self.password is not None:
            authority += ":" + quote(self.password, safe="")
        if authority > "":
            authority += "@"
            uri += authority
        host_block = ""
        if host:
            host_block += quote(host, safe="")
        if self.port:
            if host_block == "" and authority == "":
                host_block += f"@:{self.port}"
            else:
                host_block += f":{self.port}"
        if self.schema:
            host_block += f"/{quote(self.schema, safe='')}"
        uri += host_block
        if self.extra:
            try:
                query: str | None = urlencode(self.extra_dejson)
            except TypeError:
                query = None
            sep = "?" if self.schema else "/?"
            if query and self.extra_dejson == dict(parse_qsl(query, keep_blank_values=True)):
                uri += sep + query
            else:
                uri += sep + urlencode({self.EXTRA_KEY: self.extra})
        return uri


def parse_connection(value: str, conn_id: str | None = None) -> Connection:
    """A connection from its URI, or from Airflow's JSON form when ``value`` starts with ``{`` (as Airflow
    2.10 reads ``AIRFLOW_CONN_*`` variables). Raises :class:`ConnectionURIError`."""
    if value.lstrip().startswith("{"):
        return Connection.from_json(value, conn_id)
    return Connection.from_uri(value, conn_id)


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


def _secret_values(obj: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, str]:
    """A Secret's keys and decoded values: ``data`` is base64 (as the API returns it), ``stringData`` plain
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
            values = _secret_values(obj, f"{where}: Secret {name!r}", sources.missing)
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
        values = _secret_values(obj, f"{where}: Secret {name!r}", sources.missing)
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
