"""The pool ledger shared by local runners (kubedag.local.pool_ledger): holdings of other live runners are seen,
a dead runner's are dropped, and a run waits for slots another runner holds instead of failing."""
from __future__ import annotations

import json
import subprocess
import sys

from kubedag.local.pool_ledger import PoolLedger


def _hold(ledger: PoolLedger, held: dict[str, int]) -> dict[str, int]:
    with ledger.transaction() as tx:
        tx.hold(held)
        return tx.others


def test_two_holders_see_each_others_slots(tmp_path):
    path = tmp_path / "ledger.json"
    a, b = PoolLedger(path, owner="a"), PoolLedger(path, owner="b")
    assert _hold(a, {"shared": 1, "default-pool": 2}) == {}
    assert _hold(b, {"shared": 1}) == {"shared": 1, "default-pool": 2}
    assert _hold(a, {"default-pool": 1}) == {"shared": 1}
    b.release()
    assert _hold(a, {}) == {}
    assert json.loads(path.read_text()) == {}


def test_a_dead_holders_slots_are_dropped(tmp_path):
    path = tmp_path / "ledger.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    path.write_text(json.dumps({"gone": {"pid": pid, "start": "1", "held": {"shared": 1}}}))
    live = PoolLedger(path, owner="live")
    assert _hold(live, {"shared": 1}) == {}
    assert set(json.loads(path.read_text())) == {"live"}


def test_a_run_waits_for_the_pool_slot_another_runner_holds(folder, tmp_path, monkeypatch):
    from tests.local.conftest import dag_manifest, run, states, write

    ledger = tmp_path / "ledger.json"
    monkeypatch.setenv("KUBEDAG_POOL_LEDGER", str(ledger))
    write(folder, "pool.yaml", """
        apiVersion: kubedag.io/v1alpha1
        kind: Pool
        metadata: {name: shared}
        spec: {slots: 1}
        """)
    write(folder, "dag.yaml", dag_manifest("needs-slot", """
        - name: t
          pool: shared
          command: [sh, -c, 'test -e holder-done']
        """))
    # another runner (a live process) holds the only slot until it ends, right after writing holder-done
    holder = subprocess.Popen([sys.executable, "-c", "import time, pathlib; time.sleep(0.5); "
                               f"pathlib.Path({str(folder / 'holder-done')!r}).touch()"])
    ledger.write_text(json.dumps({"holder": {"pid": holder.pid, "start": None, "held": {"shared": 1}}}))
    try:
        result = run(folder, "needs-slot")
    finally:
        holder.wait()
    assert result.state == "success", result.run.reason
    assert states(result) == {"t": "success"}
