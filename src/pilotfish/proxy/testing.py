"""Test doubles for the request path: drive it without sockets, tasks or a real clock.

- ``FakeTransport``: an asyncio transport that records what is written, closes and aborts,
  pauses and resumes reading, and answers ``get_extra_info`` (peername, sockname).
- ``ManualLoop``: the part of an event loop the request path uses (``time``, ``call_soon``,
  ``call_at``, ``call_later``); time moves only when the test says so (``advance``), and what
  is due then runs in order, so timeouts fire deterministically and at once.
- ``CheckedStream``: the router's Stream with every state move checked against the table
  in common/stream_states.py (the proxy tests run every stream as one).
- ``Proxy``: a listener compiled from a small bootstrap dict (through ``compile/``, as the
  process compiles it), its clusters' hosts installed on the manual loop; ``connect`` makes a
  DownstreamConnection on a FakeTransport (``Client``). A pool's connect (a task that never
  waits here) gets a ``FakeUpstream`` (``Proxy.upstreams``), or connection refused for a host
  in ``Proxy.refused``; ``Proxy.upstream`` puts idle ones in a pool beforehand, and
  ``attach_upstream`` hands one to any routed stream.

Nothing in ``src`` imports this module; tests and fuzz harnesses do.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Callable, Coroutine, Iterable
from itertools import count
from typing import Any

from .common.response_flags import flags_string
from .common.stream_states import InvalidTransition, check
from .compile import compile_bootstrap
from .compile.bootstrap import Compiled
from .compile.bootstrap_file import parse_bootstrap
from .http.config import ListenerConfig
from .http.downstream import ConnectionSet, DownstreamConnection
from .http.upstream_connection import UpstreamConnection
from .router.stream import Stream
from .router.stream_state import StreamState
from .upstream.cluster import Cluster

__all__ = ["CheckedStream", "Client", "FakeTransport", "FakeUpstream", "ManualLoop", "Proxy", "attach_upstream", "bootstrap",
           "static_cluster"]

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


# ---- the stream's states ----------------------------------------------------------------
def _checked(slot: Any) -> property:
    def get(self: Any) -> Any:
        return slot.__get__(self)

    def set_(self: Any, new: Any) -> None:
        try:
            old = slot.__get__(self)
        except AttributeError:  # the first, in __init__
            old = new
        try:
            check(old, new)
        except InvalidTransition as exc:  # kept: the proxy contains errors in callbacks
            CheckedStream.violations.append(str(exc))
            raise
        slot.__set__(self, new)

    return property(get, set_)


class CheckedStream(Stream):
    """A Stream that raises ``InvalidTransition`` on a state move the table does not allow, and
    records it in ``violations`` (the proxy contains an error raised in a callback, so a test
    reads the record rather than relying on the exception reaching it)."""

    __slots__ = ()
    violations: list[str] = []
    req = _checked(StreamState.req)  # type: ignore[assignment]
    resp = _checked(StreamState.resp)  # type: ignore[assignment]


# ---- the transport ---------------------------------------------------------------------
class FakeTransport(asyncio.Transport):
    """Records writes. ``close``/``abort`` end the connection; with a ``loop`` the protocol's
    ``connection_lost`` follows on the loop's next round, as asyncio's transports do (without
    one, call ``lose``). Writes after close are dropped and counted, as asyncio drops them."""

    def __init__(self, loop: Any = None, *, peername: Any = ("127.0.0.1", 40000),
                 sockname: Any = ("127.0.0.1", 15001), side: str = "downstream",
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.loop = loop
        self.side = side  # names the end in messages ("downstream", "upstream")
        self.protocol: asyncio.BaseProtocol | None = None
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.reading = True
        self.lost = False
        self.eof_written = False
        self.dropped = 0  # writes after close
        self.write_buffer_limits: tuple[int | None, int | None] | None = None
        self.extra = {"peername": peername, "sockname": sockname, "socket": None, **(extra or {})}

    @property
    def written(self) -> bytes:
        """Everything written so far."""
        return b"".join(self.writes)

    def take(self) -> bytes:
        """What was written since the last ``take``."""
        data = b"".join(self.writes)
        self.writes.clear()
        return data

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            self.dropped += 1
            return
        self.writes.append(bytes(data))

    def writelines(self, items: Iterable[bytes | bytearray | memoryview]) -> None:
        for item in items:
            self.write(item)

    def close(self) -> None:
        self._end()

    def abort(self) -> None:
        self.aborted = True
        self._end()

    def _end(self) -> None:
        if not self.closed:
            self.closed = True
            if self.loop is not None:
                self.loop.call_soon(self.lose)

    def lose(self, exc: Exception | None = None) -> None:
        """Deliver ``connection_lost`` to the protocol (once): the peer is gone."""
        self.closed = True
        if not self.lost and self.protocol is not None:
            self.lost = True
            self.protocol.connection_lost(exc)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.write_buffer_limits = (high, low)


# ---- the clock -------------------------------------------------------------------------
class Timer:
    """A callback scheduled on a ManualLoop (asyncio's Handle/TimerHandle, as far as used)."""

    __slots__ = ("_cancelled", "_when", "args", "callback")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._when = when
        self.callback = callback
        self.args = args
        self._cancelled = False

    def when(self) -> float:
        return self._when

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled


class _Task:
    """What ``asyncio.current_task()`` returns while a ManualLoop runs a coroutine."""

    def __init__(self) -> None:
        self.result: Any = None
        self._cancels = 0

    def cancel(self, msg: Any = None) -> bool:
        self._cancels += 1
        return True

    def cancelling(self) -> int:
        return self._cancels

    def uncancel(self) -> int:
        self._cancels = max(0, self._cancels - 1)
        return self._cancels

    def done(self) -> bool:
        return True


class ManualLoop:
    """An event loop stand-in whose clock moves only in ``advance``. Callbacks raise into the
    test (nothing is swallowed by an exception handler)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.ready: list[Timer] = []
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = count()
        # Called by create_connection with (protocol factory, host, port): returns (transport,
        # protocol) or raises OSError. ``Proxy`` sets it to connect fake upstreams.
        self.connector: Callable[[Callable[[], Any], Any, Any], tuple[Any, Any]] | None = None

    def time(self) -> float:
        return self.now

    def get_debug(self) -> bool:
        return False

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> Timer:
        handle = Timer(self.now, callback, args)
        self.ready.append(handle)
        return handle

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> Timer:
        handle = Timer(when, callback, args)
        heapq.heappush(self._timers, (when, next(self._seq), handle))
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> Timer:
        return self.call_at(self.now + delay, callback, *args)

    def create_task(self, coro: Coroutine[Any, Any, Any], **_: Any) -> _Task:
        """Run ``coro`` now, to its end: a task here must not wait (the pool's connect does not,
        with ``create_connection`` below). One that would is closed and raises."""
        task = _Task()
        outer = asyncio._get_running_loop()
        asyncio._set_running_loop(self)  # type: ignore[arg-type]  (asyncio.timeout asks for the task)
        asyncio.tasks._enter_task(self, task)  # type: ignore[arg-type]
        try:
            coro.send(None)
        except StopIteration as stop:
            task.result = stop.value
        else:
            coro.close()
            raise RuntimeError("a task on a ManualLoop waited for something; only tasks that never "
                               "suspend can run here")
        finally:
            asyncio.tasks._leave_task(self, task)  # type: ignore[arg-type]
            asyncio._set_running_loop(outer)
        return task

    async def create_connection(self, protocol_factory: Callable[[], Any], host: str | None = None,
                                port: int | None = None, **_: Any) -> tuple[Any, Any]:
        """``connector(protocol_factory, host, port)``; without one, connection refused."""
        if self.connector is None:
            raise ConnectionRefusedError(111, "Connection refused")
        return self.connector(protocol_factory, host, port)

    def timers(self) -> list[float]:
        """When the pending timers are due, earliest first."""
        return sorted(w for w, _, h in self._timers if not h.cancelled())

    def run_ready(self) -> None:
        """Run the callbacks made ready (call_soon), and those they make ready, until none is left."""
        for _ in range(10_000):
            if not self.ready:
                return
            ready, self.ready = self.ready, []
            for handle in ready:
                if not handle.cancelled():
                    handle.callback(*handle.args)
        raise RuntimeError("call_soon callbacks keep scheduling each other")

    def advance(self, seconds: float = 0.0) -> None:
        """Move the clock ``seconds`` on, running every timer due on the way at its own time."""
        self.advance_to(self.now + seconds)

    def advance_to(self, when: float) -> None:
        self.run_ready()
        timers = self._timers
        while timers and timers[0][0] <= when:
            due, _, handle = heapq.heappop(timers)
            if handle.cancelled():
                continue
            self.now = max(self.now, due)
            handle.callback(*handle.args)
            self.run_ready()
        self.now = max(self.now, when)


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (a static cluster's ``initialize``) to its end."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError(f"{coro!r} waited for something: it needs a real event loop")


# ---- bootstrap builders ----------------------------------------------------------------
def static_cluster(name: str, *ports: int, address: str = "127.0.0.1", **extra: Any) -> dict[str, Any]:
    """A STATIC cluster with one endpoint per port (no socket is ever opened to them here)."""
    eps = [{"endpoint": {"address": {"socket_address": {"address": address, "port_value": p}}}} for p in ports]
    return {"name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": eps}]}, **extra}


def bootstrap(routes: list[dict[str, Any]], clusters: Iterable[dict[str, Any]] = (),
              http_filters: list[dict[str, Any]] | None = None, **hcm: Any) -> dict[str, Any]:
    """One listener ("main") whose connection manager has ``routes`` in one virtual host for
    every domain, ``http_filters`` before the router, and ``hcm``'s other fields."""
    return {
        "node": {"id": "sidecar~127.0.0.1~test.default~default.svc.cluster.local", "cluster": "test"},
        "static_resources": {
            "listeners": [{
                "name": "main", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {"@type": HCM, "stat_prefix": "ingress",
                                     "route_config": {"virtual_hosts": [
                                         {"name": "all", "domains": ["*"], "routes": routes}]},
                                     "http_filters": [*(http_filters or []), ROUTER], **hcm},
                }]}],
            }],
            "clusters": list(clusters),
        },
    }


