"""The full chaos run of issue 13, by hand: ``.venv/bin/python benchmarks/chaos.py [--postgres] [--kills 50] ...``.

The harness is :mod:`tests.chaos.harness` (its short version runs in CI: ``tests/chaos``): ``kubedag controller`` as
its own process against the API emulator and the fake kubelet, with SQLite or (``--postgres``) an embedded
PostgreSQL server; killed with SIGKILL at ``--kills`` random points over ``--duration`` seconds while
``--runs`` DAGRuns are created, with ``--bursts`` API 5xx/429 bursts, ``--watch-drops`` dropped watches (new ones
failing ``--watch-outage`` seconds), a DB outage of ``--db-outage`` seconds (PostgreSQL stopped then started) and
the full corpus (~100 objects, a 2,000-task DAG among them). It prints lost runs, duplicated runs, tries run twice,
stale DB rows, tracebacks, redundant DELETEs, recovery times and the corpus table; nothing here asserts.
The controller's memory with 10,000 finished pods kept is measured by ``benchmarks/memory_kept_pods.py``.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.chaos.harness import Chaos, ChaosConfig  # noqa: E402
from tests.chaos.corpus import object_count  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--duration', type=float, default=420)
    parser.add_argument('--runs', type=int, default=60)
    parser.add_argument('--kills', type=int, default=50)
    parser.add_argument('--bursts', type=int, default=6)
    parser.add_argument('--burst-seconds', type=float, default=8)
    parser.add_argument('--watch-drops', type=int, default=3)
    parser.add_argument('--watch-outage', type=float, default=20)
    parser.add_argument('--db-outage', type=float, default=60)
    parser.add_argument('--big-tasks', type=int, default=2000)
    parser.add_argument('--postgres', action='store_true', help='embedded PostgreSQL instead of SQLite')
    parser.add_argument('--settle', type=float, default=300)
    parser.add_argument('--seed', type=int, default=13)
    parser.add_argument('--workdir', type=pathlib.Path, default=None, help='kept afterwards (default: a temporary one)')
    args = parser.parse_args()
    workdir = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix='kubedag-chaos-'))
    config = ChaosConfig(duration=args.duration, runs=args.runs, kills=args.kills, api_bursts=args.bursts,
                         burst_seconds=args.burst_seconds, watch_drops=args.watch_drops, watch_outage=args.watch_outage,
                         db_outage=args.db_outage, full_corpus=True, big_tasks=args.big_tasks, postgres=args.postgres,
                         settle=args.settle, seed=args.seed, workdir=workdir)
    with Chaos(config) as chaos:
        print(f'chaos: {args.kills} kills over {args.duration:.0f}s, {args.runs} runs, corpus of {len(chaos.cases)} cases '
              f'({object_count(chaos.cases)} objects), DB {"PostgreSQL" if args.postgres else "SQLite"}; work in {workdir}',
              flush=True)
        report = chaos.run()
    print('\n'.join(report.lines()))
    print(f'controller log: {report.log}')


if __name__ == '__main__':
    main()
