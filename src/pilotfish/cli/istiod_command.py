"""``pilotfish istiod``: the control plane serving a config directory over xDS."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..istiod.server import Istiod


@click.command("istiod")
@click.option("--config-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory of Istio and Kubernetes YAML (watched; created if missing).")
@click.option("--xds-port", type=click.IntRange(0, 65535), default=15010, show_default=True,
              help="ADS (gRPC) port; 0 lets the OS pick.")
@click.option("--http-port", type=click.IntRange(0, 65535), default=15014, show_default=True,
              help="HTTP API port (debug, metrics, resources); 0 lets the OS pick.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address both ports bind. Anything but loopback requires an API token.")
@click.option("--mesh-config", type=click.Path(dir_okay=False, exists=True), default=None,
              help="MeshConfig YAML (Istio's `mesh` key of the istio ConfigMap).")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the API's bearer token (made when missing and the address is not loopback).")
@click.option("--debounce-after", type=click.FloatRange(min=0), default=0.1, show_default=True,
              help="Seconds without a change before a push (Istio's PILOT_DEBOUNCE_AFTER).")
@click.option("--debounce-max", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Most seconds a push waits while changes keep coming (Istio's PILOT_DEBOUNCE_MAX).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
def istiod(config_dir: Path, xds_port: int, http_port: int, address: str, mesh_config: str | None,
           token_file: str | None, debounce_after: float, debounce_max: float, log_level: str) -> None:
    """Run the control plane: Istio YAML in CONFIG_DIR → Envoy xDS for every proxy."""
    from ..config.errors import ConfigError
    from ..config.models.kube import default_mesh_config, load_mesh_config
    from ..istiod.server import Istiod, IstiodOptions

    logging.basicConfig(level=log_level.upper(), format="[%(asctime)s][istiod][%(levelname)s] %(message)s",
                        stream=sys.stderr)
    try:
        mesh = load_mesh_config(mesh_config) if mesh_config else default_mesh_config()
    except (ConfigError, OSError) as exc:
        click.echo(f"error: {mesh_config}: {exc}", err=True)
        sys.exit(1)
    token = _token(address, token_file)
    options = IstiodOptions(config_dir=config_dir, mesh=mesh, xds_host=address, xds_port=xds_port,
                            http_host=address, http_port=http_port, token=token,
                            debounce_quiet=debounce_after, debounce_max=debounce_max)
    try:
        asyncio.run(_run(Istiod(options)))
    except OSError as exc:
        click.echo(f"error: cannot start: {exc}", err=True)
        sys.exit(1)


def _token(address: str, token_file: str | None) -> str | None:
    loopback = address in ("127.0.0.1", "::1", "localhost") or address.startswith("127.")
    if token_file is None:
        if loopback:
            return None
        click.echo("error: --address other than loopback needs --token-file (the API's bearer token)", err=True)
        sys.exit(1)
    path = Path(token_file)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32) + "\n")
        os.chmod(path, 0o600)
    return path.read_text().strip()


async def _run(server: Istiod) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    click.echo(f"istiod ready: xds {server.options.xds_host}:{server.xds_port}, "
               f"http {server.options.http_host}:{server.http_port}", err=True)
    await stop.wait()
    await server.stop()