def compile_config(doc: dict[str, Any], seed: int = 1) -> Compiled:
    """``doc`` parsed and compiled as the process does at startup."""
    loaded = parse_bootstrap(doc)
    return compile_bootstrap(loaded.message, random.Random(seed), loaded.warnings)


# ---- the proxy and its ends --------------------------------------------------------------
class Proxy:
    """A compiled listener's connections on a ManualLoop. Every stream its connection manager
    makes is kept in ``streams`` (to read response flags and timings)."""

    def __init__(self, doc: dict[str, Any], loop: ManualLoop | None = None, seed: int = 1,
                 listener: str | None = None) -> None:
        self.loop = loop or ManualLoop()
        self.compiled = compile_config(doc, seed)
        runtime = self.compiled.runtime
        self.listener: ListenerConfig = next(lc for lc in runtime.listeners
                                             if listener is None or lc.name == listener)
        self.clusters: dict[str, Cluster] = runtime.clusters
        for cluster in self.clusters.values():
            run_sync(cluster.initialize(self.loop))  # type: ignore[arg-type]
        self.shared = ConnectionSet(self.loop, random.Random(seed))  # type: ignore[arg-type]
        self.streams: list[Any] = []
        self.upstreams: list[FakeUpstream] = []  # every upstream connection made, in order
        self.refused: set[tuple[str, int]] = set()  # (address, port) of hosts that refuse connections
        self.loop.connector = self._connect
        hcm = self.listener.hcm
        make = hcm.new_stream

        def recorded(*args: Any) -> Any:
            stream = make(*args)
            self.streams.append(stream)
            return stream

        hcm.new_stream = recorded

    @property
    def stats(self) -> Any:
        """The connection manager's HttpStats."""
        return self.listener.hcm.stats

    def flags(self, i: int = -1) -> str:
        """The response flags of the ``i``-th stream, as the access log prints them."""
        return flags_string(self.streams[i].flags)

    def connect(self, peer: tuple[str, int] = ("10.0.0.1", 40000)) -> Client:
        """A client connection, accepted."""
        transport = FakeTransport(self.loop, peername=peer)
        conn = DownstreamConnection(self.listener, self.shared)
        transport.set_protocol(conn)
        conn.connection_made(transport)
        return Client(self.loop, conn, transport)

    def upstream(self, cluster: str, n: int = 1, host: int = 0) -> list[FakeUpstream]:
        """``n`` connected fake upstream connections, idle in the pool of the cluster's ``host``-th
        host: the next streams sent there take them (the first one first)."""
        pool = self.clusters[cluster].hosts[host].pool
        ups = [FakeUpstream.connect(pool, self.loop) for _ in range(n)]
        self.upstreams += ups
        for up in reversed(ups):
            pool.release(up.conn)
        return ups

    def _connect(self, factory: Callable[[], Any], host: Any, port: Any) -> tuple[FakeTransport, Any]:
        """The pool's connect (through ManualLoop.create_connection): a FakeUpstream."""
        if (host, port) in self.refused:
            raise ConnectionRefusedError(111, "Connection refused")
        up = FakeUpstream.open(factory(), (host, port), self.loop)
        self.upstreams.append(up)
        return up.transport, up.conn


