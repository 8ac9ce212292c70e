"""``pilotfish x explain``: where a request goes through a proxy's config, and why.

The config comes from a running proxy (istiod's view of it with ``--istiod``, or its own admin
with ``--admin``) or from a config directory before anything runs (``--config-dir`` with the
proxy's node id and labels). ``x`` holds experimental commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .istiod_client import DEFAULT_ISTIOD


@click.group("x")
def x() -> None:
    """Experimental commands."""


@x.command("explain")
@click.argument("proxy_id", required=False)
@click.option("--istiod", "istiod_url", default=None, metavar="URL",
              help="Read PROXY_ID's config from istiod's /debug/config_dump "
                   f"(default when only PROXY_ID is given: $PILOTFISH_ISTIOD or {DEFAULT_ISTIOD}).")
@click.option("--token", default=lambda: os.environ.get("PILOTFISH_TOKEN"), help="Bearer token for istiod's API.")
@click.option("--admin", "admin_url", default=None, metavar="URL",
              help="Read the config a proxy holds from its admin's /config_dump.")
@click.option("--config-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Translate this directory's Istio/Kubernetes YAML for --proxy-id, as istiod would.")
@click.option("--proxy-id", "node_id", default=None, metavar="NODE_ID",
              help="With --config-dir: the proxy's node id, TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local.")
@click.option("--labels", default="", metavar="K=V,…", help="With --config-dir: the proxy's workload labels.")
@click.option("--interception", type=click.Choice(["REDIRECT", "NONE"], case_sensitive=False), default=None,
              help="With --config-dir: the sidecar's interception mode (default REDIRECT, Istio's).")
@click.option("--mesh-config", type=click.Path(dir_okay=False, exists=True), default=None,
              help="With --config-dir: MeshConfig YAML (outboundTrafficPolicy, rootNamespace, …).")
@click.option("--url", default=None, metavar="URL", help="The request: http://host[:port]/path?query.")
@click.option("--host", default=None, help="The Host header (instead of --url).")
@click.option("--path", "path", default=None, help="The request path (with --host; default /).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Destination port (default: the URL's, else 80).")
@click.option("--address", default=None, metavar="IP",
              help="Destination address (default: the service's VIP or first endpoint; a NONE-mode "
                   "sidecar's HTTP proxy listener).")
@click.option("-H", "--header", "headers", multiple=True, metavar="'K: V'", help="A request header (repeatable).")
@click.option("--method", default=None, help="Request method (default GET; POST for grpc).")
@click.option("--protocol", type=click.Choice(["http", "http2", "grpc", "tcp", "tls"]), default="http",
              show_default=True, help="What the connection carries.")
@click.option("--sni", default=None, help="TLS server name (default: the host, with --protocol tls).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def explain(proxy_id: str | None, istiod_url: str | None, token: str | None, admin_url: str | None,
            config_dir: Path | None, node_id: str | None, labels: str, interception: str | None,
            mesh_config: str | None, url: str | None, host: str | None, path: str | None, port: int | None,
            address: str | None, headers: tuple[str, ...], method: str | None, protocol: str, sni: str | None,
            output: str) -> None:
    """Replay a request through a proxy's config: listener, filter chain, route configuration,
    virtual host, route (and why earlier routes did not match), cluster, subset, endpoints and
    the outcome."""
    from ..explain.errors import ExplainError
    from ..explain.replay import explain as replay
    from ..explain.report import to_json, to_text
    from ..explain.request import build_request

    try:
        request = build_request(url=url, host=host, path=path, port=port, address=address, method=method,
                                headers=headers, protocol=protocol, sni=sni)
        snap = _snapshot(proxy_id, istiod_url, token, admin_url, config_dir, node_id, labels, interception,
                         mesh_config)
        result = replay(snap, request)
    except ExplainError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(to_json(result) if output == "json" else to_text(result))


def _snapshot(proxy_id: str | None, istiod_url: str | None, token: str | None, admin_url: str | None,
              config_dir: Path | None, node_id: str | None, labels: str, interception: str | None,
              mesh_config: str | None) -> object:
    from ..explain import sources
    from ..explain.errors import ExplainError

    chosen = [name for name, given in (("--istiod", istiod_url), ("--admin", admin_url),
                                       ("--config-dir", config_dir)) if given is not None]
    if len(chosen) > 1:
        raise ExplainError(f"use one config source, not {' and '.join(chosen)}")
    if config_dir is not None:
        node = node_id or proxy_id
        if not node:
            raise ExplainError("--config-dir needs --proxy-id (TYPE~IP~POD.NAMESPACE~DOMAIN)")
        return sources.from_config(*_load_dir(config_dir, mesh_config),
                                   proxy=sources.proxy_of(node, _labels(labels), interception),
                                   source=f"{config_dir} (translated for {node})")
    if admin_url is not None:
        return sources.from_admin(admin_url)
    if not proxy_id:
        raise ExplainError("say which proxy: PROXY_ID with --istiod, --admin URL, or --config-dir with --proxy-id")
    return sources.from_istiod(istiod_url or os.environ.get("PILOTFISH_ISTIOD", DEFAULT_ISTIOD), proxy_id, token)


def _labels(text: str) -> dict[str, str]:
    from ..explain.errors import ExplainError

    out = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise ExplainError(f"--labels wants k=v,k=v; got {item!r}")
        out[k.strip()] = v.strip()
    return out


def _load_dir(config_dir: Path, mesh_config: str | None) -> tuple[tuple[object, ...], object]:
    """The directory's resources as istiod would take them (a refused file is left out and
    named), and the mesh config."""
    from ..config.errors import ConfigError
    from ..config.models.kube import default_mesh_config, load_mesh_config
    from ..explain.errors import ExplainError
    from ..istiod.config_dir import ConfigDir

    try:
        mesh = load_mesh_config(mesh_config) if mesh_config else default_mesh_config()
    except (ConfigError, OSError) as exc:
        raise ExplainError(f"{mesh_config}: {exc}") from exc
    directory = ConfigDir(config_dir)
    for problem in directory.load_all():
        click.echo(f"warning: {problem.file} left out (istiod would refuse it): {problem}", err=True)
    return directory.resources(), mesh
