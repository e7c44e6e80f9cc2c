"""The built-in http check against a small http.server on 127.0.0.1, and its command line."""

from __future__ import annotations

import json
import pathlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubedag.core.sensors import check_argv
from kubedag.http.checks import http_check, json_equal
from kubedag.sensors.program import main

from ._helpers import sensor

HEALTH = {"status": "ready", "version": 3, "items": [{"name": "a", "ready": True}, {"name": "b", "ready": False}]}


class Handler(BaseHTTPRequestHandler):
    """``/json`` HEALTH; ``/status/N`` an empty answer with status N; ``/text`` a 200 that is not JSON;
    ``/echo`` the request (method, headers, body) as JSON; ``/moved`` a 302 to ``/json``."""

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else None
        if self.path == "/json":
            self._answer(200, json.dumps(HEALTH).encode())
        elif self.path.startswith("/status/"):
            self._answer(int(self.path.rsplit("/", 1)[1]))
        elif self.path == "/text":
            self._answer(200, b"<html>starting</html>")
        elif self.path == "/moved":
            self._answer(302, headers={"Location": "/json"})
        elif self.path == "/echo":
            echo = {"method": self.command, "headers": dict(self.headers), "body": body}
            self._answer(200, json.dumps(echo).encode())
        else:
            self._answer(404)

    do_GET = do_POST = do_PUT = do_DELETE = _route

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_check(capsys, *argv: str) -> tuple[int, str, str]:
    """``python -m kubedag.sensors http ARGV`` in process: (exit code, stdout, stderr)."""
    code = main(["http", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_expected_status_is_met(server, capsys):
    assert run_check(capsys, f"--url={server}/status/204", "--expected-status=204") == (
        0, f"GET {server}/status/204: HTTP 204\n", ""
    )


@pytest.mark.parametrize("status", [404, 500, 503])
def test_other_statuses_are_not_met_yet(server, capsys, status):
    code, out, _ = run_check(capsys, f"--url={server}/status/{status}")
    assert code == 75
    assert out == f"not yet: GET {server}/status/{status}: HTTP {status} (want 200)\n"


def test_several_expected_statuses(server):
    assert http_check(f"{server}/status/503", expected_status=[200, 503]).met
    assert http_check(f"{server}/status/404", expected_status=[200, 503]).code == 75


def test_redirects_are_followed(server):
    assert http_check(f"{server}/moved", json_path="$.status", expected_value="ready").met


def test_connection_refused_is_not_met_yet(capsys):
    url = f"http://127.0.0.1:{closed_port()}/health"
    code, out, _ = run_check(capsys, f"--url={url}")
    assert code == 75
    assert out.startswith(f"not yet: GET {url}: ") and "refused" in out


def test_a_request_timeout_is_not_met_yet():
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        result = http_check(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=0.2)
    assert result.code == 75
    assert "timed out" in result.message


def test_json_path_match_is_met_and_shows_the_value(server, capsys):
    code, out, _ = run_check(capsys, f"--url={server}/json", "--json-path=$.status")
    assert (code, out) == (0, f'GET {server}/json: HTTP 200, $.status = "ready"\n')


def test_json_path_without_a_match_is_not_met_yet(server):
    result = http_check(f"{server}/json", json_path="$.nothing")
    assert result.code == 75
    assert result.message.endswith("no match for $.nothing")


def test_expected_value(server, capsys):
    assert run_check(capsys, f"--url={server}/json", "--json-path=$.version", "--expected-value=3")[0] == 0
    code, out, _ = run_check(capsys, f"--url={server}/json", "--json-path=$.status", '--expected-value="done"')
    assert code == 75
    assert out.endswith('$.status = "ready" (want "done")\n')


def test_every_match_must_equal_the_expected_value(server):
    assert http_check(f"{server}/json", json_path="$.items[*].ready", expected_value=True).code == 75
    assert http_check(f"{server}/json", json_path="$.items[*].name", expected_value="a").code == 75
    # "Any one equal" is a filter:
    assert http_check(f"{server}/json", json_path="$.items[?(@.ready == true)].name", expected_value="a").met


def test_expected_value_is_compared_as_json():
    assert json_equal(1, 1.0) and json_equal({"a": [1, None]}, {"a": [1.0, None]})
    assert not json_equal(True, 1) and not json_equal(0, False) and not json_equal("1", 1)
    assert not json_equal([1, 2], [2, 1]) and not json_equal({"a": 1}, {"a": 1, "b": 2})


def test_expected_null(server):
    assert http_check(f"{server}/echo", json_path="$.body", expected_value=None).met
    assert not http_check(f"{server}/echo", json_path="$.method", expected_value=None).met


def test_a_body_that_is_not_json_is_not_met_yet(server):
    result = http_check(f"{server}/text", json_path="$.status")
    assert result.code == 75
    assert result.message.endswith("HTTP 200, but the body is not JSON")


def test_method_headers_and_body_are_sent(server):
    result = http_check(
        f"{server}/echo", method="PUT", headers={"X-Token": "s3cret"}, body='{"q": 1}',
        json_path="$.body", expected_value='{"q": 1}',
    )
    assert result.met, result.message
    assert http_check(f"{server}/echo", headers={"X-Token": "a=b"}, json_path="$.headers.X-Token",
                      expected_value="a=b").met


def test_an_invalid_json_path_is_an_error_not_a_wait(server, capsys):
    code, out, err = run_check(capsys, f"--url={server}/json", "--json-path=$.[[[")
    assert (code, out) == (1, "")
    assert err.startswith("--json-path: '$.[[[' is not a valid JSONPath")


@pytest.mark.parametrize("url", ["ftp://host/x", "localhost:8080/x", "", "http://"])
def test_a_url_that_is_not_http_is_an_error(capsys, url):
    code, _, err = run_check(capsys, f"--url={url}")
    assert code == 1 and "--url" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--url=http://x", "--expected-status=abc"],
        ["--url=http://x", "--expected-status=700"],
        ["--url=http://x", "--header=no-equals-sign"],
        ["--url=http://x", "--json-path=$.a", "--expected-value=ready"],  # not JSON: quote strings
        ["--url=http://x", "--expected-value=1"],  # needs --json-path
        ["--url=http://x", "--timeout=soon"],
        ["--url=http://x", "--method=FETCH"],
        [],
    ],
)
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        main(["http", *argv])
    assert exc.value.code == 2


