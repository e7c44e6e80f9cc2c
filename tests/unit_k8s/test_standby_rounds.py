"""The warm standby's rounds (issue 13, "Hot standby"): which runs' memories a round (re)reads. A run changed
after the final read (a late watch event of the former leader's last write) is read again at once, so the
takeover finds its memory current instead of opening it from the DB."""

from __future__ import annotations

import asyncio

from kubedag.k8s.informers import Cache
from kubedag.k8s.standby import REFRESH_INTERVAL, Standby, Warm

KEY = ("team-a", "chain-0")


class _Dags:
    def prepare(self, key) -> None:  # noqa: D401 - a stand-in: nothing to validate
        return None


def _standby(clock: list[float], quiet: list[float | None]) -> tuple[Standby, list[float]]:
    cache = Cache()
    cache.runs[KEY] = {"metadata": {"name": KEY[1], "namespace": KEY[0], "uid": "u", "resourceVersion": "1"},
                       "spec": {"dagName": "chain"}, "status": {"phase": "running"}}
    standby = Standby(cache, _Dags(), store=None, store_call=None, quiet_since=lambda: quiet[0],  # type: ignore[arg-type]
                      monotonic=lambda: clock[0])
    reads: list[float] = []

    async def build(key) -> None:  # the run store read, recorded
        reads.append(clock[0])
        standby.dirty.discard(key)
        meta = cache.runs[key]["metadata"]
        standby.warm[key] = Warm(meta["uid"], meta["resourceVersion"], memory=None, read_at=clock[0])  # type: ignore[arg-type]

    standby.build = build  # type: ignore[method-assign]
    return standby, reads


def test_a_run_changed_after_the_final_read_is_read_again_at_once_and_is_current_at_takeover():
    clock, quiet = [100.0], [None]
    standby, reads = _standby(clock, quiet)
    asyncio.run(standby.round())
    assert reads == [100.0]  # first seen
    clock[0] = 101.0
    standby.touch_run(KEY)
    asyncio.run(standby.round())
    assert reads == [100.0]  # while the leader writes, a changed run waits REFRESH_INTERVAL
    quiet[0], clock[0] = 104.0, 104.5
    asyncio.run(standby.round())
    assert reads == [100.0, 104.5]  # the final read, once the leader is quiet
    clock[0] = 105.0  # the former leader's last write reaches this replica's watch after that read
    standby.cache.runs[KEY]["metadata"]["resourceVersion"] = "2"
    standby.touch_run(KEY)
    asyncio.run(standby.round())
    assert reads == [100.0, 104.5, 105.0] and 105.0 - 104.5 < REFRESH_INTERVAL
    current, total = standby.handover()
    assert set(current) == {KEY} and total == 1
