"""A local stand-in for the OpenSea API the seeds call: GET /api/v1/assets answers one asset as JSON.
`python3 etl/fake_api.py [PORT]` (default 8000, on 127.0.0.1)."""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

ASSETS = {"assets": [{"token_id": "1", "name": "Doodle #1", "image_url": "https://example.invalid/1.png"}]}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        ok = self.path.startswith("/api/v1/assets")
        body = json.dumps(ASSETS if ok else {"error": "not found"}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8000), Handler).serve_forever()
