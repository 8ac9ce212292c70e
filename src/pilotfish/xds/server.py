"""The ADS server (state of the world) on ``grpc.aio``: what the control plane serves proxies.

Configuration comes from a ``Generator`` (the control plane's translation, behind a Protocol so
this package knows nothing of it). A new stream gets the full config for what it subscribes to;
``push(version)`` regenerates every subscribed type of every connection (or those ``affects``
selects) and sends only the types whose resources changed, clusters first, then endpoints,
listeners and routes (type_urls.ORDER), so what a listener names already exists. The ACK/NACK
rules live in connection.py; the metrics in server_stats.py.

Generation is synchronous CPU work done on the loop: a push works one connection at a time and
yields to the loop between connections, so requests and other streams keep moving. Responses
wait in a per-stream outbox holding the latest response per type: a slow reader gets the newest
state, not a backlog of superseded ones.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Protocol

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf.message import Message

from .connection import Connection, ConnectionStatus, EncodeCache, Outgoing, Verdict, encode
from .server_stats import ServerStats
from .type_urls import KIND, ORDER

log = logging.getLogger("pilotfish.xds.server")

Request = discovery_pb2.DiscoveryRequest
Response = discovery_pb2.DiscoveryResponse
Node = base_pb2.Node

#: gRPC server options: keepalive as Istio's xDS server (30 s pings, 10 s to answer).
GRPC_OPTIONS = (("grpc.keepalive_time_ms", 30_000), ("grpc.keepalive_timeout_ms", 10_000),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000))


class Generator(Protocol):
    """Builds one type's resources for one proxy, by name (``names`` empty: every one).

    For RDS and EDS a name it does not return is answered with an empty resource. A
    ``ValueError`` (a node it refuses) closes the stream with INVALID_ARGUMENT.
    """

    def generate(self, node: Node, type_url: str, names: frozenset[str]) -> Mapping[str, Message]: ...


class GenerationError(Exception):
    """The generator failed while answering a request: the stream ends with this status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Stream:
    """One open stream: its protocol state and the responses waiting to be written."""

    __slots__ = ("conn", "peer", "outbox", "wake", "closed", "error")

    def __init__(self, peer: str) -> None:
        self.conn: Connection | None = None
        self.peer = peer
        self.outbox: dict[str, Outgoing] = {}  # type URL -> the latest response not yet written
        self.wake = asyncio.Event()
        self.closed = False
        self.error: GenerationError | None = None

    def send(self, resp: Outgoing) -> None:
        self.outbox[resp.type_url] = resp
        self.wake.set()

    def close(self, error: GenerationError | None = None) -> None:
        if error is not None and self.error is None:
            self.error = error
        self.closed = True
        self.wake.set()

    async def next(self) -> Response | None:
        """The next response to write, warming order first; None once closed."""
        while True:
            if self.error is not None:
                return None
            for type_url in (*ORDER, *self.outbox):
                if type_url in self.outbox:
                    return self.outbox.pop(type_url).build()
            if self.closed:
                return None
            self.wake.clear()
            await self.wake.wait()


