"""httpbin for the local mesh: the endpoints Istio's tasks use, with go-httpbin's JSON shapes.

    python httpbin.py PORT [HOST]

Istio's httpbin.yaml runs mccutchen/go-httpbin v2.15.0, so responses follow it: pretty-printed
JSON with a trailing newline, headers as lists under Go's canonical names (``"Host":
["httpbin:8000"]``), ``origin`` the first X-Forwarded-For entry or the peer's ``ip:port``.
Endpoints: ``/get``, ``/post`` (and ``/put``, ``/patch``, ``/delete``), ``/anything[/...]`` (any
method), ``/headers``, ``/ip``, ``/user-agent``, ``/status/<code>`` (or ``200:3,503:1`` weighted
choices), ``/delay/<seconds>`` (capped at 10 s as the original httpbin; go-httpbin refuses longer
with 400), ``/uuid``. Binds HOST (default 127.0.0.1; the image passes 0.0.0.0). Standard library
only; exits 0 on SIGTERM; one access-log line per request on stdout (with the Host header, so
mirrored copies show ``host=httpbin-shadow:8000``).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import random
import re
import signal
import sys
import threading
import urllib.parse
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_DELAY = 10.0
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
BODY_METHODS = {"/post": "POST", "/put": "PUT", "/patch": "PATCH", "/delete": "DELETE"}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_REDIRECT = {301, 302, 303, 305, 307}
_shutting_down = threading.Event()


class BadRequest(Exception):
    pass


def canonical_header(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: "x-b3-traceid" -> "X-B3-Traceid"."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def parse_duration(text: str) -> float:
    """Seconds from go-httpbin's forms: a Go duration ("1.5s", "500ms", "1m30s") or a number of seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    if not text or _DURATION.sub("", text):
        raise BadRequest(f"invalid duration: {text!r}")
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(text))