def test_check_argv_renders_the_templated_fields_and_passes_the_rest(server):
    spec = sensor(http={
        "url": server + "/{{ path }}",
        "method": "POST",
        "headers": {"X-Day": "{{ ds }}"},
        "body": "{{ ds }}",
        "expectedStatus": [200, 201],
        "jsonPath": "$.body",
        "expectedValue": "2026-11-01",
        "requestTimeout": "1500ms",
    })
    fields = []

    def render(template: str, field: str) -> str:
        fields.append(field)
        return template.replace("{{ path }}", "echo").replace("{{ ds }}", "2026-11-01")

    argv = check_argv(spec, render, "python")
    assert argv == [
        "python", "-m", "kubedag.sensors", "http", f"--url={server}/echo", "--method=POST",
        "--header=X-Day=2026-11-01", "--body=2026-11-01", "--expected-status=200", "--expected-status=201",
        "--json-path=$.body", '--expected-value="2026-11-01"', "--timeout=1.5",
    ]
    assert fields == ["sensor.http.url", "sensor.http.headers.X-Day", "sensor.http.body"]
    assert main(argv[3:]) == 0


def test_the_program_exits_75_as_a_subprocess():
    url = f"http://127.0.0.1:{closed_port()}/"
    argv = check_argv(sensor(http={"url": url}), lambda t, f: t, sys.executable)
    env = {"PYTHONPATH": str(pathlib.Path(__file__).parents[2] / "controller")}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 75
    assert result.stdout.startswith(f"not yet: GET {url}: ")