class AdsServer:
    """``await start(host, port)`` returns the port; ``push(version)`` after a config change;
    ``connections()`` for proxy-status; ``stats.render()`` for /metrics."""

    def __init__(self, generator: Generator, *, version: str = "0", control_plane: str = "",
                 on_connect: Callable[[Node], None] | None = None,
                 on_disconnect: Callable[[Node], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 grpc_options: Iterable[tuple[str, Any]] = GRPC_OPTIONS) -> None:
        self.generator = generator
        self.version = version
        self.control_plane = control_plane  # DiscoveryResponse.control_plane.identifier
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.clock = clock
        self.wall_clock = wall_clock
        self.grpc_options = tuple(grpc_options)
        self.stats = ServerStats()
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self._streams: dict[str, _Stream] = {}  # connection id -> stream
        self._ids = itertools.count(1)
        self._nonces = itertools.count(1)
        self._nonce_prefix = secrets.token_hex(4)  # nonces of an earlier server never match
        # connection id -> (when its oldest waiting push began, the type URLs to regenerate or None: all)
        self._queued: dict[str, tuple[float, frozenset[str] | None]] = {}
        self._pusher: asyncio.Task[None] | None = None
        self._encoded: EncodeCache = {}  # serialized messages of the current version (connection.encode)

    # ---- lifecycle --------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve on ``host:port`` (0: a port the OS picks); returns the port."""
        server = grpc.aio.server(options=self.grpc_options)
        self.add_to(server)
        self.port = server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port}")
        await server.start()
        self.server = server
        return self.port

    def add_to(self, server: grpc.aio.Server) -> None:
        """Register the ADS service on a server the caller runs (one port for several services)."""
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(_Service(self), server)

    async def stop(self, grace: float | None = None) -> None:
        """Stop serving; open streams end after ``grace`` seconds (None: at once)."""
        if self._pusher is not None:
            self._pusher.cancel()
            self._pusher = None
        self._queued.clear()
        if self.server is not None:
            server, self.server = self.server, None
            await server.stop(grace)

    # ---- pushes -----------------------------------------------------------------------------
    def push(self, version: str, affects: Callable[[Node], bool] | None = None,
             types: Iterable[str] | None = None) -> None:
        """A new config ``version``: regenerate for every connection (or those ``affects``
        selects) and send what changed; ``types``: only these type URLs can have changed (None:
        any). Returns at once; ``flush()`` waits for the work."""
        self.version = version
        self._encoded = {}  # a new version: new messages
        now = self.clock()
        wanted = None if types is None else frozenset(types)
        for conn_id, stream in self._streams.items():
            conn = stream.conn
            if conn is None or (affects is not None and not affects(conn.node)):
                continue
            queued = self._queued.get(conn_id)
            if queued is None:
                self._queued[conn_id] = (now, wanted)
            else:  # merged with a waiting push: keep its start, regenerate both pushes' types
                started, before = queued
                self._queued[conn_id] = (started, None if before is None or wanted is None else before | wanted)
        if self._queued and (self._pusher is None or self._pusher.done()):
            self._pusher = asyncio.get_running_loop().create_task(self._drain())

    async def flush(self) -> None:
        """Wait until every push so far is generated and handed to its stream."""
        while self._pusher is not None and not self._pusher.done():
            await asyncio.shield(self._pusher)

    async def _drain(self) -> None:
        while self._queued:
            conn_id = next(iter(self._queued))
            started, types = self._queued.pop(conn_id)
            stream = self._streams.get(conn_id)
            if stream is not None and not stream.closed:
                self._push_to(stream, started, types)
            await asyncio.sleep(0)  # let requests and other streams move between connections

    def _push_to(self, stream: _Stream, started: float, types: frozenset[str] | None = None) -> None:
        conn = stream.conn
        assert conn is not None
        for type_url in (*ORDER, *(t for t in conn.watches if t not in ORDER)):
            if type_url not in conn.watches or (types is not None and type_url not in types):
                continue
            try:
                self._answer(stream, type_url, force=False, push_started=started)
            except GenerationError as exc:
                # The proxy keeps what it has; the next push tries again.
                log.error("xDS: cannot push %s to %s: %s", KIND.get(type_url, type_url), conn.node.id, exc)

    # ---- requests ---------------------------------------------------------------------------
    async def _read(self, requests: AsyncIterator[Request], stream: _Stream) -> None:
        try:
            async for req in requests:
                if stream.conn is None:
                    if not req.node.id:
                        stream.close(GenerationError(grpc.StatusCode.INVALID_ARGUMENT,
                                                     "the first request must carry node.id"))
                        return
                    self._open(stream, req.node)
                try:
                    self._on_request(stream, req)
                except GenerationError as exc:
                    stream.close(exc)
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the peer went away mid-read
            log.debug("xDS stream from %s ended: %s", stream.peer, exc)
        finally:
            stream.close()

    def _on_request(self, stream: _Stream, req: Request) -> None:
        conn = stream.conn
        assert conn is not None
        verdict = conn.on_request(req)
        type_url = req.type_url
        if verdict is Verdict.NACK:
            watch = conn.watches[type_url]
            self.stats.nacked(type_url, conn.node.id, watch.nack_error)
            log.warning("xDS: %s rejected %s version %s: %s", conn.node.id, KIND.get(type_url, type_url),
                        watch.nack_version, watch.nack_error)
        elif verdict in (Verdict.ACK, Verdict.RENAME):
            self.stats.acked(type_url, conn.node.id)
            elapsed = conn.converged(type_url, req.response_nonce, self.clock())
            if elapsed is not None:
                self.stats.converged(elapsed)
        elif verdict in (Verdict.STALE, Verdict.UNKNOWN):
            self.stats.stale(type_url)
        if verdict.respond:
            self._answer(stream, type_url, force=True)

    def _answer(self, stream: _Stream, type_url: str, *, force: bool,
                push_started: float | None = None) -> None:
        """Generate ``type_url`` for the stream's watch and send it (when changed or forced)."""
        conn = stream.conn
        assert conn is not None
        watch = conn.watches[type_url]
        if not watch.active:
            return
        began = self.clock()
        try:
            generated = self.generator.generate(conn.node, type_url, watch.query())
            resources = encode(type_url, generated, watch, self._encoded)
        except ValueError as exc:
            raise GenerationError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from exc
        except Exception as exc:
            log.exception("xDS: generating %s for %s failed", KIND.get(type_url, type_url), conn.node.id)
            raise GenerationError(grpc.StatusCode.INTERNAL, f"generating {type_url}: {exc}") from exc
        resp = conn.respond(type_url, resources, self.version, self._nonce, force=force,
                            push_started=push_started)
        if resp is None:
            return
        if self.control_plane:
            resp.control_plane = self.control_plane
        stream.send(resp)
        self.stats.pushed(type_url, self.clock() - began)

    def _nonce(self) -> str:
        return f"{self._nonce_prefix}-{next(self._nonces)}"

    # ---- connections ------------------------------------------------------------------------
    def _open(self, stream: _Stream, node: Node) -> None:
        conn_id = f"{node.id}-{next(self._ids)}"
        own = Node()
        own.CopyFrom(node)  # the request's message is not ours to keep
        stream.conn = Connection(conn_id, own, stream.peer, self.wall_clock())
        self._streams[conn_id] = stream
        self.stats.connect()
        log.info("xDS: %s connected from %s", node.id, stream.peer)
        if self.on_connect is not None:
            self.on_connect(stream.conn.node)

    def _close(self, stream: _Stream) -> None:
        conn = stream.conn
        if conn is None or self._streams.pop(conn.id, None) is None:
            return
        self._queued.pop(conn.id, None)
        self.stats.disconnect(conn.node.id)
        log.info("xDS: %s disconnected", conn.node.id)
        if any(s.conn is not None and s.conn.node.id == conn.node.id for s in self._streams.values()):
            return  # the proxy reconnected before its old stream was seen to end: it is still here
        if self.on_disconnect is not None:
            try:
                self.on_disconnect(conn.node)
            except Exception:  # noqa: BLE001 - a callback bug must not break the server
                log.exception("xDS: on_disconnect failed for %s", conn.node.id)

    def connections(self) -> list[ConnectionStatus]:
        """Every connected proxy, oldest first, with where each type stands."""
        return [s.conn.status() for s in self._streams.values() if s.conn is not None]

    # ---- the gRPC method --------------------------------------------------------------------
    async def stream(self, requests: AsyncIterator[Request], context: grpc.aio.ServicerContext[Any, Any]
                     ) -> AsyncIterator[Response]:
        stream = _Stream(context.peer())
        reader = asyncio.get_running_loop().create_task(self._read(requests, stream))
        try:
            while (resp := await stream.next()) is not None:
                yield resp
            if stream.error is not None:
                context.set_code(stream.error.code)
                context.set_details(str(stream.error))
        finally:
            reader.cancel()
            self._close(stream)


class _Service(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """The gRPC servicer; delta xDS answers UNIMPLEMENTED (the base class does)."""

    def __init__(self, server: AdsServer) -> None:
        self._server = server

    async def StreamAggregatedResources(self, request_iterator: Any, context: Any) -> AsyncIterator[Response]:
        async for resp in self._server.stream(request_iterator, context):
            yield resp
