"""Parse, clean and enrich one supermarket's raw sales files for a day.

Reads ``ROOT/raw/supermarket_{N}/{date}/data-*.csv`` (in file-number order, rows in file order) and
writes ``ROOT/processed/supermarket_{N}/{date}/sales.csv`` (the clean rows) and ``summary.json``
(records read, kept, dropped by reason, and repairs made).

Every record after each file's header counts as read. Cleaning rules, applied in this order; the
first rule a record breaks is its drop reason:

1. ``blank_line``: the record is empty or all its fields are blank (whitespace only).
2. ``malformed_row``: the record does not have exactly one field per header column, or its
   ``transaction_id`` is blank.
3. Every field is stripped of surrounding whitespace (a *repair*, counted as ``whitespace``).
4. ``invalid_quantity``: ``quantity`` is not a whole number of units >= 1 (``0``, ``-2``, ``""``...).
5. ``invalid_price``: ``unit_price`` is not ``digits[.cc]`` with at most 2 decimals, or is 0.
   A decimal comma is accepted and repaired (``1,99`` -> ``1.99``, counted as
   ``decimal_comma_price``); blanks and text such as ``N/A`` are dropped.
6. ``invalid_discount``: ``discount_pct`` (blank means 0) is not a number in [0, 100] with at most 2
   decimals, or is non-zero on a row without a ``promotion_id``.
7. ``duplicate_transaction_id``: a row whose ``transaction_id`` was already kept (deliveries re-send
   rows); the first valid occurrence wins.

Kept rows also get ``category`` lower-cased (counted as ``category_case`` when that changed it;
repairs are only counted for kept rows) and three amounts, in exact cents: ``gross_amount =
quantity * unit_price``, ``discount_amount = gross_amount * discount_pct / 100`` rounded half-up to
the cent (as a till does per line) and ``net_amount = gross_amount - discount_amount``.

Usage: ``python3 etl/process.py --date 2026-11-01 --supermarket 1 --root out``
"""

from __future__ import annotations

import csv
import json
import re
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from common import new_staging, parse_args, swap_in

COLUMNS = ["transaction_id", "timestamp", "store_id", "product_id", "product_name", "category",
           "quantity", "unit_price", "promotion_id", "discount_pct", "customer_id"]
OUTPUT_COLUMNS = [*COLUMNS, "gross_amount", "discount_amount", "net_amount"]
DROP_REASONS = ["blank_line", "malformed_row", "invalid_quantity", "invalid_price", "invalid_discount",
                "duplicate_transaction_id"]
REPAIRS = ["whitespace", "decimal_comma_price", "category_case"]
_QUANTITY = re.compile(r"\d+")
_PRICE = re.compile(r"(\d+)(?:[.,](\d{1,2}))?")
_DISCOUNT = re.compile(r"\d{1,3}(?:\.\d{1,2})?")


class Rejected(Exception):
    """A record breaks a cleaning rule; ``args[0]`` is the drop reason."""


def cents(value: int) -> str:
    """Format a number of cents as ``12.34``."""
    return f"{value // 100}.{value % 100:02d}"


def clean_record(record: list[str], seen: set[str]) -> tuple[dict[str, str], list[str]]:
    """Apply the cleaning rules to one record, given the ids kept so far.

    Returns the output row and the repairs made to it; raises :class:`Rejected` for a dropped record.
    """
    if not any(field.strip() for field in record):
        raise Rejected("blank_line")
    if len(record) != len(COLUMNS) or not record[0].strip():
        raise Rejected("malformed_row")
    row = dict(zip(COLUMNS, (field.strip() for field in record)))
    fixes = []
    if any(field != field.strip() for field in record):
        fixes.append("whitespace")
    if not _QUANTITY.fullmatch(row["quantity"]) or int(row["quantity"]) < 1:
        raise Rejected("invalid_quantity")
    quantity = int(row["quantity"])
    match = _PRICE.fullmatch(row["unit_price"])
    if not match:
        raise Rejected("invalid_price")
    price = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    if price <= 0:
        raise Rejected("invalid_price")
    if "," in row["unit_price"]:
        fixes.append("decimal_comma_price")
    discount_pct = row["discount_pct"] or "0"
    if not _DISCOUNT.fullmatch(discount_pct) or Decimal(discount_pct) > 100:
        raise Rejected("invalid_discount")
    if Decimal(discount_pct) and not row["promotion_id"]:
        raise Rejected("invalid_discount")
    if row["transaction_id"] in seen:
        raise Rejected("duplicate_transaction_id")
    if row["category"] != row["category"].lower():
        fixes.append("category_case")
    gross = quantity * price
    discount = int((gross * Decimal(discount_pct) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    row.update(category=row["category"].lower(), quantity=str(quantity), unit_price=cents(price),
               discount_pct=str(Decimal(discount_pct).normalize()), gross_amount=cents(gross),
               discount_amount=cents(discount), net_amount=cents(gross - discount))
    return row, fixes


def process_partition(root: Path, date: str, supermarket: int) -> dict:
    """Clean the raw partition, write ``sales.csv`` and ``summary.json``; return the summary.

    Raises:
        FileNotFoundError: the raw partition holds no data files.
        ValueError: a file's header does not have the expected columns.
    """
    source = root / "raw" / f"supermarket_{supermarket}" / date
    files = sorted(source.glob("data-*.csv"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not files:
        raise FileNotFoundError(f"no raw data for supermarket {supermarket} on {date}: {source}/data-*.csv")
    dropped = dict.fromkeys(DROP_REASONS, 0)
    repairs = dict.fromkeys(REPAIRS, 0)
    kept: list[dict[str, str]] = []
    seen: set[str] = set()
    read = 0
    for path in files:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = [name.strip().lower() for name in next(reader, [])]
            if header != COLUMNS:
                raise ValueError(f"{path}: unexpected header {header}, expected {COLUMNS}")
            for record in reader:
                read += 1
                try:
                    row, fixes = clean_record(record, seen)
                except Rejected as rejected:
                    dropped[rejected.args[0]] += 1
                    continue
                seen.add(row["transaction_id"])
                kept.append(row)
                for fix in fixes:
                    repairs[fix] += 1
    summary = {"ds": date, "supermarket": supermarket, "files": [p.name for p in files], "rows_read": read,
               "rows_kept": len(kept), "rows_dropped": read - len(kept), "dropped_by_reason": dropped,
               "repaired": repairs}
    target = root / "processed" / f"supermarket_{supermarket}" / date
    staging = new_staging(target)
    with open(staging / "sales.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=OUTPUT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    swap_in(staging, target)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv, "the day to process", supermarket=True)
    try:
        summary = process_partition(args.root, args.date, args.supermarket)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"supermarket {args.supermarket} {args.date}: read {summary['rows_read']}, kept {summary['rows_kept']}, "
          f"dropped {summary['dropped_by_reason']}, repaired {summary['repaired']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
