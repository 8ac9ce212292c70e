"""Route hash_policy and ORIGINAL_DST destination parsing, without sockets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import xxhash

from pilotfish.proxy.router.hash_policy import (
    CookieHash, HashPolicy, HeaderHash, QueryParameterHash, SourceIpHash, cookie_value,
)
from pilotfish.proxy.upstream.lb.consistent_hash import request_hash
from pilotfish.proxy.http.head import RequestHead
from pilotfish.proxy.upstream.lb.original_dst import OriginalDst, parse_host_port
from pilotfish.proxy.testing import FakeTransport


def stream(headers: dict[str, str] | list[tuple[str, str]] | None = None, path: str = "/",
           policy: HashPolicy | None = None, ip: bytes = b"10.1.2.3") -> Any:
    head = RequestHead()
    items = headers.items() if isinstance(headers, dict) else (headers or [])
    head.headers = [(k.encode(), v.encode()) for k, v in items]
    head.set_path(path.encode())
    conn = SimpleNamespace(remote_ip=ip, transport=FakeTransport(peername=("10.1.2.3", 5555), sockname=("10.0.0.1", 8080)))
    route = SimpleNamespace(action=SimpleNamespace(hash_policy=policy))
    return SimpleNamespace(head=head, conn=conn, route=route, response_extras=())


def h64(v: bytes, seed: int = 0) -> int:
    return xxhash.xxh64_intdigest(v, seed)


def test_header_hash_is_xxhash64_of_sorted_values_chained() -> None:
    m = HeaderHash(b"x-user")
    assert m.evaluate(stream({"x-user": "alice"})) == h64(b"alice")
    two = [("x-user", "b"), ("x-user", "a")]
    assert m.evaluate(stream(two)) == h64(b"b", h64(b"a"))  # same for either order
    assert m.evaluate(stream()) is None
    assert HeaderHash(b":authority").evaluate(stream({"host": "svc"})) == h64(b"svc")


def test_header_hash_regex_rewrite() -> None:
    import re2

    m = HeaderHash(b":path", (re2.compile(r"^/(\w+)/.*$"), r"\1"))
    assert m.evaluate(stream(path="/user/123")) == h64(b"user")


def test_policies_combine_by_rotate_and_xor_and_terminal_stops() -> None:
    a, b = HeaderHash(b"a"), HeaderHash(b"b")
    s = stream({"a": "1", "b": "2"})
    ha, hb = h64(b"1"), h64(b"2")
    rotl = ((ha << 1) | (ha >> 63)) & (2**64 - 1)
    assert HashPolicy((a, b)).generate(s) == rotl ^ hb
    assert HashPolicy((HeaderHash(b"a", terminal=True), b)).generate(s) == ha
    # A terminal policy that produced nothing does not stop the next one.
    assert HashPolicy((HeaderHash(b"zz", terminal=True), b)).generate(s) == hb
    assert HashPolicy((HeaderHash(b"zz"),)).generate(s) is None


def test_cookie_hash_reads_the_cookie_and_strips_quotes() -> None:
    m = CookieHash(b"session")
    assert m.evaluate(stream({"cookie": 'a=1; session="xyz"; b=2'})) == h64(b"xyz")
    assert m.evaluate(stream({"cookie": "a=1"})) is None
    assert cookie_value([(b"cookie", b"a=1"), (b"cookie", b"b=2")], b"b") == b"2"


def test_cookie_with_ttl_is_generated_from_the_connection_addresses() -> None:
    m = CookieHash(b"session", ttl=3600, path=b"/", attributes=((b"SameSite", b"Strict"), (b"Secure", b"")))
    s = stream()
    value = b"%016x" % h64(b"10.1.2.3:555510.0.0.1:8080")
    assert m.evaluate(s) == h64(value)
    (mutation,) = s.response_extras
    assert mutation.apply([]) == [(b"set-cookie", b'session="' + value
                                   + b'"; Max-Age=3600; Path=/; SameSite=Strict; Secure; HttpOnly')]
    # The client sends it back: same hash, no new cookie.
    again = stream({"cookie": f'session="{value.decode()}"'})
    assert m.evaluate(again) == h64(value) and again.response_extras == ()
    session = CookieHash(b"s", ttl=0)
    s = stream()
    session.evaluate(s)
    assert b"Max-Age" not in s.response_extras[0].value


def test_source_ip_and_query_parameter() -> None:
    assert SourceIpHash().evaluate(stream(ip=b"10.9.9.9")) == h64(b"10.9.9.9")
    q = QueryParameterHash(b"user")
    assert q.evaluate(stream(path="/p?x=1&user=bob&user=eve")) == h64(b"bob")
    assert q.evaluate(stream(path="/p?user")) == h64(b"")
    assert q.evaluate(stream(path="/p")) is None


def test_request_hash_without_route_or_policy() -> None:
    assert request_hash(SimpleNamespace(route=None)) is None
    assert request_hash(stream()) is None
    assert request_hash(stream({"a": "1"}, policy=HashPolicy((HeaderHash(b"a"),)))) == h64(b"1")


def test_original_dst_host_parsing() -> None:
    assert parse_host_port(b"127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_host_port(b"[::1]:80") == ("::1", 80)
    for bad in (b"127.0.0.1", b"host:80", b"::1:80", b"1.2.3.4:99999", b"[1.2.3.4]:80", b"\xff"):
        assert parse_host_port(bad) is None


def test_original_dst_balancer_creates_hosts_once() -> None:
    made: list[tuple[str, int]] = []
    hosts: dict[tuple[str, int], Any] = {}

    def add(ip: str, port: int) -> Any:
        made.append((ip, port))
        hosts[(ip, port)] = SimpleNamespace(used=False, address=ip, port=port)
        return hosts[(ip, port)]

    lb = OriginalDst(hosts, add, b"x-envoy-original-dst-host", None)
    h = lb.choose_host(stream({"x-envoy-original-dst-host": "10.0.0.5:81"}))
    assert (h.address, h.port, h.used) == ("10.0.0.5", 81, True)
    assert lb.choose_host(stream({"x-envoy-original-dst-host": "10.0.0.5:81"})) is h
    assert made == [("10.0.0.5", 81)]
    assert lb.choose_host(stream({"x-envoy-original-dst-host": "nonsense"})) is None
    assert lb.invalid == 1
    assert lb.choose_host(stream()) is None  # no header and no SO_ORIGINAL_DST
    override = OriginalDst(hosts, add, b"x-envoy-original-dst-host", 9000)
    assert override.choose_host(stream({"x-envoy-original-dst-host": "10.0.0.5:81"})).port == 9000
