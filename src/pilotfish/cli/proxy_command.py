"""``pilotfish proxy``: run the data plane from an Envoy v3 bootstrap."""

from __future__ import annotations

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
    from ..proxy.process.assemble import run_group, run_single

    if concurrency > 1:  # a supervisor forks and restarts the workers (proxy/process/workers.py)
        try:
            sys.exit(run_group(compiled, concurrency, drain_time_s, options))
        except OSError as exc:
            click.echo(f"error: cannot start: {exc}", err=True)
            sys.exit(1)
    try:
        run_single(compiled, drain_time_s, options, before_stop=lambda: _stop_children(children, wait=False))
    except OSError as exc:
        click.echo(f"error: cannot start: {exc}", err=True)
        _stop_children(children)
        sys.exit(1)
    _stop_children(children)


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
