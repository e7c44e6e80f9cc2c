"""client.py without a server: the token bucket, URL paths and the rotating bearer token."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from kubedag.k8s import client
from kubedag.k8s.client import Connection, RateLimiter, resource_path


class FakeTime:
    """A monotonic clock that only moves when the limiter sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(client, "time", SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(client, "asyncio", SimpleNamespace(Lock=asyncio.Lock, sleep=fake.sleep))
    return fake


def acquire(limiter: RateLimiter, n: int) -> None:
    async def go() -> None:
        for _ in range(n):
            await limiter.acquire()
    asyncio.run(go())


def test_burst_then_one_request_every_1_over_qps(fake_time):
    limiter = RateLimiter(qps=10, burst=3)
    acquire(limiter, 3)
    assert fake_time.sleeps == []  # the burst goes at once
    start = fake_time.now
    acquire(limiter, 4)
    assert fake_time.sleeps == pytest.approx([0.1, 0.1, 0.1, 0.1])
    assert fake_time.now - start == pytest.approx(0.4)


def test_the_bucket_refills_at_qps_up_to_burst(fake_time):
    limiter = RateLimiter(qps=10, burst=3)
    acquire(limiter, 3)
    fake_time.now += 0.2  # two tokens back
    acquire(limiter, 2)
    assert fake_time.sleeps == []
    acquire(limiter, 1)
    assert fake_time.sleeps == pytest.approx([0.1])
    fake_time.now += 60  # a long pause refills to burst, not beyond
    fake_time.sleeps.clear()
    acquire(limiter, 3)
    assert fake_time.sleeps == []
    acquire(limiter, 1)
    assert fake_time.sleeps == pytest.approx([0.1])


def test_a_partial_token_waits_only_for_the_rest(fake_time):
    limiter = RateLimiter(qps=4, burst=1)
    acquire(limiter, 1)
    fake_time.now += 0.125  # half a token
    acquire(limiter, 1)
    assert fake_time.sleeps == pytest.approx([0.125])


def test_qps_zero_disables_limiting(fake_time):
    limiter = RateLimiter(qps=0, burst=1)
    acquire(limiter, 50)
    assert fake_time.sleeps == []


def test_burst_is_at_least_one(fake_time):
    limiter = RateLimiter(qps=5, burst=0)
    acquire(limiter, 1)
    assert fake_time.sleeps == []
    acquire(limiter, 1)
    assert fake_time.sleeps == pytest.approx([0.2])


def test_real_clock_burst_is_immediate():
    """Loose check with the real clock: the burst does not wait."""
    limiter = RateLimiter(qps=5, burst=20)
    start = time.monotonic()
    acquire(limiter, 20)
    assert time.monotonic() - start < 0.15


def test_concurrent_acquirers_share_the_bucket(fake_time):
    limiter = RateLimiter(qps=10, burst=2)

    async def go() -> None:
        await asyncio.gather(*(limiter.acquire() for _ in range(5)))

    asyncio.run(go())
    assert len(fake_time.sleeps) == 3
    assert sum(fake_time.sleeps) == pytest.approx(0.3)


# ---------------------------------------------------------------------------------- resource_path
@pytest.mark.parametrize("args, path", [
    (("v1", "pods", "team-a"), "/api/v1/namespaces/team-a/pods"),
    (("v1", "pods", "team-a", "etl-extract-1-bcdfg"), "/api/v1/namespaces/team-a/pods/etl-extract-1-bcdfg"),
    (("v1", "pods", "team-a", "etl-extract-1-bcdfg", "log"), "/api/v1/namespaces/team-a/pods/etl-extract-1-bcdfg/log"),
    (("v1", "events", "default"), "/api/v1/namespaces/default/events"),
    (("v1", "nodes", None), "/api/v1/nodes"),
    (("v1", "namespaces", None, "team-a"), "/api/v1/namespaces/team-a"),
    (("kubedag.io/v1alpha1", "dagruns", "team-a"), "/apis/kubedag.io/v1alpha1/namespaces/team-a/dagruns"),
    (("kubedag.io/v1alpha1", "dagruns", "team-a", "etl-manual-x", "status"),
     "/apis/kubedag.io/v1alpha1/namespaces/team-a/dagruns/etl-manual-x/status"),
    (("kubedag.io/v1alpha1", "dags", None), "/apis/kubedag.io/v1alpha1/dags"),
    (("apiextensions.k8s.io/v1", "customresourcedefinitions", None, "dags.kubedag.io"),
     "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/dags.kubedag.io"),
])
def test_resource_path(args, path):
    assert resource_path(*args) == path


def test_resource_path_quotes_names():
    assert resource_path("v1", "pods", "ns", "a b?c") == "/api/v1/namespaces/ns/pods/a%20b%3Fc"


# ---------------------------------------------------------------------------------------- bearer
def test_bearer_is_the_static_token_without_a_token_file():
    assert Connection("https://k8s.example:6443", token="abc").bearer() == "abc"
    assert Connection("https://k8s.example:6443").bearer() is None


def test_bearer_rereads_the_token_file_as_it_rotates(tmp_path):
    token = tmp_path / "token"
    token.write_text("eyJhbGciOi.first\n")
    conn = Connection("https://10.96.0.1:443", token="stale", token_file=str(token))
    assert conn.bearer() == "eyJhbGciOi.first"
    token.write_text("eyJhbGciOi.second")
    assert conn.bearer() == "eyJhbGciOi.second"


def test_bearer_falls_back_to_the_token_when_the_file_is_unreadable(tmp_path):
    conn = Connection("https://10.96.0.1:443", token="stale", token_file=str(tmp_path / "missing"))
    assert conn.bearer() == "stale"
    assert Connection("https://10.96.0.1:443", token_file=str(tmp_path / "missing")).bearer() is None


def test_ssl_context_for_plain_http_and_insecure_servers():
    assert Connection("http://127.0.0.1:8001").ssl_context() is False
    assert Connection("https://k8s.example", insecure=True).ssl_context() is False
