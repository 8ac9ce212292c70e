"""``pilotfish proxy``: run the data plane from an Envoy v3 bootstrap."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import click

_LEVELS = ("trace", "debug", "info", "warning", "warn", "error", "critical", "off")


@click.command("proxy")
@click.option("--bootstrap", "-c", "--config-path", "bootstrap", required=True,
              help="Envoy v3 bootstrap, YAML or JSON.")
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes sharing the listeners (SO_REUSEPORT).")
@click.option("--base-id", type=int, default=0, show_default=True,
              help="Accepted for Envoy compatibility; there is no hot restart to separate.")
@click.option("--log-level", "-l", type=click.Choice(_LEVELS, case_sensitive=False), default="info",
              show_default=True)
@click.option("--drain-time-s", type=float, default=5.0, show_default=True,
              help="How long in-flight requests may take to finish after SIGTERM.")
def proxy(bootstrap: str, concurrency: int, base_id: int, log_level: str, drain_time_s: float) -> None:
    """Run the proxy (Envoy's role) configured by an Envoy v3 bootstrap."""
    from ..proxy.compile.bootstrap_file import load_bootstrap
    from ..proxy.compile import compile_bootstrap
    from ..proxy.common.errors import ProxyConfigError

    level = {"trace": "DEBUG", "warn": "WARNING", "off": "CRITICAL"}.get(log_level.lower(), log_level.upper())
    logging.basicConfig(level=level, format="[%(asctime)s][%(process)d][%(levelname)s] %(message)s",
                        stream=sys.stderr)
    log = logging.getLogger("pilotfish.proxy")
    try:
        loaded = load_bootstrap(bootstrap)
        compiled = compile_bootstrap(loaded.message, warnings=loaded.warnings)
    except ProxyConfigError as exc:
        for err in exc.errors:  # every problem the bootstrap has, one line each
            click.echo(f"error: {bootstrap}: {err}", err=True)
        sys.exit(1)
    for w in loaded.warnings:
        log.warning("%s", w)
    options = {"config_path": bootstrap, "concurrency": concurrency, "base_id": base_id,
               "log_level": log_level, "drain_time_s": drain_time_s}
    children: list[int] = []
    if concurrency > 1:  # a supervisor forks and restarts the workers (proxy/workers.py)
        from ..proxy.workers import Supervisor, run_worker

        try:
            sys.exit(Supervisor(concurrency, lambda i: run_worker(compiled, drain_time_s, options)).run(compiled))
        except OSError as exc:
            click.echo(f"error: cannot start: {exc}", err=True)
            sys.exit(1)
    try:
        _run(compiled, drain_time_s, options, children)
    except OSError as exc:
        click.echo(f"error: cannot start: {exc}", err=True)
        _stop_children(children)
        sys.exit(1)
    _stop_children(children)


def _run(compiled: object, drain_time: float, options: dict, children: list[int]) -> None:
    from ..proxy.server import ProxyServer

    async def main() -> None:
        server = ProxyServer(compiled, drain_time=drain_time, command_line=options)  # type: ignore[arg-type]
        server.install_signal_handlers()
        await server.start()
        log = logging.getLogger("pilotfish.proxy")
        for name, port in server.listener_ports.items():
            log.info("listener %s on port %d", name, port)
        if server.admin_port:
            log.info("admin on port %d", server.admin_port)
        await server._stop.wait()
        _stop_children(children, wait=False)
        await server.stop()

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep the default loop working
        asyncio.run(main())
    else:
        uvloop.run(main())


def _stop_children(children: list[int], wait: bool = True) -> None:
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if wait:
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    if not wait:
        return
    children.clear()
