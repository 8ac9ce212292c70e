"""Istio's helloworld sample app on the standard library.

    python app.py PORT [HOST]

``GET /hello`` answers ``Hello version: <SERVICE_VERSION>, instance: <HOSTNAME>\\n``; ``/health``
answers ``Helloworld is healthy``. Istio's app also burns CPU on each request (for its
autoscaling demo); this one does not. Binds HOST (default 127.0.0.1; the image passes 0.0.0.0).
Standard library only; exits 0 on SIGTERM; one access-log line per request on stdout.
"""

from __future__ import annotations

import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HelloHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A response is a head and a body written apart: without TCP_NODELAY the body waits for the
    # ack of the head, which a keep-alive peer (a sidecar pooling connections) delays up to 40 ms.
    disable_nagle_algorithm = True
    server_version = "helloworld"

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        if path == "/hello":
            version = os.environ.get("SERVICE_VERSION")
            self._send(200, f"Hello version: {version}, instance: {os.environ.get('HOSTNAME')}\n")
        elif path == "/health":
            self._send(200, "Helloworld is healthy")
        else:
            self._send(404, "Not Found\n")

    do_HEAD = do_GET

    def _send(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
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
    server = ThreadingHTTPServer((host, int(argv[1])), HelloHandler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"helloworld {os.environ.get('SERVICE_VERSION')} listening on http://{host}:{server.server_address[1]}",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
