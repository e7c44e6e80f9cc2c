"""store_nft: import the processed CSV into the `nfts` table (the seeds' `sqlite3 .import`)."""

import csv
import sqlite3
import sys

with open(sys.argv[1], newline="", encoding="utf-8") as f, sqlite3.connect(sys.argv[2]) as conn:
    rows = list(csv.reader(f))
    conn.executemany("INSERT OR REPLACE INTO nfts (token_id, name, image_url) VALUES (?, ?, ?)", rows)
print(f"stored {len(rows)} row(s)")
