"""Copy one supermarket's completed delivery for a day into raw storage.

A delivery in ``ROOT/incoming/supermarket_{N}/{date}/`` is complete once its ``_SUCCESS`` marker
exists (the supermarket writes it after the data files). Without the marker this task fails with
exit code 1 and a message saying what is missing, so the orchestrator retries it later.

The ``data-*.csv`` files are copied to ``ROOT/raw/supermarket_{N}/{date}/``. The copy is staged in
a temporary sibling directory and then swapped in, replacing any earlier copy of that partition, so
rerunning the task is idempotent and never leaves a half-written partition behind.

Usage: ``python3 etl/copy_to_raw.py --date 2026-11-01 --supermarket 1 --root out``
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from common import new_staging, parse_args, swap_in


def copy_partition(root: Path, date: str, supermarket: int) -> list[Path]:
    """Copy the delivery's data files to raw storage and return the copied paths.

    Raises:
        FileNotFoundError: the delivery is incomplete (no ``_SUCCESS``) or holds no data files.
    """
    source = root / "incoming" / f"supermarket_{supermarket}" / date
    if not (source / "_SUCCESS").is_file():
        raise FileNotFoundError(
            f"delivery of supermarket {supermarket} for {date} is not complete: "
            f"{source / '_SUCCESS'} does not exist"
        )
    files = sorted(source.glob("data-*.csv"))
    if not files:
        raise FileNotFoundError(f"delivery of supermarket {supermarket} for {date} has no data-*.csv in {source}")
    target = root / "raw" / f"supermarket_{supermarket}" / date
    staging = new_staging(target)
    for path in files:
        shutil.copyfile(path, staging / path.name)
    swap_in(staging, target)
    return [target / path.name for path in files]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv, "the delivery day", supermarket=True)
    try:
        copied = copy_partition(args.root, args.date, args.supermarket)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = sum(path.stat().st_size for path in copied)
    print(f"copied {len(copied)} file(s), {size} bytes, to {copied[0].parent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
