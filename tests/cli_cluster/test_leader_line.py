"""``kubedag dags list`` on a cluster says which controller replica leads, from the leader-election Lease."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kubedag.cli.cluster import leader_lines
from kubedag.k8s.leases import LEASE_LABEL, format_micro_time, parse_lease, read_leader
from tests.cli_cluster.conftest import dag_manifest

NOW = datetime(2026, 12, 2, 14, 0, tzinfo=timezone.utc)


def lease(holder: str | None, renewed: datetime, namespace: str = "kubedag-system", duration: int = 15) -> dict:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "kubedag", "namespace": namespace, "labels": {LEASE_LABEL: "kubedag"}},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "renewTime": format_micro_time(renewed),
                     "acquireTime": format_micro_time(renewed), "leaseTransitions": 3}}


def test_dags_list_names_the_replica_holding_the_lease(k8s_api, kubedag):
    k8s_api.create(dag_manifest("etl"))
    k8s_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubedag-system"}})
    k8s_api.create(lease("kubedag-7d9f-abcde_0b6c1e0e-1111-2222-3333-444455556666", datetime.now(timezone.utc),
                         duration=3600))  # fresh however slowly the command starts
    result = kubedag("dags", "list")
    assert result.code == 0, result.err
    line = result.out.splitlines()[-1]
    assert line.startswith("Controller: kubedag-7d9f-abcde leads (Lease kubedag-system/kubedag, renewed ")
    assert "no leader" not in line


def test_read_leader_gives_the_holder_and_its_heartbeat_or_none(k8s_api):
    k8s_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubedag-system"}})
    client = k8s_api.api_client()
    try:
        assert read_leader(client, "kubedag-system", "kubedag") is None
        k8s_api.create(lease("pod-a_1", NOW))
        info = read_leader(client, "kubedag-system", "kubedag")
    finally:
        client.close()
    assert (info.holder, info.renew_time, info.lease_duration, info.transitions) == ("pod-a_1", NOW, 15, 3)


def test_dags_list_without_a_lease_prints_no_leader_line(k8s_api, kubedag):
    k8s_api.create(dag_manifest("etl"))
    result = kubedag("dags", "list")
    assert result.code == 0 and "Controller:" not in result.out


def test_a_stale_or_released_lease_reads_as_such():
    stale = parse_lease(lease("pod-a_1", NOW - timedelta(seconds=40)))
    released = parse_lease(lease(None, NOW))
    assert not stale.healthy(NOW) and not released.healthy(NOW)
    assert parse_lease(lease("pod-a_1", NOW - timedelta(seconds=3))).healthy(NOW)
    assert leader_lines([stale, released], NOW) == [
        "Controller: no leader: pod-a last renewed Lease kubedag-system/kubedag 40s ago (lease duration 15s)",
        "Controller: no leader (Lease kubedag-system/kubedag released)",
    ]
