"""HTTP/1.1 codecs over httptools, sans-I/O: bytes in via ``feed``, events out through a handler.

The server codec turns request bytes into ``on_request_head / on_request_body / on_request_end``
calls; the client codec turns response bytes into ``on_response_head / _body / _end``. Encoding
is a set of functions returning bytes. An HTTP/2 codec can implement the same handler calls.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Protocol

import httptools

from .errors import ProtocolError

#: Headers that describe one hop only; never forwarded (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te",
    b"upgrade", b"trailer", b"proxy-authenticate", b"proxy-authorization",
})

_STATUS_LINES = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus
}
CHUNKED_END = b"0\r\n\r\n"
_CRLF = b"\r\n"


class RequestHead:
    """A parsed request line and headers. Header names are lower-cased bytes."""

    __slots__ = ("method", "target", "path", "path_only", "authority", "headers", "version",
                 "keep_alive", "chunked", "content_length", "upgrade", "expect_continue", "_query")

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.path = b""
        self.path_only = b""
        self.authority = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.version = "1.1"
        self.keep_alive = True
        self.chunked = False
        self.content_length: int | None = None
        self.upgrade = False
        self.expect_continue = False
        self._query: dict[bytes, bytes] | None = None

    def query(self) -> dict[bytes, bytes]:
        """Query parameters (first value wins), parsed only when a route asks for them."""
        if self._query is None:
            q: dict[bytes, bytes] = {}
            i = self.path.find(b"?")
            if i != -1:
                for part in self.path[i + 1:].split(b"&"):
                    if part:
                        k, _, v = part.partition(b"=")
                        q.setdefault(k, v)
            self._query = q
        return self._query

    def set_path(self, path: bytes) -> None:
        self.path = path
        i = path.find(b"?")
        self.path_only = path if i == -1 else path[:i]
        self._query = None


class ServerHandler(Protocol):
    def on_request_head(self, head: RequestHead) -> None: ...
    def on_request_body(self, data: bytes) -> None: ...
    def on_request_end(self) -> None: ...


class _HeadersTooLarge(Exception):
    pass


class Http1ServerCodec:
    """Request parser. ``feed`` raises ProtocolError (400, 413, 431) for bad input."""

    __slots__ = ("handler", "parser", "head", "header_bytes", "max_header_bytes", "max_headers",
                 "url", "in_message")

    def __init__(self, handler: ServerHandler, max_header_bytes: int = 60 * 1024,
                 max_headers: int = 100) -> None:
        self.handler = handler
        self.parser = httptools.HttpRequestParser(self)
        self.head = RequestHead()
        self.header_bytes = 0
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.url = b""
        self.in_message = False

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # the head was delivered with upgrade=True; the handler refuses it
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, _HeadersTooLarge):
                raise ProtocolError("request headers too large", 431) from None
            if isinstance(cause, ProtocolError):
                raise cause from None
            raise
        except httptools.HttpParserError as exc:
            raise ProtocolError(f"malformed request: {exc}") from None

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.head = RequestHead()
        self.header_bytes = 0
        self.url = b""
        self.in_message = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)
        if self.header_bytes > self.max_header_bytes:
            raise _HeadersTooLarge()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        head = self.head
        if self.header_bytes > self.max_header_bytes or len(head.headers) >= self.max_headers:
            raise _HeadersTooLarge()
        head.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        head = self.head
        head.method = parser.get_method()
        head.version = parser.get_http_version()
        head.keep_alive = parser.should_keep_alive()
        head.upgrade = parser.should_upgrade()
        url = self.url
        head.target = url
        if url.startswith(b"/"):
            head.set_path(url)
        elif url[:7].lower() == b"http://" or url[:8].lower() == b"https://":
            rest = url[url.index(b"//") + 2:]
            i = rest.find(b"/")
            j = rest.find(b"?")
            cut = i if j == -1 else (j if i == -1 else min(i, j))
            if cut == -1:
                head.authority, path = rest, b"/"
            else:
                head.authority, path = rest[:cut], rest[cut:]
            if not path.startswith(b"/"):
                path = b"/" + path
            head.set_path(path)
        elif url == b"*" and head.method == b"OPTIONS":
            head.set_path(b"*")
        elif head.method == b"CONNECT":
            head.upgrade = True
            head.authority = url
        else:
            raise ProtocolError("invalid request target")
        for name, value in head.headers:
            if name == b"host":
                if not head.authority:
                    head.authority = value
            elif name == b"content-length":
                head.content_length = int(value)
            elif name == b"transfer-encoding":
                if value.lower().endswith(b"chunked"):
                    head.chunked = True
                    head.content_length = None
            elif name == b"expect" and value.lower() == b"100-continue":
                head.expect_continue = True
        self.handler.on_request_head(head)

    def on_body(self, body: bytes) -> None:
        self.handler.on_request_body(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.handler.on_request_end()


class ClientHandler(Protocol):
    def on_response_head(self, status: int, headers: list[tuple[bytes, bytes]], keep_alive: bool,
                         content_length: int | None, chunked: bool) -> None: ...
    def on_response_body(self, data: bytes) -> None: ...
    def on_response_end(self) -> None: ...


class Http1ClientCodec:
    """Response parser. Informational (1xx) responses are consumed here."""

    __slots__ = ("handler", "parser", "headers", "informational")

    def __init__(self, handler: ClientHandler) -> None:
        self.handler = handler
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.informational = False

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            raise
        except httptools.HttpParserError as exc:
            raise ProtocolError(f"malformed response: {exc}", 502) from None

    def on_message_begin(self) -> None:
        self.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.informational = True
            return
        self.informational = False
        content_length = None
        chunked = False
        for name, value in self.headers:
            if name == b"content-length":
                content_length = int(value)
            elif name == b"transfer-encoding" and value.lower().endswith(b"chunked"):
                chunked = True
        if chunked:
            content_length = None
        self.handler.on_response_head(status, self.headers, self.parser.should_keep_alive(),
                                      content_length, chunked)

    def on_body(self, body: bytes) -> None:
        self.handler.on_response_body(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        self.handler.on_response_end()


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} Unknown\r\n".encode()
    return line


def encode_headers(out: list[bytes], headers: list[tuple[bytes, bytes]]) -> None:
    for name, value in headers:
        out.append(name + b": " + value + _CRLF)
    out.append(_CRLF)


def encode_request_head(method: bytes, path: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    out = [method + b" " + path + b" HTTP/1.1\r\n"]
    encode_headers(out, headers)
    return b"".join(out)


def encode_response_head(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    out = [status_line(status)]
    encode_headers(out, headers)
    return b"".join(out)


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)
