"""Connection URIs parsed and rebuilt as Airflow 2.10's Connection does (examples from Airflow's docs and tests)."""

from __future__ import annotations

import json

import pytest

from kubedag.core.connections import Connection, ConnectionURIError, parse_connection


def test_the_airflow_docs_example():
    c = Connection.from_uri("my-conn-type://login:password@host:5432/schema?param1=val1&param2=val2", "my_conn")
    assert (c.conn_id, c.conn_type, c.login, c.password, c.host, c.port, c.schema) == (
        "my_conn", "my_conn_type", "login", "password", "host", 5432, "schema"
    )
    assert c.extra_dejson == {"param1": "val1", "param2": "val2"}


@pytest.mark.parametrize(
    ("uri", "fields"),
    [
        ("postgres://user:pass@db.example:5432/sales",
         dict(conn_type="postgres", login="user", password="pass", host="db.example", port=5432, schema="sales")),
        ("postgresql://u:p@h/db", dict(conn_type="postgres", host="h", port=None, schema="db")),
        ("google-cloud-platform://?key_path=%2Fkeys%2Fkey.json&num_retries=5",
         dict(conn_type="google_cloud_platform", host="", login=None, password=None, schema="",
              extra='{"key_path": "/keys/key.json", "num_retries": "5"}')),
        # percent-decoding of login, password, host (a socket path) and schema
        ("postgres://us%40er:p%40ss%3Aw%2Fd@%2Ftmp%2Fpg.sock/my%20db",
         dict(login="us@er", password="p@ss:w/d", host="/tmp/pg.sock", schema="my db")),
        ("mysql://myname:mypassword@myhost.com?this_param=some+val&that_param=other+val%2A",
         dict(conn_type="mysql", host="myhost.com", schema="",
              extra=json.dumps({"this_param": "some val", "that_param": "other val*"}))),
        # a host with its own protocol (two '://')
        ("http://https://example.com:8443/api", dict(conn_type="http", host="https://example.com", port=8443, schema="api")),
        ("aws://", dict(conn_type="aws", host="", login=None, password=None, port=None, schema="", extra=None)),
        ("sqlite:///tmp/x.db", dict(conn_type="sqlite", host="", schema="tmp/x.db")),
        ("redis://:onlypass@cache:6379/0", dict(login="", password="onlypass", host="cache", schema="0")),
        ("http://host?flag=", dict(extra='{"flag": ""}')),  # blank values are kept
    ],
)
def test_parse_from_uri(uri, fields):
    c = Connection.from_uri(uri)
    for name, value in fields.items():
        assert getattr(c, name) == value, name


def test_extra_from_the_extra_key():
    extra = {"nested": {"a": [1, 2]}, "flag": True}
    c = Connection.from_uri("my-type://host?__extra__=" + json.dumps(extra).replace(" ", "%20"))
    assert c.extra_dejson == extra
    assert c.get_uri() == "my-type://host/?__extra__=%7B%22nested%22%3A+%7B%22a%22%3A+%5B1%2C+2%5D%7D%2C+%22flag%22%3A+true%7D"


def test_extra_dejson_nested_and_bad_json():
    c = Connection(conn_type="http", extra='{"headers": "{\\"X\\": 1}", "plain": "x"}')
    assert c.extra_dejson == {"headers": '{"X": 1}', "plain": "x"}
    assert c.get_extra_dejson(nested=True) == {"headers": {"X": 1}, "plain": "x"}
    assert Connection(extra="not json").extra_dejson == {}  # Airflow logs the error and returns {}


@pytest.mark.parametrize(
    ("uri", "rebuilt"),
    [
        ("postgres://us%40er:p%40ss@db.example:5432/sales?sslmode=require",
         "postgres://us%40er:p%40ss@db.example:5432/sales?sslmode=require"),
        ("my-conn-type://login:password@host:5432/schema?param1=val1", "my-conn-type://login:password@host:5432/schema?param1=val1"),
        ("postgresql://u:p@h/db", "postgres://u:p@h/db"),
        ("google-cloud-platform://?num_retries=5", "google-cloud-platform:///?num_retries=5"),  # "/?" without a schema
        ("http://https://example.com:8443", "http://https://example.com:8443"),
        ("aws://", "aws://"),
        ("http://:8080", "http://@:8080"),
    ],
)
def test_get_uri_as_airflow(uri, rebuilt):
    assert Connection.from_uri(uri).get_uri() == rebuilt


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("a://b://c://d", "has more than two '://'"),
        ("http://user@https://host", "the host's protocol holds '@' or ':'"),
        ("postgres://u:secretpw@db:port/x", "Port could not be cast to integer"),
        ("postgres://u:secretpw@db:99999/x", "Port out of range"),
        ("http://[::1/x", "Invalid IPv6 URL"),
    ],
)
def test_invalid_uris_never_echo_the_uri(uri, message):
    with pytest.raises(ConnectionURIError) as info:
        Connection.from_uri(uri, "my_db")
    assert str(info.value).startswith("connection 'my_db': invalid connection URI: ")
    assert message in str(info.value)
    assert "secretpw" not in str(info.value)


def test_json_form():
    c = parse_connection('{"conn_type": "postgresql", "host": "db", "port": "5432", "login": "u", "password": "p", '
                         '"extra": {"sslmode": "require"}}', "j")
    assert (c.conn_type, c.host, c.port, c.login, c.password) == ("postgres", "db", 5432, "u", "p")
    assert c.extra_dejson == {"sslmode": "require"}
    with pytest.raises(ConnectionURIError, match="connection 'j': expected an integer port"):
        parse_connection('{"conn_type": "http", "port": "eighty"}', "j")
    with pytest.raises(ConnectionURIError, match="keys among"):
        parse_connection('{"conn_type": "http", "pasword": "x"}', "j")
    with pytest.raises(ConnectionURIError, match="invalid JSON"):
        parse_connection("{oops", "j")


def test_repr_never_shows_the_password():
    c = Connection.from_uri("postgres://u:hunter22@db/x", "my_db")
    assert repr(c) == str(c) == "my_db"
    assert "hunter22" not in repr(c)
