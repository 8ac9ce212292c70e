"""Bookinfo's reviews service, as Istio's Java original (LibertyRestEndpoint.java) behaves.

    python reviews.py PORT [HOST]

The version is chosen by environment, as the original's image build args set it:
``ENABLE_RATINGS`` ("true": call ratings and show stars; v2 and v3) and ``STAR_COLOR`` ("black",
the default, for v2; "red" for v3). The ratings call goes to ``http://ratings:9080/ratings/<id>``
(``RATINGS_HOSTNAME``, ``SERVICES_DOMAIN``, ``RATINGS_SERVICE_PORT`` as the original) through
``HTTP_PROXY``, with the original's timeout: 10 s for black stars, 2.5 s for red. The pod name
shown on the product page is ``HOSTNAME``. Standard library only; exits 0 on SIGTERM.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RATINGS_ENABLED = os.environ.get("ENABLE_RATINGS", "").lower() == "true"  # Boolean.valueOf
STAR_COLOR = os.environ.get("STAR_COLOR") or "black"
_DOMAIN = "." + os.environ["SERVICES_DOMAIN"] if os.environ.get("SERVICES_DOMAIN") else ""
RATINGS_SERVICE = "http://{}{}:{}/ratings".format(
    os.environ.get("RATINGS_HOSTNAME", "ratings"), _DOMAIN, os.environ.get("RATINGS_SERVICE_PORT", "9080"))
RATINGS_TIMEOUT = 10.0 if STAR_COLOR == "black" else 2.5
UNAVAILABLE = "Ratings service is currently unavailable"

# The headers the original forwards to ratings (keep in sync with productpage and details).
PROPAGATE = (
    "x-request-id", "x-ot-span-context",
    "x-datadog-trace-id", "x-datadog-parent-id", "x-datadog-sampling-priority",
    "traceparent", "tracestate", "x-cloud-trace-context", "grpc-trace-bin",
    "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags",
    "sw8", "end-user", "user-agent", "cookie", "authorization", "jwt",
)

REVIEWS = (
    ("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
    ("Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when compared to other "
                  "plays by Shakespeare."),
)

_opener = urllib.request.build_opener()  # honours HTTP_PROXY / http_proxy from the environment


def fetch_ratings(product_id: int, incoming: dict[str, str]) -> dict[str, int] | None:
    """Reviewer -> stars from ratings, or None when ratings fails, answers non-200 or is too slow."""
    headers = {"Accept": "application/json"}
    headers.update((name, value) for name, value in incoming.items() if name in PROPAGATE)
    request = urllib.request.Request(f"{RATINGS_SERVICE}/{product_id}", headers=headers)
    try:
        with _opener.open(request, timeout=RATINGS_TIMEOUT) as response:
            body = json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError, HTTPError, timeouts, bad JSON
        print(f"Error: unable to contact {RATINGS_SERVICE} got {exc}", file=sys.stderr, flush=True)
        return None
    ratings = body.get("ratings") if isinstance(body, dict) else None
    return ratings if isinstance(ratings, dict) else {}


def reviews_response(product_id: int, incoming: dict[str, str]) -> dict[str, object]:
    ratings = fetch_ratings(product_id, incoming) if RATINGS_ENABLED else None
    reviews = []
    for reviewer, text in REVIEWS:
        review: dict[str, object] = {"reviewer": reviewer, "text": text}
        if RATINGS_ENABLED:
            stars = (ratings or {}).get(reviewer)
            review["rating"] = ({"stars": stars, "color": STAR_COLOR} if isinstance(stars, int)
                                else {"error": UNAVAILABLE})
        reviews.append(review)
    return {
        "id": str(product_id),  # the original writes the id as a string
        "podname": os.environ.get("HOSTNAME", ""),
        "clustername": os.environ.get("CLUSTER_NAME", "null"),  # Java prints an unset value as "null"
        "reviews": reviews,
    }


class ReviewsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A response is a head and a body written apart: without TCP_NODELAY the body waits for the
    # ack of the head, which a keep-alive peer (a sidecar pooling connections) delays up to 40 ms.
    disable_nagle_algorithm = True
    server_version = "reviews"

    def do_GET(self) -> None:
        self._drain_body()
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if parts == ["health"]:
            self._json(200, {"status": "Reviews is healthy"})
        elif len(parts) == 2 and parts[0] == "reviews" and parts[1].lstrip("-").isdigit():
            incoming = {name.lower(): value for name, value in self.headers.items()}
            self._json(200, reviews_response(int(parts[1]), incoming))
        else:
            self._json(404, {"error": "not found"})

    do_HEAD = do_GET

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
    server = ThreadingHTTPServer((host, int(argv[1])), ReviewsHandler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    version = f"ratings {STAR_COLOR}" if RATINGS_ENABLED else "no ratings"
    print(f"reviews ({version}) listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
