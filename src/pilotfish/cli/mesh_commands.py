"""The local mesh: ``up``, ``down``, ``status``, ``logs``, ``demo`` and ``kube-inject``."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import click

from .. import __version__

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
DEMO_FILES = ("bookinfo/platform/kube/bookinfo.yaml", "bookinfo/networking/bookinfo-gateway.yaml")

_files = click.option("-f", "--filename", "paths", multiple=True, metavar="PATH",
                      help="Kubernetes and Istio YAML (files or directories); repeatable.")


def _up_options(f):  # type: ignore[no-untyped-def]
    f = click.option("--detach", "-d", is_flag=True, help="Return once the mesh is ready (exit 0) or failed (1).")(f)
    f = click.option("--ingress-port", type=click.IntRange(1, 65535), default=8080, show_default=True,
                     help="Where the ingress gateway serves Gateway port 80 (the gateway Service's targetPort).")(f)
    f = click.option("--egress-gateway", is_flag=True, help="Also start the egress gateway (started anyway "
                                                            "when a Gateway selects istio: egressgateway).")(f)
    f = click.option("--timeout", type=click.FloatRange(min=1), default=90.0, show_default=True,
                     help="Seconds to wait for readiness.")(f)
    f = click.option("--addresses", type=click.Choice(["auto", "loopback", "shared"]), default="auto",
                     show_default=True, help="An address per instance (loopback: 127.A.B.N), or 127.0.0.1 "
                     "with ports of their own (shared); auto: loopback where the system allows it.")(f)
    f = click.option("--mesh-config", type=click.Path(dir_okay=False), default=None,
                     help="MeshConfig YAML for istiod (e.g. outboundTrafficPolicy); kept for later `up`s.")(f)
    return f


@click.command("up")
@_files
@_up_options
@click.option("--no-ui", is_flag=True, hidden=True)
def up(paths: tuple[str, ...], detach: bool, ingress_port: int, egress_gateway: bool, timeout: float,
       addresses: str, mesh_config: str | None, no_ui: bool) -> None:
    """Start istiod, the gateways and every workload with its sidecar."""
    _up(list(paths), detach, ingress_port, egress_gateway, timeout, no_ui, mesh_config=mesh_config,
        addresses=addresses)


@click.command("demo")
@_up_options
def demo(detach: bool, ingress_port: int, egress_gateway: bool, timeout: float, addresses: str,
         mesh_config: str | None) -> None:
    """``up`` on the bundled Bookinfo and its gateway; prints the productpage URL."""
    files = [str(SAMPLES / f) for f in DEMO_FILES]
    missing = [f for f in files if not Path(f).exists()]
    if missing:
        click.echo(f"error: the bundled Bookinfo is missing ({missing[0]}); run from a checkout of pilotfish",
                   err=True)
        sys.exit(2)
    _up(files, detach, ingress_port, egress_gateway, timeout, False, path="/productpage", mesh_config=mesh_config,
        addresses=addresses)


def _up(paths: list[str], detach: bool, ingress_port: int, egress: bool, timeout: float, no_ui: bool,
        path: str = "", mesh_config: str | None = None, addresses: str = "auto") -> None:
    from ..local.mesh import MeshOptions
    from ..local.state import State
    from ..local.up import (
        UpError,
        shared_address,
        load_config,
        running_pid,
        serve,
        start_detached,
        store_config,
        take_mesh_config,
    )

    state = State.here()
    pid = running_pid(state)
    if pid is not None:
        click.echo(f"the mesh is already up here (pid {pid}); change it with `pilotfish apply -f`, "
                   "stop it with `pilotfish down`", err=True)
        sys.exit(1)
    try:
        shared = shared_address(state, addresses)
        if mesh_config:
            take_mesh_config(state, mesh_config)
        resources = load_config(paths) if paths else []
        store_config(state, resources, ingress_port)
    except UpError as exc:
        for line in exc.lines:
            click.echo(f"error: {line}", err=True)
        sys.exit(1)
    if detach:
        argv = ["up", "--no-ui", "--ingress-port", str(ingress_port), "--timeout", str(timeout),
                "--addresses", "shared" if shared else "loopback"]
        argv += ["--egress-gateway"] if egress else []
        code, failures, mesh = start_detached(state, argv, timeout)
        _report(mesh, failures, path)
        sys.exit(code)
    options = MeshOptions(ingress_http_port=ingress_port, egress=egress, ready_timeout=timeout, shared_address=shared)
    interactive = sys.stdout.isatty() and not no_ui

    def on_ready(mesh, failures):  # type: ignore[no-untyped-def]
        _report(mesh.describe(), failures, path)
        if not interactive:
            sys.stdout.flush()

    def watch(mesh):  # type: ignore[no-untyped-def]
        from ..local.view import live

        return asyncio.ensure_future(live(mesh)) if interactive else None

    sys.exit(asyncio.run(serve(state, options, on_ready, watch)))


def _report(mesh: dict | None, failures: list[str], path: str) -> None:
    if failures:
        for name in failures:
            click.echo(f"error: not ready: {name}", err=True)
        if mesh is not None:
            click.echo("logs: .pilotfish/logs/ (pilotfish logs NAME)", err=True)
        return
    if mesh is None:
        return
    click.echo(f"mesh ready: {len(mesh.get('workloads', []))} workload instance(s), "
               f"{len(mesh.get('gateways', []))} gateway(s); istiod {mesh['istiod']['http']}")
    if mesh.get("ingress_url"):
        click.echo(f"ingress: {mesh['ingress_url']}{path}")


@click.command("down")
def down() -> None:
    """Stop the mesh started in this directory (or clean up after one that crashed)."""
    from ..local.state import State
    from ..local.up import down as stop

    for line in stop(State.here()):
        click.echo(line)


@click.command("status")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status(output: str) -> None:
    """The running mesh: istiod, gateways and workloads with addresses, ports and readiness."""
    from ..local.state import State
    from ..local.up import running_pid
    from ..local.view import probed, table

    state = State.here()
    mesh = state.read_mesh()
    if mesh is None or running_pid(state) is None:
        click.echo("no mesh is up here (pilotfish up)", err=True)
        sys.exit(1)
    data = asyncio.run(probed(mesh))
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    from rich.console import Console

    Console().print(table(data))


@click.command("logs")
@click.argument("workload")
@click.option("-c", "--container", type=click.Choice(["app", "proxy", "agent"]), default="app", show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing what is written.")
def logs(workload: str, container: str, follow: bool) -> None:
    """A workload's app or proxy log (WORKLOAD: an instance, a Deployment's name, or istiod)."""
    from ..local.state import State

    state = State.here()
    mesh = state.read_mesh() or {}
    if workload == "istiod":
        path = state.logs_dir / "istiod.log"
    else:
        entries = mesh.get("workloads", []) + mesh.get("gateways", [])
        match = [e for e in entries if e["name"] == workload] or [e for e in entries if e.get("workload") == workload]
        if not match:
            candidates = sorted(state.logs_dir.glob(f"{workload}*.{container}.log")) if state.logs_dir.exists() else []
            if not candidates:
                click.echo(f"error: no workload {workload!r} in this mesh", err=True)
                sys.exit(1)
            path = candidates[-1]
        else:
            path = Path(match[0]["logs"][container])
    _print_log(path, follow)


def _print_log(path: Path, follow: bool) -> None:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        click.echo(f"error: no log yet at {path}", err=True)
        sys.exit(1)
    with f:
        while True:
            chunk = f.read()
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            elif not follow:
                return
            else:
                time.sleep(0.2)


@click.command("kube-inject")
@_files
def kube_inject(paths: tuple[str, ...]) -> None:
    """Print the manifests with Istio's sidecar injected, as ``istioctl kube-inject``."""
    import yaml

    from ..config.loader import SourceError, load_documents
    from ..local.inject import kube_inject as inject

    if not paths:
        raise click.UsageError("give at least one -f PATH")
    out, errors = [], []
    try:
        docs = list(load_documents(paths))
    except SourceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for doc in docs:
        if not hasattr(doc, "data"):
            errors.append(str(doc))
        elif isinstance(doc.data, dict):
            out.append(inject(doc.data, __version__))
    if errors:
        for e in errors:
            click.echo(f"error: {e}", err=True)
        sys.exit(1)
    click.echo(yaml.safe_dump_all(out, sort_keys=False), nl=False)


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("workload")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(workload: str, command: tuple[str, ...]) -> None:
    """Run COMMAND as if inside WORKLOAD (``kubectl exec``'s role): with its HTTP_PROXY, so calls
    by service name go through its sidecar — e.g. ``pilotfish exec sleep -- curl http://httpbin:8000/get``."""
    import os

    from ..local.state import State

    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise click.UsageError("give a command to run")
    mesh = State.here().read_mesh() or {}
    entries = mesh.get("workloads", [])
    match = [e for e in entries if e["name"] == workload] or [
        e for e in entries if workload in (e.get("workload"), e.get("labels", {}).get("app"))]
    if not match or not match[0]["ports"].get("outbound"):
        click.echo(f"error: no workload {workload!r} with a sidecar in the mesh up here", err=True)
        sys.exit(1)
    proxy = f"http://127.0.0.1:{match[0]['ports']['outbound']}"
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "https_proxy", "all_proxy")}
    env.update({"HTTP_PROXY": proxy, "http_proxy": proxy})
    try:
        os.execvpe(command[0], list(command), env)
    except OSError as exc:
        click.echo(f"error: {command[0]}: {exc.strerror}", err=True)
        sys.exit(127)
