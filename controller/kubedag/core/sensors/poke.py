"""When a sensor pokes again, and the ``/bin/sh`` wrapper that pokes in one process (``mode: poke``).

:func:`next_poke_interval` is a port of Airflow 2.10's ``BaseSensorOperator._get_next_poke_interval``
(``airflow/sensors/base.py``); the controller and the local runner use it between the pokes of a
``mode: reschedule`` sensor. :func:`poke_command` wraps a check's argv in a POSIX shell loop, so a ``mode:
poke`` sensor is one pod (or one local process) that repeats its check, as Airflow's ``execute`` loop does
in one worker slot.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the check program (python -m kubedag.sensors) never imports pydantic for this module
    from kubedag.core.spec.models import SensorSpec

NOT_MET = 75
"""Exit code of a check that is not met yet (``kubedag.core.spec.models.SENSOR_NOT_MET_EXIT_CODE``)."""

_TIMEDELTA_MAX_SECONDS = timedelta.max.total_seconds()
_SECOND = timedelta(seconds=1)


def _jittered(poke_interval: float, dag_id: str, task_id: str, started_at: str, poke_count: int) -> int:
    """Airflow's backoff for poke ``poke_count``: ``min_backoff + sha1(...) % min_backoff`` whole seconds."""
    # The value of min_backoff should always be greater than or equal to 1 (Airflow's comment).
    if poke_interval == 0:
        min_backoff = 1  # Airflow computes 0.0 * 2 ** (n - 2), which overflows a float past n = 1025
    else:
        try:
            min_backoff = max(int(poke_interval * (2 ** (poke_count - 2))), 1)
        except OverflowError:
            min_backoff = int(_TIMEDELTA_MAX_SECONDS)
    run_hash = int(hashlib.sha1(f"{dag_id}#{task_id}#{started_at}#{poke_count}".encode()).hexdigest(), 16)
    return min(min_backoff + run_hash % min_backoff, int(_TIMEDELTA_MAX_SECONDS - 1))


def next_poke_interval(
    sensor: SensorSpec,
    *,
    dag_id: str,
    task_id: str,
    started_at: datetime,
    poke_count: int,
    elapsed: timedelta,
) -> timedelta:
    """How long to wait after poke ``poke_count`` (1 for the first) came back "not met".

    Airflow 2.10's ``_get_next_poke_interval``:

    * without ``exponentialBackoff``: ``pokeInterval``, as it is (not capped by the time left);
    * with it: ``min_backoff = max(int(poke_interval * 2 ** (poke_count - 2)), 1)`` and the interval is
      ``min_backoff + sha1(f"{dag_id}#{task_id}#{started_at}#{poke_count}") % min_backoff`` whole seconds, so
      in ``[min_backoff, 2 * min_backoff)`` and stable for a given sensor and poke; then at most
      ``timeout - int(elapsed seconds)`` and at most ``maxWait`` when that is set and not zero (Airflow:
      ``if self.max_wait:``). In ``mode: reschedule`` Airflow does not trust ``poke_count`` (every poke is a
      new process) and re-estimates it from ``elapsed``: the smallest count whose summed intervals exceed it.

    ``dag_id`` is the DB dag id; ``started_at`` is when the sensor's first poke of this try started (Airflow:
    the first reschedule's start date in reschedule mode, a ``time.monotonic()`` float in poke mode, for which
    kubedag uses the start datetime too). It is hashed as ``str()`` of the UTC datetime, as Airflow does with
    the value loaded from its DB: ``2026-11-01 00:00:00+00:00``. ``elapsed`` is the time since ``started_at``.

    Returns:
        A non-negative timedelta (Airflow's float seconds; a negative time left, once past the timeout,
        is 0 here).

    Raises:
        ValueError: ``started_at`` is naive, or ``poke_count`` is below 1.
    """
    if not sensor.exponential_backoff:
        return sensor.poke_interval
    if started_at.tzinfo is None or started_at.utcoffset() is None:
        raise ValueError(f"started_at={started_at!r} is naive; pass a timezone-aware (UTC) datetime")
    if poke_count < 1:
        raise ValueError(f"poke_count must be 1 or more (1 for the first poke), got {poke_count}")
    poke_interval = sensor.poke_interval.total_seconds()
    elapsed_s = elapsed.total_seconds()
    stamp = str(started_at.astimezone(timezone.utc))

    if sensor.mode == "reschedule":
        poke_count = reschedule_poke_count(sensor, dag_id=dag_id, task_id=task_id, started_at=started_at,
                                           elapsed=elapsed) or poke_count

    delay = _jittered(poke_interval, dag_id, task_id, stamp, poke_count)
    new_interval: float = min(sensor.timeout.total_seconds() - int(elapsed_s), delay)
    if sensor.max_wait:
        new_interval = min(sensor.max_wait.total_seconds(), new_interval)
    return timedelta(seconds=max(new_interval, 0))


