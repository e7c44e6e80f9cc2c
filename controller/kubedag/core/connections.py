"""Airflow connections: parsing a connection URI (or its JSON form) exactly as Airflow 2.10's
``Connection._parse_from_uri`` and rebuilding it as its ``get_uri``. Pure: no I/O.

Templates see them as ``{{ conn.my_db.host }}`` (:mod:`kubedag.core.templating`); the masker hides their
passwords (:meth:`kubedag.core.secrets.Masker.add_connection`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

__all__ = ["Connection", "ConnectionURIError", "parse_connection"]


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
