"""Route ``hash_policy``: the request hash RING_HASH and MAGLEV consume (Envoy's HashPolicyImpl).

Computed lazily, only when a hashing balancer asks (``upstream/lb/consistent_hash.request_hash(stream)``), from what the
stream already holds: the request head, the downstream connection. Policies combine as in
Envoy: ``hash = rotl(hash, 1) ^ new``, stopping after a ``terminal`` policy that produced one.
A cookie policy with a ``ttl`` and no cookie in the request makes one up from the connection's
addresses and answers it with a Set-Cookie on the upstream response.
"""

from __future__ import annotations

from typing import Any, Protocol

import xxhash

from .regex_rewrite import global_replace

_MASK = (1 << 64) - 1
_hash64 = xxhash.xxh64_intdigest


class HashMethod(Protocol):
    terminal: bool

    def evaluate(self, stream: Any) -> int | None: ...


class HeaderHash:
    """All values of one header, sorted, chained through xxHash64 seeds."""

    __slots__ = ("name", "rewrite", "terminal")

    def __init__(self, name: bytes, rewrite: tuple[Any, str] | None = None, terminal: bool = False) -> None:
        self.name = b"host" if name == b":authority" else name
        self.rewrite = rewrite  # (compiled RE2, substitution)
        self.terminal = terminal

    def evaluate(self, stream: Any) -> int | None:
        head = stream.head
        name = self.name
        if name == b":path":
            values = [head.path]
        elif name == b":method":
            values = [head.method]
        else:
            values = [v for k, v in head.headers if k == name]
        if not values:
            return None
        if self.rewrite is not None:
            regex, sub = self.rewrite
            values = [global_replace(regex, sub, v.decode("latin-1")).encode("latin-1") for v in values]
        values.sort()
        seed = 0
        for v in values:
            seed = _hash64(v, seed)
        return seed


class CookieHash:
    __slots__ = ("name", "ttl", "path", "attributes", "terminal")

    def __init__(self, name: bytes, ttl: int | None = None, path: bytes = b"",
                 attributes: tuple[tuple[bytes, bytes], ...] = (), terminal: bool = False) -> None:
        self.name = name
        self.ttl = ttl  # seconds; None: never generate a cookie
        self.path = path
        self.attributes = attributes
        self.terminal = terminal

    def evaluate(self, stream: Any) -> int | None:
        value = cookie_value(stream.head.headers, self.name)
        if not value:
            if self.ttl is None:
                return None
            value = self._add_cookie(stream)
        return _hash64(value)

    def _add_cookie(self, stream: Any) -> bytes:
        """Envoy's addDownstreamSetCookie: the value hashes the connection's two addresses, so
        racing requests on one connection get the same cookie."""
        transport = stream.conn.transport
        addrs = b""
        if transport is not None:
            addrs = _address(transport.get_extra_info("peername")) + _address(transport.get_extra_info("sockname"))
        value = b"%016x" % _hash64(addrs)
        stream.response_extras = getattr(stream, "response_extras", ()) + (SetCookie(self.set_cookie(value)),)
        return value

    def set_cookie(self, value: bytes) -> bytes:
        out = self.name + b'="' + value + b'"'
        if self.ttl:
            out += b"; Max-Age=%d" % self.ttl
        if self.path:
            out += b"; Path=" + self.path
        for name, val in self.attributes:
            out += b"; " + name + (b"=" + val if val else b"")
        return out + b"; HttpOnly"


class SourceIpHash:
    __slots__ = ("terminal",)

    def __init__(self, terminal: bool = False) -> None:
        self.terminal = terminal

    def evaluate(self, stream: Any) -> int | None:
        ip = stream.conn.remote_ip
        return _hash64(ip) if ip else None


class QueryParameterHash:
    """The first value of one query parameter, as sent (not URL-decoded)."""

    __slots__ = ("name", "terminal")

    def __init__(self, name: bytes, terminal: bool = False) -> None:
        self.name = name
        self.terminal = terminal

    def evaluate(self, stream: Any) -> int | None:
        value = stream.head.query().get(self.name)
        return None if value is None else _hash64(value)


class HashPolicy:
    __slots__ = ("methods",)

    def __init__(self, methods: tuple[HashMethod, ...]) -> None:
        self.methods = methods

    def generate(self, stream: Any) -> int | None:
        h: int | None = None
        for m in self.methods:
            new = m.evaluate(stream)
            if new is not None:
                old = (((h << 1) | (h >> 63)) & _MASK) if h is not None else 0
                h = old ^ new
            if m.terminal and h is not None:
                break
        return h


class SetCookie:
    """A response header mutation carrying one generated Set-Cookie."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def apply(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        headers.append((b"set-cookie", self.value))
        return headers


def cookie_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    """The first ``name=value`` across Cookie headers, surrounding quotes removed (Envoy's
    parseCookieValue)."""
    for k, v in headers:
        if k != b"cookie":
            continue
        for part in v.split(b";"):
            key, eq, val = part.strip().partition(b"=")
            if eq and key == name:
                if len(val) >= 2 and val[0] == 0x22 and val[-1] == 0x22:
                    val = val[1:-1]
                return val
    return b""


def _address(addr: Any) -> bytes:
    """Envoy's Address::asString: ``ip:port``, IPv6 in brackets."""
    if not addr:
        return b""
    ip, port = addr[0], addr[1]
    return (f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}").encode()
