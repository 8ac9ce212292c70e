"""The HTTP/1.1 client codec over httptools: response bytes in, ``on_response_head / _body /
_end`` calls out; framing as the server codec's (http1_server.py), and bytes after a response
an error, never the next stream's answer."""

from __future__ import annotations

from typing import Protocol

import httptools

from ..common.errors import ProtocolError
from .framing import framing_chunked
from .head import HOP_BY_HOP

# Response headers the client codec consumes or looks at.
_RESP_SPECIAL = HOP_BY_HOP | {b"content-length", b"date", b"server", b"x-envoy-upstream-service-time"}

class ClientHandler(Protocol):
    def on_response_head(self, status: int, headers: list[tuple[bytes, bytes]], keep_alive: bool,
                         content_length: int | None, chunked: bool) -> None: ...
    def on_response_body(self, data: bytes) -> None: ...
    def on_response_end(self) -> None: ...


class _ExcessResponse(Exception):
    """Raised in the parser's callback: bytes follow a complete response in the same read."""


class ExcessResponseError(ProtocolError):
    """The upstream framed its response wrongly: bytes follow it (a 204 with a body, a body
    longer than its Content-Length)."""


class Http1ClientCodec:
    """Response parser. Informational (1xx) responses are consumed here.

    ``handler`` may be swapped between responses (a pooled connection serves one stream at a
    time and hands the stream to its codec directly); when a final response ends, the codec
    goes back to ``owner``, the handler it was made with, before it reports the end: that
    exchange is over, and whatever follows is not its business. Framing follows RFC 9112 as the server
    codec's does; bytes that follow a complete response in the same read (a 204 with a body,
    a body longer than its Content-Length) are an error, never the start of the next
    stream's response: the connection owner clears ``ended`` before each read.
    """

    __slots__ = ("handler", "owner", "parser", "headers", "informational", "content_length", "chunked", "trailers",
                 "has_date", "has_server", "has_service_time", "ended", "fresh", "on_message_begin")

    def __init__(self, handler: ClientHandler) -> None:
        self.handler = self.owner = handler
        # ``fresh`` holds an item from a final response's end until the parser begins another
        # message: the parser empties it at the first byte of every message with a C method,
        # no Python frame (a Python callback here cost ~1.5k instructions per response, and
        # an itertools counter's method-wrapper ~0.7k per call).
        self.fresh: list[bool] = []
        self.on_message_begin = self.fresh.clear
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.informational = False
        self.content_length: int | None = None
        self.chunked = False
        self.trailers: list[tuple[bytes, bytes]] | None = None  # the last chunked response's
        self.has_date = False  # the response being read carries a Date header
        self.has_server = False  # ... and a Server header (noted here, where every name is looked at)
        self.has_service_time = False  # ... and x-envoy-upstream-service-time (the router replaces it)
        self.ended = False  # a final response ended during the current read (see excess)

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise self.error(exc) from None
        if self.ended and self.excess():
            raise ExcessResponseError("excess data after a response", 502)

    def excess(self) -> bool:
        """After a read in which a response ended: whether another message began after it (a
        partial head: the start of a response nobody asked for). Clears ``ended``."""
        self.ended = False
        return not self.fresh

    @staticmethod
    def error(exc: Exception) -> ProtocolError:
        """A parser exception as a ProtocolError (502); errors raised by callbacks other than
        framing errors are re-raised."""
        if isinstance(exc, httptools.HttpParserCallbackError):
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, _ExcessResponse):
                return ExcessResponseError("excess data after a response", 502)
            if isinstance(cause, ProtocolError):
                cause.status = 502
                return cause
            raise exc
        return ProtocolError(f"malformed response: {exc}", 502)

    @property
    def has_framing(self) -> bool:
        """Whether the response being read declared its length (Content-Length or chunked)."""
        return self.content_length is not None or self.chunked

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in _RESP_SPECIAL:
            if name == b"content-length":
                n = self.content_length = int(value)  # (llhttp: digits and trailing OWS only, once)
                if value[-1] < 48 or value[0] == 48 and len(value) > 1:  # "7 " (OWS: < "0"), "007"
                    value = b"%d" % n
            elif name == b"date":
                self.has_date = True
            elif name == b"server":
                self.has_server = True
            elif name == b"x-envoy-upstream-service-time":
                self.has_service_time = True
            else:
                if name == b"transfer-encoding":
                    if self.chunked:  # a second one: never exactly "chunked" once joined
                        raise ProtocolError("malformed response: more than one transfer-encoding")
                    status = self.parser.get_status_code()
                    if status < 200 or status == 204:  # RFC 9112 §6.1: a server MUST NOT send it
                        raise ProtocolError(f"malformed response: transfer-encoding in a {status}")
                    self.chunked = framing_chunked(value, "response") and status != 304
                return
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.ended:  # a response already ended in this read: these bytes are not an answer
            raise _ExcessResponse()
        parser = self.parser
        status = parser.get_status_code()
        if status < 200 and status != 101:
            # RFC 9110 §15: 100-599; an interim response has no content.
            if status < 100 or self.content_length or self.chunked:
                raise ProtocolError("malformed response: invalid interim response", 502)
            self.informational = True
            self.headers = []
            self.content_length = None
            self.chunked = False
            self.has_date = False
            self.has_server = False
            self.has_service_time = False
            return
        if status > 599:  # (informational is False: a 1xx's end reset it)
            raise ProtocolError("malformed response: invalid status code", 502)
        self.handler.on_response_head(status, self.headers, parser.should_keep_alive(),
                                      self.content_length, self.chunked)
        if self.chunked:
            self.headers = []  # what on_header adds from now on are trailers

    def on_body(self, body: bytes) -> None:
        self.handler.on_response_body(body)

    def on_message_complete(self) -> None:
        # The next response starts from scratch (instead of an on_message_begin callback).
        self.trailers = self.headers if self.chunked and self.headers else None
        self.headers = []
        self.content_length = None
        self.chunked = False
        self.has_date = False
        self.has_server = False
        self.has_service_time = False
        if self.informational:
            self.informational = False
            return
        self.ended = True
        self.fresh.append(True)
        handler = self.handler
        self.handler = self.owner
        handler.on_response_end()
