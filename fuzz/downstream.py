"""Fuzz a whole DownstreamConnection: arbitrary client bytes, in arbitrary splits.

The connection runs on an asyncio loop with a fake transport and a compiled config whose
routes answer without an upstream: ``/direct`` a direct_response, anything else a cluster with
no hosts (503), with a retry policy under ``/retry``, a rewrite under ``/r/``; websocket
upgrades are enabled. Invariants: nothing escapes data_received / eof_received / connection_lost or
the loop's callbacks; nothing is written after the transport was closed; what is written back
is a sequence of HTTP/1.1 responses h11 accepts as answers to the requests the connection read
(a response cut short only when the connection was reset), and, once the timeouts under a
minute have fired (the clock is virtual), every request read on a connection still open has
its response.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import h11
import httptools

from _common import Violation, check, instrumented, main, split

with instrumented(__name__):
    from _fakes import FakeTransport, VirtualTimeLoop  # (pilotfish.proxy.testing: instrumented too)
    from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
    from pilotfish.proxy.compile import compile_bootstrap
    from pilotfish.proxy.http.downstream import ConnectionSet, DownstreamConnection
    from pilotfish.proxy.http.head import RequestHead

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"

#: The config under test: a direct response and a cluster without hosts, no upstream needed.
BOOTSTRAP: dict[str, Any] = {
    "static_resources": {
        "listeners": [{
            "name": "fuzz", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": HCM, "stat_prefix": "fuzz",
                    "common_http_protocol_options": {"max_headers_count": 40},
                    "max_request_headers_kb": 8,
                    "route_config": {"virtual_hosts": [{
                        "name": "all", "domains": ["*"],
                        "routes": [
                            {"match": {"prefix": "/direct"},
                             "direct_response": {"status": 200, "body": {"inline_string": "direct"}}},
                            {"match": {"prefix": "/retry"},  # a stream with a Resilience
                             "route": {"cluster": "empty", "retry_policy": {"retry_on": "5xx,reset",
                                                                            "num_retries": 2}}},
                            {"match": {"prefix": "/r/"},
                             "route": {"cluster": "empty", "prefix_rewrite": "/", "timeout": "2s"},
                             "request_headers_to_add": [{"header": {"key": "x-a", "value": "1"}}]},
                            {"match": {"prefix": "/"}, "route": {"cluster": "empty"}},
                        ]}]},
                    "upgrade_configs": [{"upgrade_type": "websocket"}],
                    "request_headers_timeout": "5s",
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
                },
            }]}],
        }],
        "clusters": [{"name": "empty", "type": "STATIC", "connect_timeout": "1s",
                      "load_assignment": {"cluster_name": "empty", "endpoints": []}}],
    },
}


class _Conn(DownstreamConnection):
    """The connection, recording the heads it reads (to pair responses with their requests)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.methods: list[bytes] = []
        self.upgrades: list[bytes] = []  # each request's Upgrade value (b"" for none)
        self.open_at_end = False  # the connection was still open when the input ran out

    def on_request_head(self, head: RequestHead) -> Any:
        self.methods.append(head.method)
        self.upgrades.append(head.upgrade_proto if head.upgrade else b"")
        return super().on_request_head(head)


_state: dict[str, Any] = {}


def _setup() -> tuple[asyncio.AbstractEventLoop, Any]:
    if not _state:
        loaded = parse_bootstrap(BOOTSTRAP)
        compiled = compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)
        loop = VirtualTimeLoop()
        errors: list[Any] = []
        loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        _state.update(loop=loop, listener=compiled.runtime.listeners[0], errors=errors)
    return _state["loop"], _state["listener"]


async def _drive(conn: _Conn, t: FakeTransport, pieces: list[bytes]) -> None:
    conn.connection_made(t)
    for piece in pieces:
        for _ in range(4):  # a paused connection resumes once the streams ahead have answered
            if t.reading or t.closed:
                break
            await asyncio.sleep(0)
        if t.closed:
            break
        check(t.reading, "downstream: reading stays paused with nothing in flight",
              f"active={conn.active!r} queue={len(conn.queue)}")
        conn.data_received(piece)
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    for _ in range(10):  # let the timeouts under a minute fire (request headers: 5 s)
        if t.closed or not loop.advance_to_next(60.0):  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    conn.open_at_end = not t.closed
    if not t.closed:
        if not conn.eof_received():
            t.close()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    t.lose()