class Client:
    """The client's end of a DownstreamConnection."""

    def __init__(self, loop: ManualLoop, conn: DownstreamConnection, transport: FakeTransport) -> None:
        self.loop = loop
        self.conn = conn
        self.transport = transport

    def send(self, data: bytes) -> None:
        """Bytes from the client, then the loop's round (the batched writes go out)."""
        self.conn.data_received(data)
        self.loop.run_ready()

    def received(self) -> bytes:
        """What the proxy wrote to the client since the last call."""
        self.loop.run_ready()
        return self.transport.take()

    def reset(self) -> None:
        """The client goes away (its connection is lost)."""
        self.transport.lose(ConnectionResetError())
        self.loop.run_ready()

    @property
    def closed(self) -> bool:
        return self.transport.closed


class FakeUpstream:
    """One upstream connection on a FakeTransport: read what the proxy sent (``received``),
    answer (``respond``) or go away (``reset``)."""

    def __init__(self, conn: UpstreamConnection, transport: FakeTransport, loop: ManualLoop) -> None:
        self.conn = conn
        self.transport = transport
        self.loop = loop

    @classmethod
    def open(cls, conn: Any, peer: tuple[str, int], loop: ManualLoop) -> FakeUpstream:
        """``conn`` (a protocol) connected to a FakeTransport whose peer is ``peer``."""
        transport = FakeTransport(loop, peername=peer, side="upstream")
        transport.set_protocol(conn)
        conn.connection_made(transport)
        return cls(conn, transport, loop)

    @classmethod
    def connect(cls, pool: Any, loop: ManualLoop) -> FakeUpstream:
        """A connection of ``pool``'s connection class, connected (not yet in the pool)."""
        make = pool.options.connection or UpstreamConnection
        return cls.open(make(pool), (pool.host.address, pool.host.port), loop)

    def received(self) -> bytes:
        """What the proxy wrote to this upstream since the last call."""
        self.loop.run_ready()
        return self.transport.take()

    def respond(self, data: bytes) -> None:
        """Bytes from the upstream, then the loop's round."""
        self.conn.data_received(data)
        self.loop.run_ready()

    def reset(self) -> None:
        """The upstream closes the connection."""
        self.transport.lose(ConnectionResetError())
        self.loop.run_ready()


def attach_upstream(stream: Any, loop: ManualLoop) -> FakeUpstream:
    """Give a routed ``stream`` (it has a host) a fresh fake upstream connection, as the pool
    does once a connect completes; its request head and any body kept meanwhile are sent."""
    up = FakeUpstream.connect(stream.host.pool, loop)
    up.conn.requests = 1
    up.conn.attach(stream)
    stream.on_upstream_ready(up.conn, False)
    loop.run_ready()
    return up
