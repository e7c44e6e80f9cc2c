"""parse_xcom: what a try's XCom file pushes, and the errors a user sees for a bad one."""

from __future__ import annotations

import json

import pytest

from kubedag.core import xcom
from kubedag.core.xcom import MAX_XCOM_BYTES, RETURN_KEY, XComError, parse_xcom


def test_constants_match_the_pod_contract():
    assert xcom.XCOM_PATH_ENV == "KUBEDAG_XCOM_PATH"
    assert xcom.POD_XCOM_FILE == f"{xcom.POD_XCOM_DIR}/return.json" == "/kubedag/xcom/return.json"
    assert MAX_XCOM_BYTES == 4096 and RETURN_KEY == "return_value"


@pytest.mark.parametrize("content", [b"", "", "  \n\t ", b"\n", "null", b" null\n"])
def test_nothing_written_or_null_pushes_no_xcom(content):
    # Airflow pushes no XCom for a task that returns None
    assert parse_xcom(content, multiple_outputs=False) == {}
    assert parse_xcom(content, multiple_outputs=True) == {}


@pytest.mark.parametrize(
    ("content", "value"),
    [
        (b'{"rows": 3, "path": "s3://bucket/key"}\n', {"rows": 3, "path": "s3://bucket/key"}),
        ("[1, 2.5, true, null]", [1, 2.5, True, None]),
        ('"done"', "done"),
        ("42", 42),
        ("false", False),
        ('{"name": "Ünïcode ✓"}'.encode(), {"name": "Ünïcode ✓"}),
        (b'\xef\xbb\xbf{"bom": 1}', {"bom": 1}),  # a UTF-8 byte order mark is tolerated
    ],
)
def test_json_value_is_the_return_value(content, value):
    assert parse_xcom(content, multiple_outputs=False) == {RETURN_KEY: value}


def test_multiple_outputs_pushes_each_key_and_the_whole_object():
    out = parse_xcom('{"rows": 3, "path": "p", "nothing": null}', multiple_outputs=True)
    assert out == {"rows": 3, "path": "p", "nothing": None, RETURN_KEY: {"rows": 3, "path": "p", "nothing": None}}
    # as in Airflow, the return value overwrites a key named return_value
    assert parse_xcom('{"return_value": 1, "a": 2}', multiple_outputs=True)[RETURN_KEY] == {"return_value": 1, "a": 2}


@pytest.mark.parametrize(("content", "kind"), [("[1, 2]", "an array"), ('"x"', "a string"), ("1", "a number"), ("true", "a boolean")])
def test_multiple_outputs_needs_an_object(content, kind):
    with pytest.raises(XComError, match=f"multipleOutputs is set, so the XCom return value must be a JSON object, got {kind}"):
        parse_xcom(content, multiple_outputs=True)


def test_multiple_outputs_rejects_unusable_keys():
    with pytest.raises(XComError, match="key '' must be 1 to 512 characters"):
        parse_xcom('{"": 1}', multiple_outputs=True)
    with pytest.raises(XComError, match="must be 1 to 512 characters"):
        parse_xcom(json.dumps({"k" * 513: 1}), multiple_outputs=True)


def test_size_limit_is_kubernetes_termination_message_limit():
    at_limit = json.dumps("x" * (MAX_XCOM_BYTES - 2))
    assert len(at_limit) == MAX_XCOM_BYTES
    assert parse_xcom(at_limit, multiple_outputs=False) == {RETURN_KEY: "x" * (MAX_XCOM_BYTES - 2)}
    too_big = json.dumps({"rows": ["row"] * 2000})
    with pytest.raises(XComError) as info:
        parse_xcom(too_big, multiple_outputs=False)
    assert str(info.value) == (
        f"XCom return value is {len(too_big)} bytes, more than the 4096 allowed "
        "(Kubernetes' termination message limit): push a reference (a path, a URL) instead"
    )


def test_size_is_counted_in_utf8_bytes():
    text = json.dumps("é" * 2100, ensure_ascii=False)  # 2102 characters, 4202 bytes
    with pytest.raises(XComError, match="is 4202 bytes"):
        parse_xcom(text, multiple_outputs=False)


def test_invalid_json_gives_line_and_column():
    with pytest.raises(XComError) as info:
        parse_xcom('{"rows": 3,\n "path": }', multiple_outputs=False)
    assert str(info.value) == "XCom return value is not valid JSON: Expecting value at line 2 column 10"
    with pytest.raises(XComError, match="not valid JSON: Extra data at line 1 column 3"):
        parse_xcom("1 2", multiple_outputs=False)
    with pytest.raises(XComError, match="not valid JSON: Expecting value at line 1 column 1"):
        parse_xcom("rows=3", multiple_outputs=False)


def test_content_cut_at_the_limit_says_so():
    # the kubelet truncates a longer termination message to 4096 bytes: the JSON arrives cut
    cut = json.dumps({"rows": ["row"] * 2000})[:MAX_XCOM_BYTES]
    with pytest.raises(XComError, match="probably cut at Kubernetes' termination message limit"):
        parse_xcom(cut.encode(), multiple_outputs=False)


@pytest.mark.parametrize("content", ["NaN", '{"x": Infinity}', "-Infinity"])
def test_nan_and_infinity_are_not_json(content):
    with pytest.raises(XComError, match="not valid JSON: .* is not allowed"):
        parse_xcom(content, multiple_outputs=False)


def test_bytes_that_are_not_utf8():
    with pytest.raises(XComError, match="not UTF-8 text \\(byte 1 is invalid\\)"):
        parse_xcom(b'"\xff"', multiple_outputs=False)


def test_xcom_error_is_a_value_error():
    assert issubclass(XComError, ValueError)
    assert not xcom.NO_XCOM and repr(xcom.NO_XCOM) == "NO_XCOM"
