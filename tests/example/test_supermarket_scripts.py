"""The supermarket promotions example (examples/supermarket): its manifest and its ETL scripts.

The pipeline is run the way a local kubedag run would: every task's command from ``dag.yaml``, in
dependency order, rendered with ``ds`` and ``params.data_root`` and run with cwd = the manifest's
directory. Expected metrics are computed here, independently, from the generated (raw) CSV files
with this file's own reading of the cleaning rules documented in ``etl/process.py``.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import jinja2
import pytest
import yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "supermarket"
DATE = "2026-11-01"
OTHER_DATE = "2026-11-02"
SUPERMARKETS = (1, 2, 3, 4)
DROP_REASONS = {"blank_line", "malformed_row", "invalid_quantity", "invalid_price", "invalid_discount",
                "duplicate_transaction_id"}
CENT = Decimal("0.01")


def load_manifest() -> dict:
    return yaml.safe_load((EXAMPLE / "dag.yaml").read_text())


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, f"etl/{script}", *args], cwd=EXAMPLE, capture_output=True, text=True)


def run_dag(root: Path, ds: str) -> None:
    """Run every task of dag.yaml for ``ds`` in dependency order, as a local executor would."""
    tasks = {t["name"]: t for t in load_manifest()["spec"]["tasks"]}
    done: list[str] = []
    while len(done) < len(tasks):
        ready = [n for n, t in tasks.items() if n not in done and set(t.get("dependsOn", [])) <= set(done)]
        assert ready, f"dependency cycle among {set(tasks) - set(done)}"
        for name in ready:
            env = jinja2.Environment(undefined=jinja2.StrictUndefined)
            argv = [env.from_string(a).render(ds=ds, ds_nodash=ds.replace("-", ""), params={"data_root": str(root)})
                    for a in tasks[name]["command"]]
            assert argv[0] == "python3"
            proc = subprocess.run([sys.executable, *argv[1:]], cwd=EXAMPLE, capture_output=True, text=True)
            assert proc.returncode == 0, f"task {name} failed:\n{proc.stdout}\n{proc.stderr}"
            done.append(name)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every output file's bytes (the SQLite file is compared by rows, not bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "warehouse.db"}


def table_rows(root: Path) -> list[tuple]:
    with sqlite3.connect(root / "warehouse.db") as conn:
        return conn.execute("SELECT * FROM promotion_metrics ORDER BY ds, supermarket").fetchall()


def table_dicts(root: Path, ds: str) -> dict[int, dict]:
    with sqlite3.connect(root / "warehouse.db") as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM promotion_metrics WHERE ds = ?", (ds,)).fetchall()
    return {row["supermarket"]: dict(row) for row in rows}


# --- the test's own implementation of the documented cleaning rules and metric definitions -------

def rejection(record: list[str], header: list[str], seen: set[str]) -> str | None:
    if all(field.strip() == "" for field in record):
        return "blank_line"
    if len(record) != len(header) or record[0].strip() == "":
        return "malformed_row"
    row = {k: v.strip() for k, v in zip(header, record)}
    if not row["quantity"].isdigit() or int(row["quantity"]) <= 0:
        return "invalid_quantity"
    price = row["unit_price"].replace(",", ".")
    whole, _, frac = price.partition(".")
    if not whole.isdigit() or ("." in price and not (frac.isdigit() and len(frac) <= 2)) or Decimal(price) == 0:
        return "invalid_price"
    try:
        discount = Decimal(row["discount_pct"] or "0")
    except ArithmeticError:
        return "invalid_discount"
    if not 0 <= discount <= 100 or (discount != 0 and row["promotion_id"] == ""):
        return "invalid_discount"
    if row["transaction_id"] in seen:
        return "duplicate_transaction_id"
    return None


def clean_delivery(root: Path, ds: str, n: int) -> tuple[list[dict], Counter]:
    """The rows that must survive cleaning, and the drop counts, from the generated files."""
    kept, dropped, seen = [], Counter(), set()
    files = sorted((root / "incoming" / f"supermarket_{n}" / ds).glob("data-*.csv"))
    assert files
    for path in files:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            for record in reader:
                reason = rejection(record, header, seen)
                if reason:
                    dropped[reason] += 1
                    continue
                row = {k: v.strip() for k, v in zip(header, record)}
                seen.add(row["transaction_id"])
                kept.append(row)
    return kept, dropped


def expected_metrics(rows: list[dict]) -> dict:
    gross = discount = promoted_net = Decimal(0)
    per_promo: dict[str, Decimal] = {}
    units = promoted_units = promoted = 0
    for row in rows:
        qty = int(row["quantity"])
        line = qty * Decimal(row["unit_price"].replace(",", "."))
        off = (line * Decimal(row["discount_pct"] or "0") / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        gross, discount, units = gross + line, discount + off, units + qty
        if row["promotion_id"]:
            promoted, promoted_units, promoted_net = promoted + 1, promoted_units + qty, promoted_net + line - off
            per_promo[row["promotion_id"]] = per_promo.get(row["promotion_id"], Decimal(0)) + line - off
    net = gross - discount
    top = sorted(per_promo.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return {
        "transactions": len(rows), "customers": len({r["customer_id"] for r in rows} - {""}),
        "units_sold": units, "gross_revenue": gross, "discount_given": discount, "net_revenue": net,
        "promoted_transactions": promoted, "promoted_units": promoted_units, "promoted_net_revenue": promoted_net,
        "promoted_revenue_share": (promoted_net / net).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
        "discount_rate": (discount / gross).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
        "avg_transaction_value": (net / len(rows)).quantize(CENT, rounding=ROUND_HALF_UP),
        "promotions_used": len(per_promo),
        "top_promotions": [{"promotion_id": p, "net_revenue": f"{v:.2f}"} for p, v in top],
    }


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("supermarket")
    run_dag(root, DATE)
    return root


@pytest.fixture(scope="module")
def expected(pipeline) -> dict[int, dict]:
    return {n: expected_metrics(clean_delivery(pipeline, DATE, n)[0]) for n in SUPERMARKETS}


# --- tests ----------------------------------------------------------------------------------------

def test_manifest_describes_the_promotions_task_graph():
    manifest = load_manifest()
    assert manifest["apiVersion"] == "kubedag.io/v1alpha1" and manifest["kind"] == "DAG"
    assert manifest["metadata"]["name"] == "supermarket-promotions"
    spec = manifest["spec"]
    assert spec["schedule"] == "0 16 * * *" and spec["catchup"] is True
    deps = {t["name"]: t.get("dependsOn", []) for t in spec["tasks"]}
    assert deps == {
        "generate_deliveries": [],
        **{f"copy_to_raw_supermarket_{n}": ["generate_deliveries"] for n in SUPERMARKETS},
        **{f"process_supermarket_{n}": [f"copy_to_raw_supermarket_{n}"] for n in SUPERMARKETS},
        "create_metrics": [f"process_supermarket_{n}" for n in SUPERMARKETS],
    }
    create = next(t for t in spec["tasks"] if t["name"] == "create_metrics")
    assert create["triggerRule"] == "all_success"
    for task in spec["tasks"]:
        assert (EXAMPLE / task["command"][1]).is_file(), task["name"]
        assert "{{ ds }}" in task["command"] and "{{ params.data_root }}" in task["command"]


def test_deliveries_are_copied_to_raw_unchanged(pipeline):
    for n in SUPERMARKETS:
        incoming = pipeline / "incoming" / f"supermarket_{n}" / DATE
        raw = pipeline / "raw" / f"supermarket_{n}" / DATE
        assert (incoming / "_SUCCESS").is_file()
        names = sorted(p.name for p in incoming.glob("data-*.csv"))
        assert 1 <= len(names) <= 3
        assert sorted(p.name for p in raw.iterdir()) == names
        for name in names:
            assert (raw / name).read_bytes() == (incoming / name).read_bytes()
        rows = sum(1 for name in names for _ in open(incoming / name)) - len(names)
        assert 1000 <= rows <= 10000


def test_summary_dropped_counts_match_injected_dirt(pipeline):
    totals = Counter()
    for n in SUPERMARKETS:
        delivery = json.loads((pipeline / "incoming" / f"supermarket_{n}" / DATE / "_SUCCESS").read_text())
        summary = json.loads((pipeline / "processed" / f"supermarket_{n}" / DATE / "summary.json").read_text())
        kept, dropped = clean_delivery(pipeline, DATE, n)
        assert set(summary["dropped_by_reason"]) == DROP_REASONS
        assert summary["dropped_by_reason"] == delivery["injected_dirt"]
        assert {k: v for k, v in summary["dropped_by_reason"].items() if v} == dict(dropped)
        assert summary["rows_read"] == delivery["rows"] == len(kept) + sum(dropped.values())
        assert summary["rows_kept"] == delivery["valid_rows"] == len(kept)
        assert summary["rows_dropped"] == sum(dropped.values())
        assert summary["repaired"] == delivery["repairable"]
        totals.update(summary["dropped_by_reason"])
        totals.update(summary["repaired"])
    assert all(totals[kind] > 0 for kind in [*DROP_REASONS, "whitespace", "category_case", "decimal_comma_price"])


def test_processed_sales_are_clean(pipeline):
    for n in SUPERMARKETS:
        with open(pipeline / "processed" / f"supermarket_{n}" / DATE / "sales.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        kept, _ = clean_delivery(pipeline, DATE, n)
        assert [r["transaction_id"] for r in rows] == [r["transaction_id"] for r in kept]
        for row in rows:
            assert all(value == value.strip() for value in row.values())
            assert row["category"] == row["category"].lower()
            assert int(row["quantity"]) >= 1
            assert Decimal(row["unit_price"]) > 0 and len(row["unit_price"].split(".")[1]) == 2
            assert Decimal(row["net_amount"]) == Decimal(row["gross_amount"]) - Decimal(row["discount_amount"])


def test_metrics_table_matches_independent_computation(pipeline, expected):
    table = table_dicts(pipeline, DATE)
    assert sorted(table) == list(SUPERMARKETS)
    for n in SUPERMARKETS:
        row, want = table[n], expected[n]
        assert row["ds"] == DATE
        for name, value in want.items():
            if name == "top_promotions":
                assert json.loads(row[name]) == value
            elif isinstance(value, Decimal):
                assert Decimal(str(row[name])) == value, (n, name)
            else:
                assert row[name] == value, (n, name)
        assert 0 < want["promoted_revenue_share"] < 1 and want["promotions_used"] >= 1


def test_report_csv_matches_independent_computation(pipeline, expected):
    with open(pipeline / "reports" / f"promotion_metrics_{DATE}.csv", newline="") as fh:
        report = list(csv.DictReader(fh))
    assert [r["supermarket"] for r in report] == [str(n) for n in SUPERMARKETS]
    for row in report:
        want = expected[int(row["supermarket"])]
        assert row["ds"] == DATE
        for name in ("gross_revenue", "discount_given", "net_revenue", "promoted_net_revenue",
                     "avg_transaction_value"):
            assert row[name] == f"{want[name]:.2f}", name
        for name in ("promoted_revenue_share", "discount_rate"):
            assert row[name] == f"{want[name]:.4f}", name
        for name in ("transactions", "customers", "units_sold", "promoted_transactions", "promoted_units",
                     "promotions_used"):
            assert row[name] == str(want[name]), name
        assert json.loads(row["top_promotions"]) == want["top_promotions"]


def test_rerunning_a_date_gives_identical_outputs(pipeline, tmp_path):
    run_dag(tmp_path, DATE)
    first_files, first_rows = snapshot(tmp_path), table_rows(tmp_path)
    run_dag(tmp_path, DATE)
    assert snapshot(tmp_path) == first_files
    assert table_rows(tmp_path) == first_rows and len(first_rows) == 4
    # a different data root for the same date gets byte-identical data and report
    assert first_files == snapshot(pipeline)


def test_two_dates_write_separate_partitions_that_both_remain(pipeline, tmp_path):
    run_dag(tmp_path, DATE)
    first_rows = table_rows(tmp_path)
    run_dag(tmp_path, OTHER_DATE)
    rows = table_rows(tmp_path)
    assert [(r[0], r[1]) for r in rows] == [(ds, n) for ds in (DATE, OTHER_DATE) for n in SUPERMARKETS]
    assert rows[:4] == first_rows
    assert rows[:4] != [(DATE, *r[1:]) for r in rows[4:]]  # another day, other sales
    for ds in (DATE, OTHER_DATE):
        assert (tmp_path / "reports" / f"promotion_metrics_{ds}.csv").is_file()
        for n in SUPERMARKETS:
            assert (tmp_path / "processed" / f"supermarket_{n}" / ds / "sales.csv").is_file()
    run_dag(tmp_path, DATE)  # re-running the first date leaves the second one alone
    assert table_rows(tmp_path) == rows


def test_copy_to_raw_fails_clearly_without_success_marker(tmp_path):
    assert run_script("generate.py", "--date", DATE, "--root", str(tmp_path)).returncode == 0
    (tmp_path / "incoming" / "supermarket_2" / DATE / "_SUCCESS").unlink()
    proc = run_script("copy_to_raw.py", "--date", DATE, "--supermarket", "2", "--root", str(tmp_path))
    assert proc.returncode == 1
    assert "supermarket 2" in proc.stderr and "not complete" in proc.stderr and "_SUCCESS" in proc.stderr
    assert not (tmp_path / "raw" / "supermarket_2" / DATE).exists()
    proc = run_script("copy_to_raw.py", "--date", OTHER_DATE, "--supermarket", "1", "--root", str(tmp_path))
    assert proc.returncode == 1 and "_SUCCESS" in proc.stderr


def test_copy_to_raw_replaces_an_earlier_copy(tmp_path):
    assert run_script("generate.py", "--date", DATE, "--root", str(tmp_path)).returncode == 0
    raw = tmp_path / "raw" / "supermarket_1" / DATE
    raw.mkdir(parents=True)
    (raw / "data-9.csv").write_text("stale\n")
    proc = run_script("copy_to_raw.py", "--date", DATE, "--supermarket", "1", "--root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    incoming = tmp_path / "incoming" / "supermarket_1" / DATE
    assert sorted(p.name for p in raw.iterdir()) == sorted(p.name for p in incoming.glob("data-*.csv"))


def test_create_metrics_fails_without_all_processed_partitions(tmp_path):
    assert run_script("generate.py", "--date", DATE, "--root", str(tmp_path)).returncode == 0
    for n in (1, 2, 3):
        for script in ("copy_to_raw.py", "process.py"):
            assert run_script(script, "--date", DATE, "--supermarket", str(n), "--root", str(tmp_path)).returncode == 0
    proc = run_script("create_metrics.py", "--date", DATE, "--root", str(tmp_path))
    assert proc.returncode == 1 and "supermarket 4" in proc.stderr
    assert not (tmp_path / "warehouse.db").exists()
    assert not (tmp_path / "reports").exists()
