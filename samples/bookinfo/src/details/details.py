"""Bookinfo's details service: the book's facts as JSON, as Istio's details.rb serves them.

    python details.py PORT [HOST]

Binds HOST (default 127.0.0.1; the image passes 0.0.0.0) and serves ``GET /details/<id>`` and
``/health``. Standard library only; exits 0 on SIGTERM. One access-log line per request on stdout.
"""

from __future__ import annotations

import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOOK = {  # details.rb's get_book_details (ENABLE_EXTERNAL_BOOK_SERVICE is not supported here)
    "author": "William Shakespeare",
    "year": 1595,
    "type": "paperback",
    "pages": 200,
    "publisher": "PublisherA",
    "language": "English",
    "ISBN-10": "1234567890",
    "ISBN-13": "123-1234567890",
}


def book_details(product_id: int) -> dict[str, object]:
    return {"id": product_id, **BOOK}


class DetailsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A response is a head and a body written apart: without TCP_NODELAY the body waits for the
    # ack of the head, which a keep-alive peer (a sidecar pooling connections) delays up to 40 ms.
    disable_nagle_algorithm = True
    server_version = "details"

    def do_GET(self) -> None:
        self._drain_body()
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._json(200, {"status": "Details is healthy"})
        elif path == "/details" or path.startswith("/details/"):  # WEBrick's mount: the prefix
            try:
                product_id = int(path.rstrip("/").split("/")[-1])
            except ValueError:
                self._json(400, {"error": "please provide numeric product id"})
                return
            self._json(200, book_details(product_id))
        else:
            self._json(404, {"error": "not found"})

    do_HEAD = do_GET

    def do_POST(self) -> None:
        self._drain_body()
        self._json(405, {"error": "method not allowed"})

    def _drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _json(self, status: int, obj: object) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        host = self.headers.get("Host", "-") if getattr(self, "headers", None) else "-"
        print(f'"{self.requestline}" {code} host={host}', flush=True)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(f"usage: {argv[0]} PORT [HOST]", file=sys.stderr)
        return 2
    host = argv[2] if len(argv) > 2 else "127.0.0.1"
    server = ThreadingHTTPServer((host, int(argv[1])), DetailsHandler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"details listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
