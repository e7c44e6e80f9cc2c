"""creating_table: the `nfts` table in a SQLite file (the seeds' PostgresOperator `CREATE TABLE IF NOT EXISTS`)."""

import sqlite3
import sys
from pathlib import Path

db = Path(sys.argv[1])
db.parent.mkdir(parents=True, exist_ok=True)
with sqlite3.connect(db) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS nfts (token_id TEXT PRIMARY KEY, name TEXT NOT NULL, image_url TEXT NOT NULL)")
print(f"table nfts ready in {db}")
