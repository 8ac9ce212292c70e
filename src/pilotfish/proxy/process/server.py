"""Lifecycle: initialize clusters, open listeners and admin, drain on SIGTERM, stop.

The server knows its admin endpoint and its config source only through the small protocols
below: the composition root (assemble.py) builds them and hands them in as factories.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Protocol

from ..compile import Compiled
from ..http.date_header import date_line
from ..http.downstream import ConnectionSet, DownstreamConnection
from ..http.overload import ConnectionGate, OverloadManager, RequestShed
from ..compile.compiled import RuntimeConfig
from ..http.config import ListenerConfig

log = logging.getLogger("pilotfish.proxy")

PRE_INITIALIZING, LIVE, DRAINING = "PRE_INITIALIZING", "LIVE", "DRAINING"


class _ActiveListener:
    """A bound listener: its socket, the config new connections get, and their connection set."""

    __slots__ = ("config", "server", "conns")

    def __init__(self, config: ListenerConfig, conns: ConnectionSet) -> None:
        self.config = config
        self.conns = conns
        self.server: asyncio.base_events.Server | None = None

    def new_connection(self) -> DownstreamConnection:
        return DownstreamConnection(self.config, self.conns)


class AdminEndpoint(Protocol):
    """The admin server (admin.py): bound first, closed last."""

    async def start(self, address: str, port: int) -> int: ...
    async def stop(self) -> None: ...


class ConfigSource(Protocol):
    """Where dynamic config comes from: the ADS client, or worker 0's relay in a sibling.
    ``ready`` is set once the initial config is in (or its initial_fetch_timeout passed)."""

    ready: asyncio.Event

    async def stop(self) -> None: ...


class ProxyServer:
    def __init__(self, compiled: Compiled, *, rng: random.Random | None = None,
                 drain_time: float = 5.0, command_line: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.time,
                 admin: Callable[[ProxyServer], AdminEndpoint] | None = None,
                 config_source: Callable[[ProxyServer], ConfigSource | None] | None = None) -> None:
        self.compiled = compiled
        self.config = compiled.runtime
        self.stats = compiled.stats
        self.rng = rng or random.Random()
        self.drain_time = drain_time
        self.command_line = command_line or {}
        self.clock = clock  # wall clock: uptime, /config_dump times
        self.state = PRE_INITIALIZING
        self.started_at = clock()
        self.listener_ports: dict[str, int] = {}
        self.admin_port = 0
        self._listeners: dict[str, _ActiveListener] = {}
        self._draining: list[ConnectionSet] = []  # connections of removed/replaced listeners
        self._make_admin = admin
        self._open_config_source = config_source
        self._admin: AdminEndpoint | None = None
        self.xds: ConfigSource | None = None  # when the bootstrap has dynamic_resources
        self._stop = asyncio.Event()
        self._stopped = False
        self.overload: OverloadManager | None = None
        self.gate: ConnectionGate | None = None
        oc = compiled.overload  # overload_manager and the connection limits (http/overload.py)
        if (oc is not None and oc.needs_gate) or any(lc.connection_limit is not None for lc in self.config.listeners):
            self.gate = ConnectionGate(oc.global_max_connections if oc is not None else None, self.rng)
        if oc is not None:
            self.overload = oc.manager(self.gate, self._shed_requests)
            for prefix, scope in self.overload.scopes():
                self.stats.scopes.append((prefix, prefix, "", "", scope))  # type: ignore[arg-type]  # (untagged)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        date_line.start(loop)  # the Date header's line, kept current while serving
        if self.config.admin is not None and self._make_admin is not None:
            self._admin = self._make_admin(self)
            self.admin_port = await self._admin.start(self.config.admin.address, self.config.admin.port)
        for cluster in self.config.clusters.values():  # Envoy warms clusters before listeners
            await cluster.initialize(loop)
        if self._open_config_source is not None:
            self.xds = self._open_config_source(self)
        if self.xds is not None:  # Envoy's init: CDS, EDS, LDS, RDS before listeners accept
            await self.xds.ready.wait()
        for lc in self.config.listeners:
            self._listeners[lc.name] = await self._bind(lc)
        self.state = LIVE
        self.stats.server["live"] = 1
        if self.overload is not None:
            self.overload.start(loop)
        self.stats.start_flush(loop)  # histogram intervals, as Envoy's stats flush

    @property
    def _shared(self) -> Any:
        """Every open downstream connection, across listeners (``_shared.connections``)."""
        sets = [*(a.conns for a in self._listeners.values()), *self._draining]
        return SimpleNamespace(connections=set().union(*(s.connections for s in sets)))

    def _connection_set(self, loop: asyncio.AbstractEventLoop, lc: ListenerConfig) -> ConnectionSet:
        gate = self.gate
        if gate is None and lc.connection_limit is not None:  # a listener limit arriving by LDS (counts from here on)
            gate = self.gate = ConnectionGate(None, self.rng)
        return ConnectionSet(loop, self.rng, gate, lc.connection_limit, lc.ignore_global_limit, lc.bypass_overload)

    def _shed_requests(self, shed: RequestShed | None) -> None:
        """An overload action on requests changed: every connection manager reads it."""
        for active in self._listeners.values():
            active.config.hcm.overload = None if active.config.bypass_overload else shed
        for conns in (*(a.conns for a in self._listeners.values()), *self._draining):
            for conn in conns.connections:  # (a connection may still hold an older snapshot's manager)
                conn.hcm.overload = None if conns.bypass_overload else shed

    async def _bind(self, lc: ListenerConfig) -> _ActiveListener:
        loop = asyncio.get_running_loop()
        active = _ActiveListener(lc, self._connection_set(loop, lc))
        active.server = await loop.create_server(active.new_connection, lc.address, lc.port,
                                                 reuse_port=lc.reuse_port, backlog=lc.backlog)
        self.listener_ports[lc.name] = active.server.sockets[0].getsockname()[1]
        return active

    async def apply_config(self, runtime: RuntimeConfig) -> None:
        """Swap in a new snapshot: bind what is new first, then switch everything in one step.

        New connections and new streams use the new snapshot; a stream already routed keeps
        its route, cluster and host. A listener whose message is unchanged keeps its socket and
        its connections (their next requests see the new routes); a changed or removed listener
        drains its connections. Clusters no longer present close their idle connections.
        """
        if self.state != LIVE:  # starting: start() binds the listeners; draining: bind nothing
            self._swap_clusters(runtime)
            return
        bound: dict[str, _ActiveListener] = {}
        try:
            for lc in runtime.listeners:
                old = self._listeners.get(lc.name)
                if old is None or (old.config.address, old.config.port) != (lc.address, lc.port):
                    bound[lc.name] = await self._bind(lc)
        except OSError:
            for active in bound.values():
                assert active.server is not None
                active.server.close()
            raise
        # From here on nothing yields: the swap is atomic for the request path.
        self._swap_clusters(runtime)
        keep = set()
        for lc in runtime.listeners:
            keep.add(lc.name)
            old = self._listeners.get(lc.name)
            new = bound.get(lc.name)
            if new is not None:
                self._listeners[lc.name] = new
                if old is not None:
                    self._retire(old, close_socket=True)
            else:
                assert old is not None
                if old.config.key != lc.key:
                    self._retire(old, close_socket=False)
                    old.conns = self._connection_set(old.conns.loop, lc)
                else:
                    for conn in old.conns.connections:
                        conn.hcm = lc.hcm
                old.config = lc
        for name in [n for n in self._listeners if n not in keep]:
            self._retire(self._listeners.pop(name), close_socket=True)
            self.listener_ports.pop(name, None)
        if self.overload is not None and self.overload.shed is not None:
            self._shed_requests(self.overload.shed)  # the new connection managers shed too

    def _swap_clusters(self, runtime: RuntimeConfig) -> None:
        kept = {id(c) for c in runtime.clusters.values()}
        old = self.config.clusters
        self.config = runtime
        self.compiled.runtime = runtime
        for cluster in old.values():
            if id(cluster) not in kept:
                cluster.close()

    def _retire(self, active: _ActiveListener, close_socket: bool) -> None:
        """Stop giving ``active``'s connections new work: each closes after its response."""
        if close_socket and active.server is not None:
            active.server.close()
        conns = active.conns
        conns.draining = True
        for conn in list(conns.connections):
            conn.drain()
        self._draining.append(conns)
        loop = conns.loop
        loop.call_later(self.drain_time, self._abort_drained, conns)

    def _abort_drained(self, conns: ConnectionSet) -> None:
        for conn in list(conns.connections):
            conn.abort()
        if conns in self._draining:
            self._draining.remove(conns)

    def request_shutdown(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_shutdown)

    async def start_unless_stopped(self) -> bool:
        """``start()``, given up as soon as a shutdown is requested; True when the server is live.

        The initial xDS fetch may take its whole initial_fetch_timeout (15 s by default): a
        SIGTERM meanwhile must stop the proxy now, as it stops Envoy, not once the fetch is over.
        """
        starting = asyncio.ensure_future(self.start())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait((starting, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
        if starting.cancelled():
            return False
        starting.result()  # a start that failed raises here
        return True

    async def shutdown_requested(self) -> None:
        await self._stop.wait()

    async def stop(self, drain_time: float | None = None) -> None:
        """Stop accepting, let in-flight requests finish within the drain period, then exit."""
        if self._stopped:
            return
        self._stopped = True
        date_line.stop()
        if self.overload is not None:
            self.overload.stop()
        self.state = DRAINING
        self.stats.server["live"] = 0
        self.stats.stop_flush()
        if self.xds is not None:
            await self.xds.stop()
        sets = [*self._draining, *(a.conns for a in self._listeners.values())]
        for active in self._listeners.values():
            if active.server is not None:
                active.server.close()
        for shared in sets:
            shared.draining = True
            for conn in list(shared.connections):
                conn.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.drain_time if drain_time is None else drain_time)
        while any(s.connections for s in sets) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for shared in sets:
            for conn in list(shared.connections):
                conn.abort()
        for cluster in self.config.clusters.values():
            cluster.close()
        for sink in self.compiled.sinks.values():
            sink.close()
        if self._admin is not None:
            await self._admin.stop()
        for active in self._listeners.values():
            if active.server is not None:
                await active.server.wait_closed()
        self._stop.set()
