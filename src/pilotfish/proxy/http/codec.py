"""The codec interface: what the router sends through a connection, whatever its protocol.

Events come up from a codec as calls on the stream (``on_request_head`` / ``on_body`` /
``on_request_end`` downstream, where a request without a body ends with its head and no
``on_request_end`` follows, as an HTTP/2 HEADERS frame with END_STREAM; ``on_response_head`` /
``on_response_body`` / ``on_response_end`` upstream). Sending goes down through these calls, and only codecs write wire bytes: framing
(Content-Length, chunked, until-close), the connection header, status lines and the last chunk
with its trailers are theirs. Header lists are ``(name, value)`` tuples of lower-cased bytes,
end-to-end headers only, as HTTP/2's header blocks would carry them.

HTTP/1.1 implements them on its connections (downstream.py with http1_response.py, and
upstream_connection.py): one message at a time in each direction, so the encoder's state lives
on the connection. An HTTP/2 codec implements them per stream.
"""

from __future__ import annotations

from typing import Any, Protocol


class ResponseSender(Protocol):
    """Towards the client: one response per request, in the requests' order."""

    #: Whether the response being sent needs ``send_end`` (set by ``send_head``; HTTP/1.1: a
    #: chunked body's last chunk). A response whose framing ends by itself (a Content-Length,
    #: no body, the connection's end) skips the call.
    needs_end: bool

    def send_head(self, head: Any, status: int, headers: list[tuple[bytes, bytes]], has_length: bool,
                  close: bool) -> bool:
        """The response head for the request ``head``. ``has_length``: the headers carry a
        Content-Length (else the codec frames the body itself); ``close``: the connection should
        end after this response. Returns whether it will (the codec may decide so itself)."""
        ...

    def send_body(self, data: bytes) -> None:
        """Response body bytes, as they come."""
        ...

    def send_end(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        """The response is complete (with the upstream's trailers, when it sent any); called
        only while ``needs_end``."""
        ...

    def send_continue(self) -> None:
        """An interim ``100 Continue`` (the request asked with ``Expect: 100-continue``)."""
        ...

    def reset(self) -> None:
        """Reset the response being sent: the only way left once its head is out."""
        ...


class RequestSender(Protocol):
    """Towards an upstream: one request at a time on an HTTP/1.1 connection."""

    def send_head(self, stream: Any, method: bytes, path: bytes, headers: list[tuple[bytes, bytes]], chunked: bool,
                  end_stream: bool) -> None:
        """The request head (``host`` among the headers) of ``stream``, which receives the
        response's events from now on (``on_response_head / _body / _end``; the connection
        serves it until detached, as Envoy's ``newStream(decoder)``). ``chunked``: the body has
        no declared length and is framed by the codec. ``end_stream``: the head is the whole
        request (no body, no trailers), and neither ``send_body`` nor ``send_end`` follows
        (Envoy's ``encodeHeaders(headers, end_stream)``; HTTP/2 sets END_STREAM on the HEADERS
        frame)."""
        ...

    def send_body(self, data: bytes) -> None:
        """Request body bytes, as they come."""
        ...

    def send_end(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        """The request is complete (with the client's trailers, when it sent any); not called
        after a head sent with ``end_stream``."""
        ...
