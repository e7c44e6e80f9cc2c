"""The short chaos run (issue 13 item 7), in CI: ``kubedag controller`` as a process against the API emulator, the
fake kubelet and SQLite, killed at ~10 random points, with a 503 and a 429 burst, dropped watches, a DB outage and
the short corpus (:mod:`tests.chaos.harness`; the full version is ``benchmarks/chaos.py``).

It asserts what main guarantees: no run lost or duplicated, no try run twice, no stale DB row, no traceback that an
injected fault does not explain, no redundant pod DELETE, and a message naming the problem for every corpus case
(those tagged ``needs='identity'`` are named since the run-identity and bad-input part of issue 13). The report is
printed (``pytest -s`` shows it).
"""
from __future__ import annotations

import pytest

from tests.chaos.harness import Chaos, short_config

pytestmark = pytest.mark.chaos


def test_the_controller_survives_kills_faults_and_bad_input_with_nothing_lost(tmp_path):
    with Chaos(short_config(tmp_path)) as chaos:
        report = chaos.run()
    print('\n'.join(report.lines()))
    assert report.restarts >= 8  # the kills did happen
    assert report.faults['503'] + report.faults['429'] > 0 and report.faults['watches dropped'] and report.faults['db outage']
    assert report.lost == []
    assert report.duplicated == []
    assert report.twice == []
    assert report.stale == []
    assert not report.unexpected_tracebacks, report.unexpected_tracebacks
    assert report.redundant_deletes == []
    silent = [(case.name, message) for case, ok, message in report.corpus if not ok]
    assert silent == []
