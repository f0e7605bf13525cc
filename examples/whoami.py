"""A tiny HTTP service for the `process` resource example: it answers every GET with the
node and pid that serve it, so a client of `/svc/web/` sees a failover happen.

    python3 examples/whoami.py PORT
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WhoAmI(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        doc = {"node": os.environ.get("ROSTER_NODE"), "pid": os.getpid(), "method": self.command,
               "path": self.path, "body_bytes": len(body)}
        out = json.dumps(doc).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, fmt: str, *args: object) -> None:  # one line per request, to stdout
        print(f"{self.address_string()} {fmt % args}", flush=True)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    ThreadingHTTPServer.request_queue_size = 128  # the default 5 drops SYNs under a little load
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", port), WhoAmI)
    print(f"whoami on 127.0.0.1:{port} pid {os.getpid()}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