def reschedule_poke_count(sensor: SensorSpec, *, dag_id: str, task_id: str, started_at: datetime,
                          elapsed: timedelta) -> int:
    """How many pokes a ``reschedule`` sensor with ``exponentialBackoff`` has made after ``elapsed`` since its
    first poke at ``started_at`` (UTC-aware): Airflow 2.10's estimate in ``_get_next_poke_interval`` (every poke
    is a new process, so the count is not kept): the smallest count whose summed backoff intervals exceed
    ``elapsed``; 0 for a negative ``elapsed``."""
    poke_interval = sensor.poke_interval.total_seconds()
    elapsed_s = elapsed.total_seconds()
    if poke_interval == 0:
        # Every interval is 1 s: Airflow's loop below would end at floor(elapsed) + 1 after as many hashes.
        return int(elapsed_s) + 1 if elapsed_s >= 0 else 0
    stamp = str(started_at.astimezone(timezone.utc))
    cumulative = 0.0
    estimated = 0
    while cumulative <= elapsed_s:
        estimated += 1
        cumulative += _jittered(poke_interval, dag_id, task_id, stamp, estimated)
    return estimated


def _whole_seconds(delta: timedelta) -> int:
    """``delta`` rounded up to whole seconds (the shell does integer arithmetic only)."""
    return -(-delta // _SECOND)


_SCRIPT = """\
timeout={timeout} iv={interval}
t0=$(date +%s) || exit 1
child=
trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; fi; exit 143' TERM
trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; fi; exit 130' INT
n=0
while :; do
  n=$((n + 1))
  "$@" &
  child=$!
  wait "$child"
  rc=$?
  child=
  if [ "$rc" -eq 0 ]; then exit 0; fi
  if [ "$rc" -ne {not_met} ]; then
    echo "kubedag: poke $n: check failed with exit code $rc" >&2
    exit "$rc"
  fi
  elapsed=$(( $(date +%s) - t0 ))
  if [ "$elapsed" -ge "$timeout" ]; then
    echo "kubedag: poke $n: not met, timed out after ${{elapsed}}s (timeout ${{timeout}}s)" >&2
    exit {not_met}
  fi
  next=$iv
{cap_max_wait}\
  left=$((timeout - elapsed))
  if [ "$next" -gt "$left" ]; then next=$left; fi
  echo "kubedag: poke $n: not met, next in ${{next}}s" >&2
  sleep "$next" &
  child=$!
  wait "$child"
  child=
{double}\
done
"""

_CAP_MAX_WAIT = '  if [ "$next" -gt {max_wait} ]; then next={max_wait}; fi\n'
_DOUBLE = '  if [ "$iv" -lt "$timeout" ]; then iv=$((iv * 2)); fi\n'


def poke_command(argv: list[str], sensor: SensorSpec) -> list[str]:
    """``["/bin/sh", "-c", SCRIPT, "kubedag-poke", *argv]``: run the check ``argv`` until it is met or times out.

    The loop, in one process (one pod), follows Airflow 2.10's ``BaseSensorOperator.execute`` in poke mode:

    * the check exits 0 (met): exit 0;
    * it exits 75 (not met yet): if ``timeout`` seconds have passed since the wrapper started, print
      ``kubedag: poke N: not met, timed out after Es (timeout Ts)`` and exit 75 (the caller turns that into
      a failure, or a skip with ``softFail``); else print ``kubedag: poke N: not met, next in Ss`` to stderr,
      sleep ``S`` seconds and poke again;
    * any other exit code (including 126/127 from the shell for a command that cannot run, and 128+n for a
      check killed by signal n): print ``kubedag: poke N: check failed with exit code C`` and exit with it.

    ``S`` is ``pokeInterval``; with ``exponentialBackoff`` it starts at ``pokeInterval`` (at least 1 s, as
    Airflow's ``min_backoff``) and doubles after every poke, the upper end of Airflow's jittered range, without
    the sha1 jitter (a shell has no portable hash), and is at most ``maxWait`` when that is set and not zero.
    It is always at most the time left before the timeout, so the last poke happens at the deadline. Durations
    are rounded up to whole seconds (the shell's arithmetic is integer; ``500ms`` sleeps 1 s) and elapsed time
    is measured with ``date +%s``. The sensor's ``mode`` is not read: this is the ``mode: poke`` runner.

    ``argv`` is passed as positional parameters and run as ``"$@"``, never spliced into the script, so any
    bytes survive; the script holds only integers computed here. The check runs in the background with stdin
    from ``/dev/null`` and is waited for, so SIGTERM/SIGINT (a pod being deleted, where the shell is PID 1)
    stop it at once: the check is sent SIGTERM and the wrapper exits 143 (130 for SIGINT). POSIX sh only
    (dash, busybox ash), plus ``date`` and ``sleep``.

    Raises:
        ValueError: ``argv`` is empty.
    """
    if not argv:
        raise ValueError("argv: the check to poke must have at least a program name")
    interval = _whole_seconds(sensor.poke_interval)
    cap_max_wait = double = ""
    if sensor.exponential_backoff:
        interval = max(interval, 1)
        double = _DOUBLE
        if sensor.max_wait:
            cap_max_wait = _CAP_MAX_WAIT.format(max_wait=_whole_seconds(sensor.max_wait))
    script = _SCRIPT.format(
        timeout=_whole_seconds(sensor.timeout),
        interval=interval,
        not_met=NOT_MET,
        cap_max_wait=cap_max_wait,
        double=double,
    )
    return ["/bin/sh", "-c", script, "kubedag-poke", *argv]
