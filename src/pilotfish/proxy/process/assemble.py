"""The composition root: a proxy process built from its parts, its context passed explicitly.

The server (server.py) knows its admin endpoint and config source only as factories; this is
the one module that picks them: the admin server (admin.py) with the worker group it acts on,
the config source (config_source.py: the ADS client, or worker 0's relay in a sibling), the
clocks. ``run_single`` is ``pilotfish proxy``, ``run_group`` is ``--concurrency N`` (a
supervisor forking workers, workers.py), and ``run_worker`` is one worker's life.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..compile import Compiled
from .admin import AdminServer, drain_listeners, quit_now
from .config_source import open_config_source
from .relay import RelayHub
from .server import ProxyServer
from .workers import Supervisor, WorkerContext, serve_control

log = logging.getLogger("pilotfish.proxy")


def build_proxy(compiled: Compiled, *, group: WorkerContext | None = None, relay: RelayHub | None = None,
                rng: random.Random | None = None, drain_time: float = 5.0,
                command_line: dict[str, Any] | None = None,
                clock: Callable[[], float] = time.time) -> ProxyServer:
    """A ProxyServer with its admin server and config source wired in (not started).

    ``group``: the worker group this process belongs to (None: a single process); ``relay``:
    worker 0's relay hub; ``clock``: the wall clock (uptime, xDS update times).
    """
    return ProxyServer(
        compiled, rng=rng, drain_time=drain_time, command_line=command_line, clock=clock,
        admin=lambda proxy: AdminServer(proxy, group),
        config_source=lambda proxy: open_config_source(proxy, group=group, relay=relay, clock=clock))


def log_ports(server: ProxyServer) -> None:
    for name, port in server.listener_ports.items():
        log.info("listener %s on port %d", name, port)
    if server.admin_port:
        log.info("admin on port %d", server.admin_port)


async def serve(server: ProxyServer, before_stop: Callable[[], None] | None = None) -> None:
    """Start (given up at once if SIGTERM/SIGINT come first), serve until told to stop, drain."""
    if await server.start_unless_stopped():
        log_ports(server)
        await server.shutdown_requested()
    if before_stop is not None:
        before_stop()
    await server.stop()


def run_loop(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` on uvloop (the default asyncio loop if uvloop is missing)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep the default loop working
        asyncio.run(main())  # type: ignore[arg-type]
    else:
        uvloop.run(main())  # type: ignore[arg-type]


def run_single(compiled: Compiled, drain_time: float, options: dict[str, Any],
               before_stop: Callable[[], None] | None = None) -> None:
    """``pilotfish proxy``: one process. OSError when a port cannot be bound."""
    async def main() -> None:
        server = build_proxy(compiled, drain_time=drain_time, command_line=options)
        server.install_signal_handlers()
        await serve(server, before_stop)

    run_loop(main)


def run_group(compiled: Compiled, count: int, drain_time: float, options: dict[str, Any]) -> int:
    """``--concurrency N``: a supervisor and N workers sharing the listeners; the exit code."""
    return Supervisor(count, lambda ctx: run_worker(ctx, compiled, drain_time, options),
                      clock=time.monotonic).run(compiled)


def run_worker(ctx: WorkerContext, compiled: Any, drain_time: float, options: dict[str, Any]) -> int:
    """A worker's life: serve until told to stop, then drain."""
    relay: RelayHub | None = None
    if ctx.index != 0:
        compiled.runtime.admin = None  # worker 0 serves admin for the group
    elif compiled.runtime.bootstrap.HasField("dynamic_resources"):
        relay = RelayHub()  # worker 0 runs the group's one ADS client (config_source.py)

    async def main() -> None:
        server = build_proxy(compiled, group=ctx, relay=relay, drain_time=drain_time, command_line=options)
        server.install_signal_handlers()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, drain_listeners, server)
        loop.add_signal_handler(signal.SIGQUIT, quit_now, server)
        control = await serve_control(ctx, server.stats, relay)
        if await server.start_unless_stopped():
            if ctx.index == 0:
                log_ports(server)
            await server.shutdown_requested()
        control.close()
        await server.stop()
        if relay is not None:
            relay.close()

    try:
        run_loop(main)
    except OSError as exc:
        log.error("worker %d cannot start: %s", ctx.index, exc)
        return 1
    return 0
