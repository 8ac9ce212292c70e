"""Bookinfo's product page, as Istio's productpage.py (Flask) behaves, on the standard library.

    python productpage.py PORT [HOST]

Binds HOST (default 127.0.0.1; the image passes 0.0.0.0). ``GET /productpage`` calls
``http://details:9080/details/0`` (3 s timeout) and ``http://reviews:9080/reviews/0`` (3 s, tried
twice: Istio keeps this "bug" for its fault-injection task, so a 7 s ratings delay behind
reviews v2 shows the reviews error after 6 s) through ``HTTP_PROXY``, forwarding Istio's trace and
context headers and ``end-user`` for the signed-in user. Host names and ports come from
``DETAILS_HOSTNAME``, ``REVIEWS_HOSTNAME``, ``RATINGS_HOSTNAME``, ``*_SERVICE_PORT`` and
``SERVICES_DOMAIN`` as in the original. Standard library only; exits 0 on SIGTERM; one access-log
line per request on stdout.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import mimetypes
import os
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import page

STATIC = Path(__file__).resolve().parent / "static"
_DOMAIN = "." + os.environ["SERVICES_DOMAIN"] if os.environ.get("SERVICES_DOMAIN") else ""


def _service(name: str, children: list[dict[str, Any]]) -> dict[str, Any]:
    host = os.environ.get(f"{name.upper()}_HOSTNAME", name)
    port = os.environ.get(f"{name.upper()}_SERVICE_PORT", "9080")
    return {"name": f"http://{host}{_DOMAIN}:{port}", "endpoint": name, "children": children}


DETAILS = _service("details", [])
RATINGS = _service("ratings", [])
REVIEWS = _service("reviews", [RATINGS])
PRODUCTPAGE = {**DETAILS, "children": [DETAILS, REVIEWS]}  # as the original's service table

PRODUCTS = [{
    "id": 0,
    "title": "The Comedy of Errors",
    "descriptionHtml": '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: '
                       "The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his "
                       "shortest and one of his most farcical comedies, with a major part of the humour coming "
                       "from slapstick and mistaken identity, in addition to puns and word play.",
}]

# The headers the original forwards (keep in sync with details and reviews). b3 and x-b3-* are
# forwarded as received; the original re-injects them through OpenTelemetry with the same ids.
PROPAGATE = (
    "x-request-id", "x-ot-span-context",
    "x-datadog-trace-id", "x-datadog-parent-id", "x-datadog-sampling-priority",
    "traceparent", "tracestate", "x-cloud-trace-context", "grpc-trace-bin",
    "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags",
    "sw8", "user-agent", "cookie", "authorization", "jwt",
)

DETAILS_ERROR = "Sorry, product details are currently unavailable for this book."
REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
RATINGS_ERROR = "Sorry, product ratings are currently unavailable for this book."
TIMEOUT = 3.0

# ---- the signed-in user: a signed "session" cookie, as Flask's session ------------------------
SESSION_COOKIE = "session"
SECRET = b'_5#y2L"F4Q8z\n\xec]/'  # the original's hard-coded key: every replica reads every session


def _sign(payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(SECRET, payload, hashlib.sha256).digest()).decode().rstrip("=")


def session_cookie(user: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"user": user}).encode()).decode().rstrip("=")
    return f"{payload}.{_sign(payload.encode())}"


def session_user(cookie_header: str | None) -> str:
    """The signed-in user from the request's Cookie header, or "" (none, tampered, malformed)."""
    if not cookie_header:
        return ""
    try:
        morsel = SimpleCookie(cookie_header).get(SESSION_COOKIE)
    except CookieError:
        return ""
    if morsel is None or "." not in morsel.value:
        return ""
    payload, signature = morsel.value.rsplit(".", 1)
    if not hmac.compare_digest(signature, _sign(payload.encode())):
        return ""
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return ""
    user = data.get("user") if isinstance(data, dict) else None
    return user if isinstance(user, str) else ""


# ---- calls to the other services, through HTTP_PROXY -------------------------------------------
_opener = urllib.request.build_opener()  # honours HTTP_PROXY / http_proxy from the environment
_results: Counter[tuple[str, int]] = Counter()  # (destination_app, response_code) for /metrics
_results_lock = threading.Lock()


def forward_headers(incoming: dict[str, str], user: str) -> dict[str, str]:
    headers = {name: incoming[name] for name in PROPAGATE if name in incoming}
    if user:
        headers["end-user"] = user
    return headers


def _get(service: dict[str, Any], product_id: object, headers: dict[str, str]) -> tuple[int, Any]:
    """(status, parsed JSON) of one call; status 500 and None when it failed without a status."""
    url = f"{service['name']}/{service['endpoint']}/{product_id}"
    try:
        with _opener.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, None
    except (OSError, http.client.HTTPException, ValueError):  # refused, reset, timed out, bad JSON
        return 500, None


def _record(app: str, status: int) -> None:
    with _results_lock:
        _results[(app, status)] += 1


def product_details(product_id: object, headers: dict[str, str]) -> tuple[int, Any]:
    status, body = _get(DETAILS, product_id, headers)
    _record("details", status)
    return (200, body) if status == 200 else (status, {"error": DETAILS_ERROR})


