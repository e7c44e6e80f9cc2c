"""What every task script of the supermarket example shares: its command line and idempotent writes.

Scripts run as ``python3 etl/<script>.py``, so this module is importable as ``common`` (the script's
folder is first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from pathlib import Path


def parse_args(doc: str, argv: list[str] | None, date_help: str, supermarket: bool = False) -> argparse.Namespace:
    """Parse ``--date YYYY-MM-DD --root DIR`` (and ``--supermarket N`` when asked); a bad date exits 2."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--date", required=True, help=f"{date_help}, YYYY-MM-DD")
    if supermarket:
        parser.add_argument("--supermarket", required=True, type=int, help="supermarket number (1-4)")
    parser.add_argument("--root", required=True, type=Path, help="data root directory")
    args = parser.parse_args(argv)
    try:
        dt.date.fromisoformat(args.date)
    except ValueError:
        parser.error(f"--date must be YYYY-MM-DD, got {args.date!r}")
    return args


def new_staging(target: Path) -> Path:
    """An empty hidden folder beside ``target`` to write a partition into before it replaces ``target``."""
    staging = target.with_name(f".{target.name}.tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` (if any) by the finished ``staging`` folder, so a rerun overwrites the partition."""
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
