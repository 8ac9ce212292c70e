"""Fuzz the proxy against a misbehaving origin: arbitrary response bytes, in arbitrary splits.

A client request (chosen by the input's first byte) goes through a DownstreamConnection, is
routed to a cluster with one host, and the fake upstream connection the loop hands out answers
with the rest of the input, then closes. The loop's clock is virtual, so every timeout fires
at once. Invariants: nothing escapes a protocol callback or the loop; what the client gets
parses (h11) as one response per request; once the upstream is gone and every timeout has
passed, every request read on a connection still open has its response (issue 11 item 3:
every request ends within its timeouts, never a stuck client).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from _common import instrumented, main, split

with instrumented(__name__):
    from _fakes import FakeTransport, VirtualTimeLoop  # (pilotfish.proxy.testing: instrumented too)
    from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
    from pilotfish.proxy.compile import compile_bootstrap
    from pilotfish.proxy.http.downstream import ConnectionSet

from downstream import HCM, ROUTER, _Conn, check_output, only_complete_requests

BOOTSTRAP: dict[str, Any] = {
    "static_resources": {
        "listeners": [{
            "name": "fuzz", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": HCM, "stat_prefix": "fuzz",
                    "route_config": {"virtual_hosts": [{
                        "name": "all", "domains": ["*"],
                        "routes": [
                            {"match": {"prefix": "/retry"},
                             "route": {"cluster": "up", "timeout": "3s",
                                       "retry_policy": {"retry_on": "5xx,reset", "num_retries": 1}}},
                            {"match": {"prefix": "/"}, "route": {"cluster": "up", "timeout": "3s"}},
                        ]}]},
                    "upgrade_configs": [{"upgrade_type": "websocket"}],
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
                },
            }]}],
        }],
        "clusters": [{"name": "up", "type": "STATIC", "connect_timeout": "1s",
                      "load_assignment": {"cluster_name": "up", "endpoints": [{"lb_endpoints": [
                          {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                                       "port_value": 9}}}}]}]}}],
    },
}

#: What the client sends, picked by the input's first byte.
REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /retry HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
]

_state: dict[str, Any] = {}


def _setup() -> tuple[VirtualTimeLoop, Any]:
    if not _state:
        loop = VirtualTimeLoop()
        errors: list[Any] = []
        loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        loaded = parse_bootstrap(BOOTSTRAP)
        compiled = compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)
        for cluster in compiled.runtime.clusters.values():
            loop.run_until_complete(cluster.initialize(loop))
        _state.update(loop=loop, listener=compiled.runtime.listeners[0], errors=errors)
    return _state["loop"], _state["listener"]


async def _ticks(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _drive(loop: VirtualTimeLoop, conn: _Conn, t: FakeTransport, request: bytes,
                 pieces: list[bytes]) -> None:
    conn.connection_made(t)
    conn.data_received(request)
    fed = 0  # upstream connections served so far: the first gets the input, later ones a close
    for _ in range(20):
        await _ticks()
        while fed < len(loop.upstreams):
            up = loop.upstreams[fed]
            fed += 1
            for piece in pieces if fed == 1 else []:
                if up.closed:
                    break
                up.protocol.data_received(piece)  # type: ignore[union-attr]
                await _ticks(1)
            if not up.closed and not up.protocol.eof_received():  # type: ignore[union-attr]
                up.close()
            await _ticks()
        if not loop.advance_to_next(60.0):  # every timeout is well under a minute
            break
    conn.open_at_end = not t.closed and not t.eof_written  # (a tunnel half-closes)
    if not t.closed and not conn.eof_received():
        t.close()
    await _ticks()
    t.lose()
    await _ticks()


def test_one_input(data: bytes) -> None:
    if not data:
        return
    loop, listener = _setup()
    errors: list[Any] = _state["errors"]
    errors.clear()
    loop.upstreams.clear()
    request = REQUESTS[data[0] % len(REQUESTS)]
    shared = ConnectionSet(loop, random.Random(1))
    t = FakeTransport(loop)
    conn = _Conn(listener, shared)
    t.set_protocol(conn)
    try:
        loop.run_until_complete(_drive(loop, conn, t, request, split(data[1:])))
    finally:
        for up in loop.upstreams:
            up.lose()
        loop.run_until_complete(_ticks())
        loop.cancel_timers()
    if errors:
        exc = errors[0].get("exception")
        if exc is not None:
            raise exc
        raise AssertionError(f"upstream: loop error: {errors[0].get('message')}")
    check_output(t.written, conn.methods, t.aborted, not conn.open_at_end, conn.upgrades,
                 only_complete_requests(request))


if __name__ == "__main__":
    main(test_one_input)
