"""Lifecycle: initialize clusters, open listeners and admin, drain on SIGTERM, stop."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
from typing import Any

from .admin import AdminServer
from .compile import Compiled
from .downstream import ConnectionSet, connection_factory

log = logging.getLogger("pilotfish.proxy")

PRE_INITIALIZING, LIVE, DRAINING = "PRE_INITIALIZING", "LIVE", "DRAINING"


class ProxyServer:
    def __init__(self, compiled: Compiled, *, rng: random.Random | None = None,
                 drain_time: float = 5.0, command_line: dict[str, Any] | None = None) -> None:
        self.compiled = compiled
        self.config = compiled.runtime
        self.stats = compiled.stats
        self.rng = rng or random.Random()
        self.drain_time = drain_time
        self.command_line = command_line or {}
        self.state = PRE_INITIALIZING
        self.started_at = time.time()
        self.listener_ports: dict[str, int] = {}
        self.admin_port = 0
        self._servers: list[asyncio.base_events.Server] = []
        self._admin: AdminServer | None = None
        self._shared: ConnectionSet | None = None
        self._stop = asyncio.Event()
        self._stopped = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._shared = ConnectionSet(loop, self.rng)
        if self.config.admin is not None:
            self._admin = AdminServer(self)
            self.admin_port = await self._admin.start(self.config.admin.address, self.config.admin.port)
        for cluster in self.config.clusters.values():  # Envoy warms clusters before listeners
            await cluster.initialize(loop)
        for lc in self.config.listeners:
            server = await loop.create_server(
                connection_factory(lc, self._shared), lc.address, lc.port,
                reuse_port=lc.reuse_port, backlog=lc.backlog)
            self._servers.append(server)
            self.listener_ports[lc.name] = server.sockets[0].getsockname()[1]
        self.state = LIVE
        self.stats.server["live"] = 1

    def request_shutdown(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_shutdown)

    async def serve_forever(self) -> None:
        await self.start()
        await self._stop.wait()
        await self.stop()

    async def stop(self, drain_time: float | None = None) -> None:
        """Stop accepting, let in-flight requests finish within the drain period, then exit."""
        if self._stopped:
            return
        self._stopped = True
        self.state = DRAINING
        self.stats.server["live"] = 0
        for server in self._servers:
            server.close()
        shared = self._shared
        if shared is not None:
            shared.draining = True
            for conn in list(shared.connections):
                conn.drain()
            deadline = time.monotonic() + (self.drain_time if drain_time is None else drain_time)
            while shared.connections and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            for conn in list(shared.connections):
                conn.abort()
        for cluster in self.config.clusters.values():
            cluster.close()
        for sink in self.compiled.sinks.values():
            sink.close()
        if self._admin is not None:
            await self._admin.stop()
        for server in self._servers:
            await server.wait_closed()
        self._stop.set()
