"""Compute the day's promotion metrics per supermarket and load them into the warehouse.

Reads ``ROOT/processed/supermarket_{N}/{date}/sales.csv`` for every supermarket (all must exist) and
computes, per (ds, supermarket), from the clean rows (one row = one transaction of one product):

* ``transactions``: number of rows; ``customers``: distinct non-blank ``customer_id`` (loyalty cards)
* ``units_sold``: sum of ``quantity``
* ``gross_revenue``: sum of ``gross_amount`` (quantity * unit_price)
* ``discount_given``: sum of ``discount_amount`` (each line's discount rounded half-up to the cent)
* ``net_revenue``: ``gross_revenue - discount_given``
* ``promoted_transactions`` / ``promoted_units`` / ``promoted_net_revenue``: the same over rows with
  a ``promotion_id``
* ``promoted_revenue_share``: ``promoted_net_revenue / net_revenue`` (0 when there is no revenue)
* ``discount_rate``: ``discount_given / gross_revenue`` (0 when there is no revenue)
* ``avg_transaction_value``: ``net_revenue / transactions`` (0 when there are none)
* ``promotions_used``: distinct ``promotion_id`` values
* ``top_promotions``: JSON list of the 3 promotions with the highest net revenue (ties: lower id
  first), as ``[{"promotion_id": "PROMO-11873", "net_revenue": "204.54"}, ...]`` (amounts as strings)

Money is summed exactly in cents; averages are rounded half-up to 2 decimals and ratios half-up to 4,
so results are deterministic. The rows go to the SQLite table ``promotion_metrics`` in
``ROOT/warehouse.db`` (primary key ``(ds, supermarket)``): the ``ds`` partition is deleted and
re-inserted in one transaction, so reruns are idempotent and other days are untouched. A CSV report
with the same columns is written to ``ROOT/reports/promotion_metrics_{date}.csv``.

Usage: ``python3 etl/create_metrics.py --date 2026-11-01 --root out``
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from common import parse_args

SUPERMARKETS = (1, 2, 3, 4)
MONEY = ["gross_revenue", "discount_given", "net_revenue", "promoted_net_revenue", "avg_transaction_value"]
COLUMNS = ["ds", "supermarket", "transactions", "customers", "units_sold", "gross_revenue", "discount_given",
           "net_revenue", "promoted_transactions", "promoted_units", "promoted_net_revenue",
           "promoted_revenue_share", "discount_rate", "avg_transaction_value", "promotions_used",
           "top_promotions"]
SQL_TYPES = {"ds": "TEXT NOT NULL", "supermarket": "INTEGER NOT NULL", "top_promotions": "TEXT NOT NULL",
             "promoted_revenue_share": "REAL NOT NULL", "discount_rate": "REAL NOT NULL",
             **{name: "REAL NOT NULL" for name in MONEY}}
TOP_N = 3


def to_cents(text: str) -> int:
    """``"12.34"`` -> ``1234``, exactly."""
    units, _, frac = text.partition(".")
    return int(units) * 100 + int(frac.ljust(2, "0")[:2])


def money(value: Decimal | int) -> Decimal:
    """A number of cents as a Decimal amount with 2 places (``1234`` -> ``12.34``)."""
    return (Decimal(value) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def ratio(numerator: int, denominator: int) -> Decimal:
    if not denominator:
        return Decimal("0.0000")
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def compute_metrics(date: str, supermarket: int, rows: list[dict[str, str]]) -> dict[str, object]:
    """The metrics of one supermarket-day from its clean rows (values as ``Decimal``/``int``/``str``)."""
    gross = sum(to_cents(r["gross_amount"]) for r in rows)
    discount = sum(to_cents(r["discount_amount"]) for r in rows)
    net = gross - discount
    promoted = [r for r in rows if r["promotion_id"]]
    promoted_net = sum(to_cents(r["net_amount"]) for r in promoted)
    per_promotion: dict[str, int] = {}
    for r in promoted:
        per_promotion[r["promotion_id"]] = per_promotion.get(r["promotion_id"], 0) + to_cents(r["net_amount"])
    top = sorted(per_promotion.items(), key=lambda item: (-item[1], item[0]))[:TOP_N]
    return {
        "ds": date, "supermarket": supermarket, "transactions": len(rows),
        "customers": len({r["customer_id"] for r in rows if r["customer_id"]}),
        "units_sold": sum(int(r["quantity"]) for r in rows),
        "gross_revenue": money(gross), "discount_given": money(discount), "net_revenue": money(net),
        "promoted_transactions": len(promoted), "promoted_units": sum(int(r["quantity"]) for r in promoted),
        "promoted_net_revenue": money(promoted_net), "promoted_revenue_share": ratio(promoted_net, net),
        "discount_rate": ratio(discount, gross),
        "avg_transaction_value": money(Decimal(net) / len(rows) if rows else 0),
        "promotions_used": len(per_promotion),
        "top_promotions": json.dumps([{"promotion_id": p, "net_revenue": str(money(c))} for p, c in top],
                                     separators=(",", ":")),
    }


def load_partition(root: Path, date: str, supermarket: int) -> list[dict[str, str]]:
    path = root / "processed" / f"supermarket_{supermarket}" / date / "sales.csv"
    if not path.is_file():
        raise FileNotFoundError(f"supermarket {supermarket} has no processed data for {date}: {path} does not exist")
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_warehouse(db_path: Path, date: str, metrics: list[dict[str, object]]) -> None:
    """Replace the ``ds`` partition of ``promotion_metrics`` in one transaction."""
    columns = ", ".join(f"{name} {SQL_TYPES.get(name, 'INTEGER NOT NULL')}" for name in COLUMNS)
    conn = sqlite3.connect(db_path, timeout=60, isolation_level=None)
    try:
        conn.execute(f"CREATE TABLE IF NOT EXISTS promotion_metrics ({columns}, PRIMARY KEY (ds, supermarket))")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM promotion_metrics WHERE ds = ?", (date,))
            conn.executemany(
                f"INSERT INTO promotion_metrics ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                [[float(m[c]) if isinstance(m[c], Decimal) else m[c] for c in COLUMNS] for m in metrics],
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def write_report(path: Path, metrics: list[dict[str, object]]) -> None:
    """Write the CSV report atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    with open(staging, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: str(m[c]) for c in COLUMNS} for m in metrics)
    os.replace(staging, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv, "the day to report on")
    try:
        metrics = [compute_metrics(args.date, n, load_partition(args.root, args.date, n)) for n in SUPERMARKETS]
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.root.mkdir(parents=True, exist_ok=True)
    write_warehouse(args.root / "warehouse.db", args.date, metrics)
    report = args.root / "reports" / f"promotion_metrics_{args.date}.csv"
    write_report(report, metrics)
    for m in metrics:
        print(f"supermarket {m['supermarket']}: {m['transactions']} transactions, net revenue {m['net_revenue']}, "
              f"promoted share {m['promoted_revenue_share']}")
    print(f"wrote {len(metrics)} rows to {args.root / 'warehouse.db'} (promotion_metrics) and {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
