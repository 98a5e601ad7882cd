"""A webhook receiver for the tests: verifies every delivery with the
Standard Webhooks reference implementation (PyPI `standardwebhooks`,
pinned in scripts/contract-requirements.txt) and records it.

Usage: webhook-receiver.py SECRET DIR [FAIL_FIRST [PORT]]
Listens on PORT (0: any free one) and prints its port on the first line. Each delivery is written to DIR as
<n>.json: {"headers": {...}, "body": ..., "verified": true|false, "answered": status}.
The first FAIL_FIRST deliveries are answered 500, the rest 204 (or 401 when
the signature does not verify).
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

secret, directory = sys.argv[1], sys.argv[2]
fail_first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
webhook = Webhook(secret)
lock = threading.Lock()
count = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            webhook.verify(body, headers)
            verified = True
        except Exception:
            verified = False
        with lock:
            count += 1
            n = count
        status = 500 if n <= fail_first else (204 if verified else 401)
        record = {"headers": headers, "body": json.loads(body), "verified": verified, "answered": status}
        path = os.path.join(directory, f"{n:06d}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer.allow_reuse_address = True
server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
