"""extract_nft: GET the API's JSON and push it as the task's XCom (the seeds' SimpleHttpOperator with
response_filter=json.loads and log_response=True)."""

import json
import os
import sys
import urllib.request

with urllib.request.urlopen(sys.argv[1], timeout=30) as response:  # noqa: S310 - the DAG's own connection
    assets = json.loads(response.read().decode("utf-8"))
print(json.dumps(assets))
with open(os.environ["KUBEDAG_XCOM_PATH"], "w", encoding="utf-8") as xcom:
    json.dump(assets, xcom)
