"""RFC 9112's framing rules where llhttp lets a message through, as Envoy's codec applies them:
Transfer-Encoding exactly ``chunked`` (any other coding 501), and Host values (RFC 9112 §3.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..common.errors import ProtocolError

if TYPE_CHECKING:
    from .head import RequestHead

#: What a Host value may hold (RFC 3986 reg-name, IP-literal and port characters), as Envoy's
#: authority check: a Host with anything else (a space, a control character) is a 400.
_HOST_CHARS = bytes(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@[]%")
OWS = b" \t"

TRAILERS = b"trailers"
CHUNKED_TOKEN = b"chunked"


def list_tokens(value: bytes) -> list[bytes]:
    """A comma-separated list field: trimmed, lower-cased, empty elements dropped (RFC 9110 §5.6.1)."""
    return [t for t in (t.strip(OWS).lower() for t in value.split(b",")) if t]


def check_host(value: bytes) -> None:
    """RFC 9112 §3.2: a Host with characters outside RFC 3986's authority (a space, ``<``) is a
    400, as Envoy's authority check. Valid hosts are remembered (a bounded set)."""
    if value.translate(None, _HOST_CHARS):
        raise ProtocolError("malformed request: invalid host header")
    if len(VALID_HOSTS) >= 4096:
        VALID_HOSTS.clear()
    VALID_HOSTS.add(value)


VALID_HOSTS: set[bytes] = set()


def framing_chunked(te: bytes, what: str) -> bool:
    """A Transfer-Encoding value: exactly ``chunked`` (trimmed, any case) is chunked; any other
    coding is 501; ``chunked`` twice, with an empty list element, or nothing is a framing error
    (400), as Envoy's codec. (llhttp refuses Transfer-Encoding beside Content-Length either way round.)"""
    if te.strip(OWS).lower() == CHUNKED_TOKEN:  # Envoy: EqualsIgnoreCase(value, "chunked")
        return True
    codings = list_tokens(te)
    if not codings or all(c == CHUNKED_TOKEN for c in codings):  # "chunked,", "chunked, chunked"
        raise ProtocolError(f"malformed {what}: invalid transfer-encoding")
    raise ProtocolError(f"unsupported transfer encoding in {what}", 501)


def request_chunked(te: bytes, head: RequestHead, parser: Any) -> bool:
    """A request's Transfer-Encoding header (``framing_chunked``). A second one, or one on
    CONNECT or HTTP/1.0, is refused."""
    if head.chunked:  # Envoy joins them ("chunked,chunked", "chunked,gzip"): never exactly chunked
        raise ProtocolError("malformed request: more than one transfer-encoding")
    if parser.get_method() == b"CONNECT":
        raise ProtocolError("unsupported transfer encoding in CONNECT request", 501)
    chunked = framing_chunked(te, "request")
    if parser.get_http_version() == "1.0":
        raise ProtocolError("malformed request: transfer-encoding in HTTP/1.0")
    return chunked
