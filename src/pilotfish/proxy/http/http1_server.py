"""The HTTP/1.1 server codec over httptools, sans-I/O: bytes in via ``feed``, events out through a handler.

The server codec turns request bytes into ``on_request_head / on_request_body / on_request_end``
calls; the client codec turns response bytes into ``on_response_head / _body / _end``. Encoding
is a set of functions returning bytes. An HTTP/2 codec can implement the same handler calls.

Both codecs consume the connection-level headers (RFC 9110 §7.6.1: ``connection`` and the names
it lists, ``keep-alive``, ``transfer-encoding``, ``te``, ``upgrade``, ...) and report their meaning
as fields (keep-alive, framing, upgrade), so the header lists handed on hold end-to-end headers
only, as an HTTP/2 codec's would (``te: trailers`` is kept, as Envoy keeps it). Header names are
lower-cased bytes. Framing follows RFC 9112 and Envoy's codec: llhttp's strict mode refuses bad
lengths, chunk sizes, obsolete folding and bare LF; the codecs add what llhttp lets through
(a Transfer-Encoding other than exactly ``chunked``, Host and fragment rules, bytes after a
response).

This is the request path: every callback runs once per header or message, so state lives in
few attributes and per-message objects are slotted.
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol

import httptools

from ..common.errors import ProtocolError
from .framing import OWS, TRAILERS, VALID_HOSTS, check_host, list_tokens, request_chunked
from .head import ENVOY_CONTROL_HEADERS, HOP_BY_HOP, RequestHead

# Request headers on_header looks at: hop-by-hop ones, plus those whose meaning becomes a field.
_REQ_SPECIAL = HOP_BY_HOP | {b"host", b"content-length", b"expect", b"x-request-id", b"x-forwarded-for",
                             b"x-forwarded-proto"}
# End-to-end request headers a proxy acts on, kept in the list and also recorded on the head.
_REQ_RECORDED = {b"x-request-id": "request_id", b"x-forwarded-for": "forwarded_for",
                 b"x-forwarded-proto": "forwarded_proto"}
_REQ_SPECIAL = _REQ_SPECIAL | ENVOY_CONTROL_HEADERS

#: What ``parser.feed_data`` raises for bad input (see the codecs' ``error``).
HttpParserError = httptools.HttpParserError
HttpParserUpgrade = httptools.HttpParserUpgrade
PARSE_ERRORS = (httptools.HttpParserError, httptools.HttpParserUpgrade)




class RequestSink(Protocol):
    """Where one request's body goes (a stream): a request with one (a Content-Length, chunked)
    ends with ``on_request_end``; one without ends with its head (the head says so)."""

    def on_body(self, data: bytes) -> None: ...
    def on_request_end(self) -> None: ...


class ServerHandler(Protocol):
    def on_request_head(self, head: RequestHead) -> RequestSink:
        """A request head arrived; returns what receives its body and end."""
        ...


class _HeadersTooLarge(Exception):
    pass


class _IgnoredEnd:
    """Stands in for a stream whose end the parser reports too early (a declined h2c upgrade)."""

    def on_body(self, data: bytes) -> None:
        pass

    def on_request_end(self) -> None:
        pass


_IGNORED = _IgnoredEnd()


class Http1ServerCodec:
    """Request parser. ``feed`` raises ProtocolError (400, 413, 431) for bad input."""

    __slots__ = ("handler", "parser", "head", "header_bytes", "max_header_bytes", "max_headers",
                 "url", "host", "header_count", "stream", "h2c", "body_left", "h2c_stream",
                 "on_message_begin", "begins")

    def __init__(self, handler: ServerHandler, max_header_bytes: int = 60 * 1024,
                 max_headers: int = 100, count_begins: bool = False) -> None:
        self.handler = handler
        if count_begins:  # the parser calls it at a message's first byte: a C counter, no frame
            self.begins = itertools.count()
            self.on_message_begin = self.begins.__next__
        self.parser = httptools.HttpRequestParser(self)
        self.head = RequestHead()  # the next request's, filled by the callbacks
        self.stream: RequestSink | None = None  # receiving the current request's body
        self.header_bytes = 0
        self.header_count = 0
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.url = b""
        self.host: bytes | None = None
        self.h2c = False  # the last head asked for an h2c upgrade, which is declined (see h2c_resume)
        self.body_left = 0  # body bytes still to read by hand after a declined h2c upgrade
        self.h2c_stream: RequestSink | None = None  # the stream they go to

    def feed(self, data: bytes) -> None:
        if self.body_left:
            data = self.feed_body(data)
            if not data:
                return
        try:
            self.parser.feed_data(data)
        except PARSE_ERRORS as exc:
            error = self.error(exc)
            if error is not None:
                raise error from None
            if self.h2c:
                rest = self.h2c_resume(data, exc.args[0])
                if rest:
                    self.feed(rest)

    def begun(self) -> int:
        """How many messages the parser has begun (with ``count_begins``): more than the heads
        delivered means a head is being read (blank lines before a request begin nothing)."""
        return self.begins.__reduce__()[1][0]  # type: ignore[no-any-return]

    @staticmethod
    def error(exc: Exception) -> ProtocolError | None:
        """What a parser exception means: a ProtocolError to answer, or None (an upgrade request,
        delivered with upgrade=True; the bytes after ``exc.args[0]`` are tunnel payload, see
        tunnel.py). Other errors are re-raised.

        Hot callers call ``parser.feed_data`` themselves and pass what it raised through here."""
        if isinstance(exc, httptools.HttpParserUpgrade):
            return None
        if isinstance(exc, httptools.HttpParserCallbackError):
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, _HeadersTooLarge):
                return ProtocolError("request headers too large", 431)
            if isinstance(cause, ProtocolError):
                return cause
            if isinstance(cause, ValueError):  # a Content-Length that is not a number
                return ProtocolError("malformed request: invalid content-length")
            raise exc
        return ProtocolError(f"malformed request: {exc}")

    # httptools callbacks (no on_message_begin: the state for the next message is reset when
    # a head is complete, saving a callback per request)
    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)
        if self.header_bytes > self.max_header_bytes:
            raise _HeadersTooLarge()

    def on_header(self, name: bytes, value: bytes) -> None:
        n = self.header_bytes = self.header_bytes + len(name) + len(value) + 4
        count = self.header_count = self.header_count + 1
        if n > self.max_header_bytes or count > self.max_headers:
            raise _HeadersTooLarge()
        name = name.lower()
        if name in _REQ_SPECIAL:
            if name == b"host":
                # RFC 9112 §3.2: more than one Host, or an invalid one, is a 400.
                if self.host is not None:
                    raise ProtocolError("malformed request: multiple host headers")
                if value not in VALID_HOSTS:  # a set lookup, not a scan, for hosts seen before
                    check_host(value)
                head = self.head
                self.host = head.authority = value  # (a target's own authority wins: _other_target)
                # First in the list, as Envoy's :authority: the router copies the list as it is.
                head.headers.insert(0, (name, value))
                return
            elif name == b"content-length":
                # llhttp allows digits and trailing OWS only, once; passed on in canonical form
                n = self.head.content_length = int(value)
                if value[-1] < 48 or value[0] == 48 and len(value) > 1:  # "7 " (OWS: < "0"), "007"
                    value = b"%d" % n
            elif name == b"transfer-encoding":
                self.head.chunked = request_chunked(value, self.head, self.parser)
                return
            elif name == b"te":
                # Hop-by-hop, but Envoy keeps its "trailers" token (gRPC needs it end to end).
                if TRAILERS in list_tokens(value):
                    self.head.headers.append((b"te", TRAILERS))
                return
            elif name == b"expect":
                if value.lower() == b"100-continue":
                    self.head.expect_continue = True
                return  # the proxy answers 100-continue itself; Expect is not forwarded
            elif name in ENVOY_CONTROL_HEADERS:
                self.head.envoy_control = True
            elif name in _REQ_RECORDED:
                field = _REQ_RECORDED[name]
                old = getattr(self.head, field)
                setattr(self.head, field, value if old is None else old + b"," + value)
            else:
                if name == b"upgrade":
                    self.head.upgrade_proto = value
                elif name == b"connection":
                    self.head.has_connection_header = True
                    tokens = tuple(t for t in (t.strip().lower() for t in value.split(b","))
                                   if t and t not in HOP_BY_HOP and t != b"close")
                    if tokens:
                        self.head.connection_tokens += tokens
                return
        self.head.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        head = self.head
        head.method = parser.get_method()
        if not parser.should_keep_alive() or head.has_connection_header:
            # Only then can the version be other than 1.1; get_http_version formats a string
            # in Python and costs as much as the rest of this method.
            head.keep_alive = parser.should_keep_alive()
            version = parser.get_http_version()
            if version != "1.1":
                head.version = version
        if parser.should_upgrade():  # (the parser counts every CONNECT as an upgrade)
            if head.method == b"CONNECT" and self.url[:1] == b"/":
                # RFC 9112 §3.2.3: authority-form only; an origin-form target must not slip
                # past the CONNECT checks in _other_target (content, target form).
                raise ProtocolError("invalid request target")
            if head.upgrade_proto.strip(OWS).lower() == b"h2c" and head.method != b"CONNECT":
                self._decline_h2c(head)
            else:
                head.upgrade = True
        url = self.url
        # Envoy rejects a fragment in the request target by default. (find, not `in`: on CPython
        # 3.11 `bytes in bytes` first tries the needle as an int and clears a TypeError, ~1.8k
        # instructions against ~0.1k, measured with callgrind.)
        if url.find(b"#") != -1:
            raise ProtocolError("malformed request: fragment in request target")
        if url[:1] == b"/":
            head.path = url
            i = url.find(b"?")
            head.path_only = url if i == -1 else url[:i]
        else:
            self._other_target(head, url)
        if head.connection_tokens:  # headers the client nominated as hop-by-hop
            drop = head.connection_tokens
            head.headers = [h for h in head.headers if h[0] not in drop]
            for name, field in _REQ_RECORDED.items():
                if name in drop:
                    setattr(head, field, None)
        self.head = RequestHead()
        self.header_bytes = 0
        self.header_count = 0
        self.url = b""
        self.host = None
        stream = self.handler.on_request_head(head)
        # A request without a body (RFC 9112 §6.3: no Content-Length, not chunked) ends with its
        # head, and its stream knows it from the head: no on_request_end follows.
        self.stream = stream if head.chunked or head.content_length else None
        if self.body_left:  # a declined h2c upgrade: the parser ends it now and skips its body
            self.h2c_stream = self.stream
            self.stream = _IGNORED

    def _decline_h2c(self, head: RequestHead) -> None:
        """``Upgrade: h2c`` is not taken up, as Envoy: the request is served over HTTP/1.1 with
        the upgrade's headers removed. The parser still treats it as an upgrade (it stops after
        the head and skips the body), so ``h2c_resume`` reads the body and restarts parsing."""
        if head.chunked:  # its end could only be found by a second chunked decoder
            raise ProtocolError("h2c upgrade with a chunked body", 400)
        self.h2c = True
        self.body_left = head.content_length or 0
        head.upgrade_proto = b""
        head.headers = [h for h in head.headers if h[0] != b"http2-settings"]

    def h2c_resume(self, data: bytes, offset: int) -> bytes:
        """After a declined h2c upgrade's head (the parser stopped at ``offset``): a fresh
        parser, and the bytes for it once the body is read (``feed_body`` while ``body_left``)."""
        self.h2c = False
        self.parser = httptools.HttpRequestParser(self)
        if self.body_left:
            self.stream, self.h2c_stream = self.h2c_stream, None
        rest = data[offset:]
        return self.feed_body(rest) if self.body_left else rest

    def feed_body(self, data: bytes) -> bytes:
        """Body bytes of a request read by hand (a declined h2c upgrade's); returns what
        follows its body, for the parser."""
        n = self.body_left
        body, rest = data[:n], data[n:]
        self.body_left = n - len(body)
        if body:
            self.stream.on_body(body)  # type: ignore[union-attr]
        if not self.body_left:
            stream = self.stream
            self.stream = None
            stream.on_request_end()  # type: ignore[union-attr]
        return rest

    @staticmethod
    def _other_target(head: RequestHead, url: bytes) -> None:
        """Absolute-form, asterisk-form (OPTIONS *) and authority-form (CONNECT) targets; an
        authority they carry replaces the Host header's (unless empty)."""
        if head.method == b"CONNECT":
            # RFC 9112 §3.2.3: a CONNECT's target is authority-form only; RFC 9110 §9.3.6: it has
            # no content (the bytes after the head are tunnel payload).
            if head.content_length:
                raise ProtocolError("malformed request: CONNECT with content")
            if b"/" in url:
                raise ProtocolError("invalid request target")
            head.upgrade = True
            if url:
                head.authority = url
        elif url[:7].lower() == b"http://" or url[:8].lower() == b"https://":
            rest = url[url.index(b"//") + 2:]
            i = rest.find(b"/")
            j = rest.find(b"?")
            cut = i if j == -1 else (j if i == -1 else min(i, j))
            authority, path = (rest, b"/") if cut == -1 else (rest[:cut], rest[cut:])
            if authority:
                head.authority = authority
            if not path.startswith(b"/"):
                path = b"/" + path
            head.set_path(path)
        elif url == b"*" and head.method == b"OPTIONS":
            head.set_path(b"*")
        else:
            raise ProtocolError("invalid request target")

    def on_body(self, body: bytes) -> None:
        self.stream.on_body(body)  # type: ignore[union-attr]

    def on_message_complete(self) -> None:
        stream = self.stream
        self.stream = None
        if self.header_count:  # fields after the body: a chunked request's trailers
            self._take_trailers(stream)
        if stream is not None:  # (else it ended with its head)
            stream.on_request_end()

    def _take_trailers(self, stream: RequestSink | None) -> None:
        """on_header filled the next request's head with trailer fields: move them over."""
        trailers = self.head.headers
        self.head = RequestHead()
        self.header_bytes = 0
        self.header_count = 0
        self.host = None
        head = getattr(stream, "head", None)
        if head is not None and head.chunked and trailers:
            head.trailers = trailers


class Http1ServerCodecUnderscores(Http1ServerCodec):
    """The server codec with ``headers_with_underscores_action`` REJECT_REQUEST (400) or
    DROP_HEADER: one more test per header, paid only where it is configured."""

    __slots__ = ("reject", "stats")

    def __init__(self, handler: ServerHandler, max_header_bytes: int, max_headers: int,
                 reject: bool, stats: Any, count_begins: bool = False) -> None:
        super().__init__(handler, max_header_bytes, max_headers, count_begins)
        self.reject = reject
        self.stats = stats  # the connection manager's: counts what was rejected or dropped

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.find(b"_") != -1:  # (find, not `in`: see on_headers_complete)
            if self.reject:
                self.stats.requests_rejected_with_underscores_in_headers += 1
                raise ProtocolError("header name with underscores")
            self.stats.dropped_headers_with_underscores += 1
            return
        Http1ServerCodec.on_header(self, name, value)


def server_codec(handler: ServerHandler, max_header_bytes: int, max_headers: int,
                 underscores: int = 0, stats: Any = None, count_begins: bool = False) -> Http1ServerCodec:
    """The server codec for a connection manager's options (underscores: 0 ALLOW, 1 REJECT_REQUEST,
    2 DROP_HEADER, as Envoy's HeadersWithUnderscoresAction)."""
    if underscores:
        return Http1ServerCodecUnderscores(handler, max_header_bytes, max_headers, underscores == 1, stats,
                                           count_begins)
    return Http1ServerCodec(handler, max_header_bytes, max_headers, count_begins)
