"""process_nft: the first asset of the pulled XCom as one CSV row token_id,name,image_url (the seeds'
PythonOperator `_processing_nft`)."""

import csv
import json
import sys
from pathlib import Path

assets = json.loads(sys.argv[1])
if not assets or not assets.get("assets"):
    raise SystemExit("assets is empty (is extract_nft's XCom there?)")
nft = assets["assets"][0]
out = Path(sys.argv[2])
out.parent.mkdir(parents=True, exist_ok=True)
with out.open("w", newline="", encoding="utf-8") as f:
    csv.writer(f).writerow([nft["token_id"], nft["name"], nft["image_url"]])
print(f"wrote {out}")