class _Counter:
    def __init__(self) -> None:
        self.begun = self.complete = 0

    def on_message_begin(self) -> None:
        self.begun += 1

    def on_message_complete(self) -> None:
        self.complete += 1


def only_complete_requests(payload: bytes) -> int | None:
    """How many requests ``payload`` holds when it is nothing but complete, valid requests as a
    fresh parser sees them (nothing left to answer with an error or a request timeout); else None."""
    counter = _Counter()
    try:
        httptools.HttpRequestParser(counter).feed_data(payload)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        return None
    return counter.complete if counter.begun == counter.complete else None


def check_output(out: bytes, methods: list[bytes], reset: bool, closed: bool = True,
                 upgrades: list[bytes] | None = None, complete: int | None = None) -> None:
    """``out`` parses as responses to ``methods`` in order (GET for one no request head stands
    for); on a connection still open (``closed`` false) every request has its response.
    ``complete``: how many requests the client sent when it sent nothing else (see
    ``only_complete_requests``)."""
    h = h11.Connection(h11.CLIENT)
    h.receive_data(out)
    if not reset and closed:
        h.receive_data(b"")
    # One response more than requests read is an error reply (400, 408) to bytes that never made
    # a request; none is due when the client sent only complete requests and all were read.
    extra = 0 if complete is not None and complete == len(methods) else 1
    n = _responses(h, methods, upgrades or [], reset, closed, len(methods) + extra)
    check(closed or n >= len(methods) or h.their_state is h11.SWITCHED_PROTOCOL,
          "proxy: a request read is never answered on an open connection", f"{n} of {len(methods)}")


def _responses(h: h11.Connection, methods: list[bytes], upgrades: list[bytes], reset: bool,
               closed: bool, limit: int) -> int:
    """How many final responses ``h`` parses (sending it a request for each): at most ``limit``
    (one more than the requests read when bytes were left that the proxy may answer with an
    error, a 400 or a 408)."""
    n = 0
    done = 0
    while True:
        if h.our_state is h11.IDLE:
            if not h.trailing_data[0]:
                return done  # every byte written belongs to a complete response
            method = methods[n] if n < len(methods) else b"GET"
            n += 1
            headers = [("host", "x")]
            if n <= len(upgrades) and upgrades[n - 1]:
                headers += [("connection", "upgrade"), ("upgrade", "x")]  # h11 needs one; any will do
            h.send(h11.Request(method=method, target="/", headers=headers))
            h.send(h11.EndOfMessage())
        try:
            event = h.next_event()
        except h11.RemoteProtocolError as exc:
            # the signature keeps h11's reason, not the bytes it quotes
            raise Violation(f"proxy: unparseable response ({str(exc).split(':')[0]})", str(exc)) from None
        if isinstance(event, h11.Response):
            done += 1
            check(done <= limit, f"proxy: unsolicited {event.status_code} response",
                  f"response {done} to {len(methods)} requests")
        if event is h11.NEED_DATA:
            check(reset or not closed or h.their_state in (h11.SEND_RESPONSE, h11.DONE, h11.MUST_CLOSE, h11.CLOSED),
                  "proxy: response cut short on a closed connection", str(h.their_state))
            return done
        if event is h11.PAUSED:
            if h.our_state is h11.DONE and h.their_state is h11.DONE:
                h.start_next_cycle()
                continue
            return done  # protocol switch: the rest is tunnel payload
        if isinstance(event, h11.ConnectionClosed):
            return done


def test_one_input(data: bytes) -> None:
    loop, listener = _setup()
    errors: list[Any] = _state["errors"]
    errors.clear()
    shared = ConnectionSet(loop, random.Random(1))
    t = FakeTransport(loop)
    conn = _Conn(listener, shared)
    t.set_protocol(conn)
    pieces = split(data)
    try:
        loop.run_until_complete(_drive(conn, t, pieces))
    finally:
        loop.cancel_timers()
    if errors:
        exc = errors[0].get("exception")
        if exc is not None:
            raise exc
        raise AssertionError(f"downstream: loop error: {errors[0].get('message')}")
    check(t.lost and not shared.connections, "downstream: connection not released")
    check_output(t.written, conn.methods, t.aborted, not conn.open_at_end, conn.upgrades,
                 only_complete_requests(b"".join(pieces)))


if __name__ == "__main__":
    main(test_one_input)
