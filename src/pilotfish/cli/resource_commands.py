"""``pilotfish apply / get / delete``: resources in a running istiod, as kubectl does them.

``apply`` validates every document locally first (errors name file:line, resource and field);
istiod validates again and writes nothing when any document is refused.
"""

from __future__ import annotations

import json
import sys
from urllib.parse import urlencode

import click
import yaml

from .istiod_client import call, istiod_option, token_option
from .proxy_status_command import render_table

_files = click.option("-f", "--filename", "paths", multiple=True, metavar="PATH",
                      help="File or directory (recursive) of YAML/JSON; '-' reads stdin. Repeatable.")


def _load(paths: tuple[str, ...]) -> list[dict[str, object]]:
    """The documents of ``paths``, validated; exits 1 naming every invalid one."""
    from ..config.loader import SourceError
    from ..local.state import State
    from ..local.up import read_config
    from ..local.workloads import WorkloadError, workload_from

    try:
        resources, errors = read_config(paths)
    except SourceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if errors:
        for e in errors:
            click.echo(f"error: {e}", err=True)
        sys.exit(1)
    if State.here().read_mesh() is not None:  # the local mesh up here runs Deployments: say so now
        for r in resources:                    # when it cannot run one
            if r.kind == "Deployment":
                try:
                    workload_from(r, {})
                except WorkloadError as exc:
                    click.echo(f"warning: {exc}: the local mesh will not run it", err=True)
    return [r.raw for r in resources]


@click.command("apply")
@_files
@istiod_option
@token_option
def apply(paths: tuple[str, ...], istiod_url: str, token: str | None) -> None:
    """Create or update resources in istiod (all of them, or none when any is invalid)."""
    if not paths:
        raise click.UsageError("give at least one -f PATH")
    docs = _load(paths)
    if not docs:
        raise click.ClickException("no resources in the given files")
    body = yaml.safe_dump_all(docs, sort_keys=False).encode()
    status, data = call(istiod_url, "POST", "/apis/v1/resources", body, token)
    if status >= 400:
        for e in (data.get("errors") if isinstance(data, dict) else None) or [data]:
            click.echo(f"error: {e}", err=True)
        sys.exit(1)
    for r in data["results"]:
        click.echo(f"{r['ref']} {r['result']}")
    _analyze_applied(docs, istiod_url, token)


def _analyze_applied(docs: list[dict[str, object]], istiod_url: str, token: str | None) -> None:
    """The analyzers' messages about what was just applied, read against the whole running
    mesh (as istioctl analyze would see it now). They inform; they do not change the exit status."""
    from ..config import analysis
    from .config_commands import message_text
    from .live_config import live_resources

    applied = set()
    for d in docs:
        meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
        applied.add((str(d.get("kind")), str(meta.get("namespace") or "default"), str(meta.get("name"))))  # type: ignore[union-attr]
    messages = analysis.analyze(live_resources(istiod_url, token))
    for m in messages:
        r = m.resource
        if r is not None and (r.kind, r.namespace or "default", r.name) in applied:
            click.echo(message_text(m))


@click.command("get")
@click.argument("kind")
@click.argument("name", required=False)
@click.option("-n", "--namespace", default=None, help="Only this namespace (default: all).")
@click.option("-o", "--output", type=click.Choice(["table", "yaml", "json"]), default="table", show_default=True)
@istiod_option
@token_option
def get(kind: str, name: str | None, namespace: str | None, output: str, istiod_url: str, token: str | None) -> None:
    """Resources of KIND (e.g. VirtualService) in force in istiod."""
    query = {"kind": kind, **({"name": name} if name else {}), **({"namespace": namespace} if namespace else {})}
    status, data = call(istiod_url, "GET", "/apis/v1/resources?" + urlencode(query), token=token)
    if status == 404:
        raise click.ClickException(data.get("error", "not found") if isinstance(data, dict) else str(data))
    if status >= 400:
        raise click.ClickException(f"istiod answered {status}: {data}")
    items = data["items"]
    if output == "json":
        click.echo(json.dumps(items[0] if name and len(items) == 1 else items, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump_all(items, sort_keys=False), nl=False)
    elif not items:
        click.echo(f"No {kind} found.", err=True)
    else:
        rows = [[i["metadata"].get("namespace", ""), i["metadata"].get("name", ""), i.get("kind", "")] for i in items]
        click.echo(render_table(["NAMESPACE", "NAME", "KIND"], rows))


@click.command("delete")
@_files
@click.argument("kind", required=False)
@click.argument("name", required=False)
@click.option("-n", "--namespace", default="default", show_default=True)
@istiod_option
@token_option
def delete(paths: tuple[str, ...], kind: str | None, name: str | None, namespace: str, istiod_url: str,
           token: str | None) -> None:
    """Delete resources applied to istiod: those in -f PATH, or KIND NAME."""
    targets: list[tuple[str, str, str]] = []
    if paths:
        for doc in _load(paths):
            meta = doc.get("metadata") or {}
            assert isinstance(meta, dict)
            targets.append((str(doc.get("kind")), str(meta.get("namespace") or "default"), str(meta.get("name"))))
    elif kind and name:
        targets.append((kind, namespace, name))
    else:
        raise click.UsageError("give -f PATH or KIND NAME")
    failed = False
    for k, ns, n in targets:
        status, data = call(istiod_url, "DELETE", "/apis/v1/resources?" + urlencode(
            {"kind": k, "namespace": ns, "name": n}), token=token)
        if status >= 400:
            failed = True
            for e in (data.get("errors") if isinstance(data, dict) else None) or [data]:
                click.echo(f"error: {e}", err=True)
        else:
            for r in data["results"]:
                click.echo(f"{r['ref']} {r['result']}")
    sys.exit(1 if failed else 0)