def product_reviews(product_id: object, headers: dict[str, str]) -> tuple[int, Any]:
    for _ in range(2):  # "Do not remove. Bug introduced explicitly for illustration in fault injection task"
        status, body = _get(REVIEWS, product_id, headers)
        if status == 200:
            _record("reviews", 200)
            return 200, body
    _record("reviews", status)
    return status, {"error": REVIEWS_ERROR}


def product_ratings(product_id: object, headers: dict[str, str]) -> tuple[int, Any]:
    status, body = _get(RATINGS, product_id, headers)
    _record("ratings", status)
    return (200, body) if status == 200 else (status, {"error": RATINGS_ERROR})


def metrics_text() -> str:
    lines = ["# HELP request_result_total Results of requests", "# TYPE request_result_total counter"]
    with _results_lock:
        for (app, code), count in sorted(_results.items()):
            lines.append(f'request_result_total{{destination_app="{app}",response_code="{code}"}} {float(count)}')
    return "\n".join(lines) + "\n"


# ---- HTTP ---------------------------------------------------------------------------------------
class ProductPageHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A response is a head and a body written apart: without TCP_NODELAY the body waits for the
    # ack of the head, which a keep-alive peer (a sidecar pooling connections) delays up to 40 ms.
    disable_nagle_algorithm = True
    server_version = "productpage"

    def do_GET(self) -> None:
        self._read_body()
        path = urllib.parse.urlsplit(self.path).path
        parts = path.strip("/").split("/")
        if path in ("/", "/index.html"):
            self._send(200, page.index_page([PRODUCTPAGE, DETAILS, REVIEWS]), "text/html; charset=utf-8")
        elif path == "/health":
            self._send(200, "Product page is healthy", "text/html; charset=utf-8")
        elif path == "/productpage":
            self._product_page()
        elif path == "/logout":
            self._redirect(SESSION_COOKIE + "=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/")
        elif path == "/metrics":
            self._send(200, metrics_text(), "text/plain; version=0.0.4; charset=utf-8")
        elif path.startswith("/static/"):
            self._static(path[len("/static/"):])
        elif parts[:3] == ["api", "v1", "products"] and len(parts) <= 5:
            self._api(parts[3:])
        else:
            self._not_found()

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        body = self._read_body()
        if urllib.parse.urlsplit(self.path).path != "/login":
            self._send(405 if self._is_get_route() else 404, "Method Not Allowed", "text/plain; charset=utf-8")
            return
        values = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        values.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
        user = (values.get("username") or [""])[0]
        if not user:
            self._redirect(None)
            return
        self._redirect(f"{SESSION_COOKIE}={session_cookie(user)}; HttpOnly; Path=/")

    def _product_page(self) -> None:
        user = session_user(self.headers.get("Cookie"))
        headers = forward_headers(self._incoming(), user)
        details_status, details = product_details(0, headers)
        reviews_status, reviews = product_reviews(0, headers)
        html = page.product_page(PRODUCTS[0], details_status, details, reviews_status, reviews, user)
        self._send(200, html, "text/html; charset=utf-8")

    def _api(self, rest: list[str]) -> None:
        if not rest or rest == [""]:
            self._send_json(200, PRODUCTS)
            return
        headers = forward_headers(self._incoming(), session_user(self.headers.get("Cookie")))
        product_id = urllib.parse.quote(rest[0], safe="")
        if len(rest) == 1:
            self._send_json(*product_details(product_id, headers))
        elif rest[1] == "reviews":
            self._send_json(*product_reviews(product_id, headers))
        elif rest[1] == "ratings":
            self._send_json(*product_ratings(product_id, headers))
        else:
            self._not_found()

    def _static(self, name: str) -> None:
        target = (STATIC / name).resolve()
        if STATIC not in target.parents or not target.is_file():
            self._not_found()
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(200, target.read_bytes(), kind + ("; charset=utf-8" if kind.startswith("text/") else ""))

    def _is_get_route(self) -> bool:
        path = urllib.parse.urlsplit(self.path).path
        return path in ("/", "/index.html", "/health", "/productpage", "/logout", "/metrics") or \
            path.startswith(("/static/", "/api/v1/products"))

    def _incoming(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def _redirect(self, set_cookie: str | None) -> None:
        # Flask's redirect(request.referrer), kept on this site: the referring page's path, else /productpage
        referrer = urllib.parse.urlsplit(self.headers.get("Referer", ""))
        location = referrer.path if referrer.path.startswith("/") else "/productpage"
        if referrer.query and referrer.path.startswith("/"):
            location += "?" + referrer.query
        body = f'<a href="{location}">Redirecting to {location}</a>\n'.encode()
        self.send_response(302)
        self.send_header("Location", location)
        if set_cookie:
            self.send_header("Set-Cookie", set_cookie)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _not_found(self) -> None:
        self._send(404, "<h1>Not Found</h1>\n", "text/html; charset=utf-8")

    def _send_json(self, status: int, obj: object) -> None:
        self._send(status, json.dumps(obj), "application/json")

    def _send(self, status: int, body: str | bytes, content_type: str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        host = self.headers.get("Host", "-") if getattr(self, "headers", None) else "-"
        print(f'"{self.requestline}" {code} host={host}', flush=True)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(f"usage: {argv[0]} PORT [HOST]", file=sys.stderr)
        return 2
    host = argv[2] if len(argv) > 2 else "127.0.0.1"
    server = ThreadingHTTPServer((host, int(argv[1])), ProductPageHandler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"productpage listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
