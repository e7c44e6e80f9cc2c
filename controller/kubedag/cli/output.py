"""Output helpers shared by CLI commands: JSON for scripts, Rich tables for people."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import Enum
from typing import Any

import typer


class OutputFormat(str, Enum):
    """``-o`` values, as kubectl's: ``table`` for people, ``json`` for scripts."""

    table = "table"
    json = "json"


OUTPUT_OPTION = typer.Option(OutputFormat.table, "--output", "-o", help="Output format: table or json.")


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (datetimes as ISO 8601 UTC)."""

    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            from kubedag.core.timetable import iso_utc

            return iso_utc(o)
        if isinstance(o, Enum):
            return o.value
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    sys.stdout.write(json.dumps(data, indent=2, default=default) + "\n")


def console(stderr: bool = False) -> Any:
    """A Rich console; when output is not a terminal, wide enough that tables are never truncated."""
    from rich.console import Console

    probe = Console(stderr=stderr)
    return Console(stderr=stderr, highlight=False, width=None if probe.is_terminal else 240)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return an Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)
