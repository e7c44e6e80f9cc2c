"""Simulate the four supermarkets' promotion/sales deliveries for one day.

Writes ``ROOT/incoming/supermarket_{n}/{date}/data-{k}.csv`` (1-3 files per supermarket, a few
thousand rows in total) and then, last, a ``_SUCCESS`` marker in each directory. The marker is a
small JSON delivery manifest: the files, the row count and how many rows of each kind of dirt were
injected, so a consumer can check its cleaning against it.

Each row is one till transaction of a single product, with the columns in ``COLUMNS``. Rows are
deterministic for a (date, supermarket): all randomness comes from a ``random.Random`` seeded with a
SHA-256 of ``"{date}/supermarket_{n}"``. Rerunning for the same date deletes the partition and
writes byte-identical files.

Dirt injected on purpose (see ``process.py`` for the cleaning rules):

* dropped by cleaning: blank lines, truncated rows, zero/negative quantities, blank or ``N/A``
  prices, out-of-range discounts or a discount without a promotion, and re-sent duplicates of
  earlier rows (same ``transaction_id``, always placed after the original);
* repaired by cleaning: spaces around fields, mixed-case categories, decimal-comma prices (``1,99``).

Usage: ``python3 etl/generate.py --date 2026-11-01 --root out``
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import random
import shutil
from pathlib import Path

from common import parse_args

SUPERMARKETS = (1, 2, 3, 4)
COLUMNS = ["transaction_id", "timestamp", "store_id", "product_id", "product_name", "category",
           "quantity", "unit_price", "promotion_id", "discount_pct", "customer_id"]
# (product_id, name, category, price in cents, popularity weight)
CATALOG = [
    ("P1001", "Whole Milk 1L", "dairy", 119, 9), ("P1002", "Greek Yoghurt 500g", "dairy", 249, 5),
    ("P1003", "Aged Gouda 400g", "dairy", 549, 3), ("P1004", "Salted Butter 250g", "dairy", 279, 4),
    ("P1101", "Sourdough Loaf", "bakery", 329, 6), ("P1102", "Croissants 4-pack", "bakery", 299, 4),
    ("P1103", "Whole Wheat Bread", "bakery", 219, 7), ("P1201", "Bananas 1kg", "produce", 169, 9),
    ("P1202", "Gala Apples 1kg", "produce", 249, 6), ("P1203", "Tomatoes 500g", "produce", 199, 6),
    ("P1204", "Avocado", "produce", 99, 5), ("P1205", "Baby Spinach 200g", "produce", 179, 3),
    ("P1301", "Sparkling Water 6x1.5L", "beverages", 349, 5), ("P1302", "Orange Juice 1L", "beverages", 289, 5),
    ("P1303", "Ground Coffee 500g", "beverages", 699, 4), ("P1304", "Cola 1.5L", "beverages", 199, 6),
    ("P1401", "Potato Chips 200g", "snacks", 229, 6), ("P1402", "Dark Chocolate 100g", "snacks", 189, 5),
    ("P1403", "Salted Peanuts 300g", "snacks", 259, 3), ("P1501", "Chicken Breast 500g", "meat", 649, 5),
    ("P1502", "Minced Beef 500g", "meat", 579, 4), ("P1503", "Salmon Fillet 300g", "meat", 799, 3),
    ("P1601", "Frozen Pizza", "frozen", 399, 5), ("P1602", "Vanilla Ice Cream 1L", "frozen", 449, 3),
    ("P1603", "Frozen Peas 1kg", "frozen", 229, 2), ("P1701", "Dish Soap 500ml", "household", 199, 3),
    ("P1702", "Toilet Paper 8-pack", "household", 549, 4), ("P1703", "Laundry Detergent 2L", "household", 1199, 2),
]
DISCOUNTS = (5, 10, 15, 20, 25, 30, 40, 50)


def rng_for(date: str, supermarket: int) -> random.Random:
    """The deterministic random generator of one supermarket's delivery for ``date``."""
    digest = hashlib.sha256(f"{date}/supermarket_{supermarket}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def clean_rows(rng: random.Random, date: str, n: int) -> list[list[str]]:
    """Valid transactions of the day, ordered by time, with transaction ids in that order."""
    day = dt.datetime.strptime(date, "%Y-%m-%d")
    stores = [f"S{n}-{k:02d}" for k in range(1, rng.randint(3, 6) + 1)]
    price_factor = 0.92 + 0.04 * n
    products = rng.sample(CATALOG, len(CATALOG))
    promos: dict[str, tuple[str, int]] = {}  # product_id -> (promotion_id, discount_pct)
    for k in range(rng.randint(3, 6)):
        promotion = (f"PROMO-{n}{rng.randint(100, 999)}{k}", rng.choice(DISCOUNTS))
        for product in products[4 * k:4 * k + rng.randint(1, 4)]:
            promos[product[0]] = promotion
    rows = []
    for _ in range(rng.randint(1800 + 300 * n, 2600 + 400 * n)):
        pid, name, category, base, _w = rng.choices(CATALOG, weights=[p[4] for p in CATALOG])[0]
        when = day + dt.timedelta(seconds=rng.randrange(7 * 3600, 22 * 3600))
        customer = f"C{n}{rng.randrange(100000):05d}" if rng.random() < 0.6 else ""
        promotion_id, discount = promos.get(pid, ("", 0))
        if not customer or rng.random() < 0.15:  # promotions need a loyalty card
            promotion_id, discount = "", 0
        rows.append([when.strftime("%Y-%m-%dT%H:%M:%S"), rng.choice(stores), pid, name, category,
                     str(rng.choices((1, 2, 3, 4, 6), weights=(60, 22, 9, 6, 3))[0]),
                     money(round(base * price_factor)), promotion_id, str(discount), customer])
    rows.sort(key=lambda r: r[0])
    return [[f"T{n}-{date.replace('-', '')}-{i:06d}", *r] for i, r in enumerate(rows, 1)]


def make_dirty(rng: random.Random, kind: str, row: list[str]) -> list[str]:
    """A copy of ``row`` with one defect that cleaning must drop it for."""
    row = list(row)
    if kind == "blank_line":
        return rng.choice([[], ["   "]])
    if kind == "malformed_row":
        return row[:rng.randint(2, len(COLUMNS) - 1)]
    if kind == "invalid_quantity":
        row[6] = rng.choice(["0", "-1", "-2", "-5"])
    elif kind == "invalid_price":
        row[7] = rng.choice(["", "N/A"])
    elif kind == "invalid_discount":
        row[8], row[9] = rng.choice([("PROMO-X", "150"), ("PROMO-X", "-10"), ("", "20")])
    return row


def cosmetic(rng: random.Random, row: list[str], counts: dict[str, int]) -> None:
    """Add repairable defects to a valid row in place, counting the rows affected."""
    if rng.random() < 0.01:
        row[7] = row[7].replace(".", ",")
        counts["decimal_comma_price"] += 1
    if rng.random() < 0.05:
        row[5] = rng.choice([row[5].upper(), row[5].title()])
        counts["category_case"] += 1
    if rng.random() < 0.03:
        for i in rng.sample(range(len(row)), rng.randint(1, 3)):
            row[i] = rng.choice([" ", "  ", "\t"]) + row[i] + rng.choice(["", " "])
        counts["whitespace"] += 1


def build_delivery(date: str, n: int) -> tuple[list[list[list[str]]], dict]:
    """The files (lists of rows, header excluded) of supermarket ``n`` and the delivery manifest."""
    rng = rng_for(date, n)
    rows = clean_rows(rng, date, n)
    repaired = {"whitespace": 0, "category_case": 0, "decimal_comma_price": 0}
    for row in rows:
        cosmetic(rng, row, repaired)
    records: list[tuple[str, list[str]]] = [("clean", r) for r in rows]
    injected = {}
    next_id = len(rows) + 1
    for kind in ("blank_line", "malformed_row", "invalid_quantity", "invalid_price", "invalid_discount"):
        injected[kind] = rng.randint(1, 6)
        for _ in range(injected[kind]):
            template = list(rng.choice(rows))
            template[0] = f"T{n}-{date.replace('-', '')}-{next_id:06d}"
            next_id += 1
            records.insert(rng.randint(0, len(records)), (kind, make_dirty(rng, kind, template)))
    injected["duplicate_transaction_id"] = rng.randint(3, 15)
    for _ in range(injected["duplicate_transaction_id"]):
        source = rng.choice([i for i, (kind, _r) in enumerate(records) if kind == "clean"])
        records.insert(rng.randint(source + 1, len(records)), ("duplicate", list(records[source][1])))
    cuts = sorted(rng.sample(range(1, len(records)), rng.randint(1, 3) - 1))
    bounds = [0, *cuts, len(records)]
    files = [[r for _k, r in records[a:b]] for a, b in zip(bounds, bounds[1:])]
    manifest = {"ds": date, "supermarket": n, "files": [f"data-{k}.csv" for k in range(1, len(files) + 1)],
                "rows": len(records), "valid_rows": len(rows), "injected_dirt": injected, "repairable": repaired}
    return files, manifest


def write_delivery(root: Path, date: str, n: int) -> Path:
    """(Re)write supermarket ``n``'s delivery for ``date``; ``_SUCCESS`` is written last."""
    target = root / "incoming" / f"supermarket_{n}" / date
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    files, manifest = build_delivery(date, n)
    for name, rows in zip(manifest["files"], files):
        with open(target / name, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(rows)
    (target / "_SUCCESS").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv, "the day to simulate")
    for n in SUPERMARKETS:
        target = write_delivery(args.root, args.date, n)
        print(f"supermarket {n}: delivered {len(list(target.glob('data-*.csv')))} file(s) to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