def parse_status_choice(text: str) -> int:
    choices: list[tuple[int, float]] = []
    for pair in text.split(","):
        raw, _, weight = pair.partition(":")
        try:
            code, w = int(raw), float(weight) if weight else 1.0
        except ValueError:
            raise BadRequest(f"invalid status code: {raw!r}") from None
        if not 100 <= code <= 599:
            raise BadRequest(f"invalid status code: {code} not in range [100, 599]")
        choices.append((code, w))
    if len(choices) == 1:
        return choices[0][0]
    return random.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _values(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return dict(sorted(out.items()))


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    form: list[tuple[str, str]] = []
    files: list[tuple[str, str]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        target = files if part.get_filename() else form
        target.append((str(name), payload.decode("utf-8", "replace")))
    return _values(form), _values(files)


class HttpbinHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A response is a head and a body written apart: without TCP_NODELAY the body waits for the
    # ack of the head, which a keep-alive peer (a sidecar pooling connections) delays up to 40 ms.
    disable_nagle_algorithm = True
    server_version = "httpbin"

    # ---- routing ---------------------------------------------------------------------------------
    def dispatch(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, BadRequest):
            self._error(400, "invalid request body framing")
            self.close_connection = True
            return
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        method = self.command
        try:
            if method == "OPTIONS":  # go-httpbin's preflight middleware answers every OPTIONS
                headers = [("Access-Control-Allow-Methods", "GET, POST, HEAD, PUT, DELETE, PATCH, OPTIONS"),
                           ("Access-Control-Max-Age", "3600")]
                if requested := self.headers.get("Access-Control-Request-Headers"):
                    headers.append(("Access-Control-Allow-Headers", requested))
                self._send(200, b"", None, headers)
            elif path == "/":
                self._send(200, INDEX, "text/html; charset=utf-8")
            elif path == "/get":
                if self._allowed(("GET", "HEAD")):
                    self._json(200, self._echo(url))
            elif path in BODY_METHODS:
                if self._allowed((BODY_METHODS[path],)):
                    self._json(200, self._echo(url, body))
            elif path == "/anything" or path.startswith("/anything/"):
                self._json(200, self._echo(url) if method == "HEAD" else self._echo(url, body))
            elif path == "/headers":
                self._json(200, {"headers": self._headers()})
            elif path == "/ip":
                self._json(200, {"origin": self._origin()})
            elif path == "/user-agent":
                self._json(200, {"user-agent": self.headers.get("User-Agent", "")})
            elif path == "/uuid":
                self._json(200, {"uuid": str(uuid.uuid4())})
            elif path.startswith("/status/") and path.count("/") == 2:
                self._status(parse_status_choice(path[len("/status/"):]))
            elif path.startswith("/delay/") and path.count("/") == 2:
                self._delay(url, body, parse_duration(path[len("/delay/"):]))
            else:
                self._send(404, b"404 page not found\n", TEXT_TYPE)
        except BadRequest as exc:
            self._error(400, str(exc))

    def _allowed(self, methods: tuple[str, ...]) -> bool:
        if self.command in methods:
            return True
        self._send(405, b"Method Not Allowed\n", TEXT_TYPE, [("Allow", ", ".join(methods))])  # Go's ServeMux
        return False

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = dispatch

    def _delay(self, url: urllib.parse.SplitResult, body: bytes, seconds: float) -> None:
        if seconds < 0:
            raise BadRequest(f"invalid duration: {seconds}s shorter than 0s")
        seconds = min(seconds, MAX_DELAY)
        if _shutting_down.wait(seconds):  # SIGTERM: drop the connection rather than answer early
            self.close_connection = True
            return
        timing = f'initial_delay;dur={seconds * 1000:.2f};desc="initial delay"'
        self._json(200, self._echo(url, body), [("Server-Timing", timing)])

    def _status(self, code: int) -> None:
        headers: list[tuple[str, str]] = []
        body = b""
        content_type = TEXT_TYPE
        if code in _REDIRECT:
            headers.append(("Location", "/redirect/1"))
        elif code in (300, 308):
            headers.append(("Location", "/image/jpeg"))
        elif code == 401:
            headers.append(("WWW-Authenticate", 'Basic realm="Fake Realm"'))
        elif code == 407:
            headers.append(("Proxy-Authenticate", 'Basic realm="Fake Realm"'))
        elif code == 418:
            headers.append(("X-More-Info", "http://tools.ietf.org/html/rfc2324"))
            body = b"I'm a teapot!"
        self._send(code, body, content_type, headers)

    # ---- the request, as go-httpbin reports it -----------------------------------------------------
    def _headers(self) -> dict[str, list[str]]:
        headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers.setdefault(canonical_header(name), []).append(value)
        return dict(sorted(headers.items()))

    def _origin(self) -> str:
        for name in ("Fly-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP", "True-Client-IP"):
            if value := self.headers.get(name):
                return value
        if forwarded := self.headers.get("X-Forwarded-For"):
            return forwarded.split(",", 1)[0].strip()
        host, port = self.client_address[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def _url(self, url: urllib.parse.SplitResult) -> str:
        scheme = self.headers.get("X-Forwarded-Proto") or self.headers.get("X-Forwarded-Protocol") or \
            ("https" if self.headers.get("X-Forwarded-Ssl") == "on" else "http")
        host = url.netloc or self.headers.get("Host", "")
        return urllib.parse.urlunsplit((scheme, host, url.path, url.query, ""))

    def _echo(self, url: urllib.parse.SplitResult, body: bytes | None = None) -> dict[str, Any]:
        response: dict[str, Any] = {
            "args": _values(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
            "headers": self._headers(),
            "method": self.command,
            "origin": self._origin(),
            "url": self._url(url),
        }
        if body is None:
            return response
        response.update(data="", files={}, form={}, json=None)
        if not body:
            return response
        response["data"] = body.decode("utf-8", "replace")
        content_type = self.headers.get("Content-Type", "")
        media = content_type.split(";", 1)[0].strip()
        if media in ("text/html", "text/plain"):
            pass
        elif media == "application/x-www-form-urlencoded":
            response["form"] = _values(urllib.parse.parse_qsl(response["data"], keep_blank_values=True))
        elif media == "multipart/form-data":
            response["form"], response["files"] = _multipart(content_type, body)
        elif media == "application/json":
            try:
                response["json"] = json.loads(body)
            except ValueError as exc:
                raise BadRequest(f"error parsing request body: {exc}") from None
        else:
            encoded = base64.urlsafe_b64encode(body).decode()
            response["data"] = f"data:{media or 'application/octet-stream'};base64,{encoded}"
        return response

    # ---- I/O -------------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline(65537).split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537).strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise BadRequest("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _json(self, status: int, obj: object, headers: list[tuple[str, str]] = ()) -> None:
        body = (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()
        self._send(status, body, JSON_TYPE, list(headers))

    def _error(self, status: int, detail: str) -> None:
        self._json(status, {"status_code": status, "error": HTTPStatus(status).phrase, "detail": detail})

    def _send(self, status: int, body: bytes, content_type: str | None,
              headers: list[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
        self.send_header("Access-Control-Allow-Credentials", "true")
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        bodiless = status < 200 or status in (204, 304)
        if not bodiless:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and not bodiless:
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        host = self.headers.get("Host", "-") if getattr(self, "headers", None) else "-"
        print(f'"{self.requestline}" {code} host={host}', flush=True)


INDEX = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>httpbin</title></head>
<body><h1>httpbin</h1><p>HTTP request &amp; response service (pilotfish sample, go-httpbin's shapes).</p>
<ul><li>/get</li><li>/post, /put, /patch, /delete</li><li>/anything</li><li>/headers</li><li>/ip</li>
<li>/user-agent</li><li>/status/:code</li><li>/delay/:seconds</li><li>/uuid</li></ul></body></html>
"""


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(f"usage: {argv[0]} PORT [HOST]", file=sys.stderr)
        return 2
    host = argv[2] if len(argv) > 2 else "127.0.0.1"
    server = ThreadingHTTPServer((host, int(argv[1])), HttpbinHandler)

    def stop(*_: object) -> None:
        _shutting_down.set()  # cut /delay waits short
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"httpbin listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
