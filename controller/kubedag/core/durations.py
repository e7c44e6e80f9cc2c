"""Durations as written in DAG manifests: ``30s``, ``5m``, ``1h30m``, ``2d``, ``1w``.

A duration is a sequence of ``<integer><unit>`` parts with units ``w`` (weeks), ``d`` (days),
``h`` (hours), ``m`` (minutes), ``s`` (seconds) and ``ms`` (milliseconds), each unit at most once and
in that order, as Go's ``time.ParseDuration`` and Kubernetes tools write them. A bare integer or float
is a whole number of seconds (Airflow accepts ``retry_delay`` as seconds); a bare float is rejected, as
the CRD types durations as integer-or-string (write ``"1500ms"`` or ``"1.5"``).
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS: dict[str, timedelta] = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}
_PART = re.compile(r"(\d+)(ms|w|d|h|m|s)")
_ORDER = list(_UNITS)


def parse_duration(value: object) -> timedelta:
    """Parse a manifest duration into a :class:`~datetime.timedelta`.

    Accepts a ``timedelta`` (returned as is), an ``int``/``float`` number of seconds, or a string
    such as ``"30s"``, ``"5m"``, ``"1h30m"``, ``"2d"``, ``"1w2d"``, ``"250ms"``.

    Raises:
        ValueError: for negative numbers, empty strings, unknown units, repeated or out-of-order
            units, or anything else; the message quotes the value and shows valid examples.
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(f"duration must not be negative, got {value}")
        return value
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: expected e.g. '30s', '5m', '1h30m', '2d'")
    if isinstance(value, float):
        raise ValueError(
            f"invalid duration {value!r}: a bare number must be whole seconds (the CRD takes an integer or a string); "
            f"write it as a string such as '{int(value * 1000)}ms'"
        )
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: expected a string such as '30s', '5m', '1h30m', '2d'")
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return timedelta(seconds=float(text))
    pos = 0
    total = timedelta(0)
    last_index = -1
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(
                f"invalid duration {value!r}: expected <number><unit> parts with units w, d, h, m, s, ms "
                "(e.g. '30s', '5m', '1h30m', '2d')"
            )
        unit = match.group(2)
        index = _ORDER.index(unit)
        if index <= last_index:
            raise ValueError(f"invalid duration {value!r}: units must appear once each, largest first")
        last_index = index
        total += int(match.group(1)) * _UNITS[unit]
        pos = match.end()
    if pos == 0:
        raise ValueError(f"invalid duration {value!r}: empty")
    return total


def format_duration(delta: timedelta) -> str:
    """Format a timedelta in the manifest's notation, the inverse of :func:`parse_duration`.

    ``timedelta(minutes=90)`` -> ``"1h30m"``; zero -> ``"0s"``. Sub-millisecond parts are dropped.
    """
    ms = int(delta / timedelta(milliseconds=1))
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        n, ms = divmod(ms, int(size / timedelta(milliseconds=1)))
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)
