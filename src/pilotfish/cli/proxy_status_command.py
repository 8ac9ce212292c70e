"""``pilotfish proxy-status``: where each connected proxy stands with istiod, as istioctl shows it."""

from __future__ import annotations

import json
from typing import Any

import click

from .istiod_client import get_json, istiod_option, token_option

#: Column → the syncz type key, in istioctl's order.
TYPES = (("CDS", "cluster"), ("LDS", "listener"), ("EDS", "endpoint"), ("RDS", "route"))


def sync_state(entry: dict[str, Any], short: str) -> str:
    """istioctl's per-type state: NOT SENT (nothing sent yet), SYNCED (the proxy acknowledged
    the last response), STALE (a response awaits its ACK, or was rejected)."""
    sent = entry.get(f"{short}_sent") or ""
    if not sent:
        return "NOT SENT"
    if f"{short}_rejected" in entry and entry.get(f"{short}_acked") != sent:
        return "STALE (NACK)"
    return "SYNCED" if entry.get(f"{short}_acked") == sent else "STALE"


@click.command("proxy-status")
@click.argument("proxy", required=False)
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@istiod_option
@token_option
def proxy_status(proxy: str | None, output: str, istiod_url: str, token: str | None) -> None:
    """Each proxy's xDS state: SYNCED, NOT SENT or STALE per type (PROXY: one, by pod.namespace)."""
    entries = get_json(istiod_url, "/debug/syncz", token)
    if proxy:
        entries = [e for e in entries if proxy in (e.get("proxy"), e.get("node_id"))]
        if not entries:
            raise click.ClickException(f"proxy {proxy} is not connected to istiod at {istiod_url}")
    rows = []
    for e in sorted(entries, key=lambda e: str(e.get("proxy"))):
        row = {"name": e.get("proxy", ""), "type": e.get("proxy_type", ""),
               **{col: sync_state(e, short) for col, short in TYPES},
               "istiod": istiod_url, "version": e.get("istio_version", "")}
        rejected = {short: e[f"{short}_rejected"] for _, short in TYPES if f"{short}_rejected" in e}
        if rejected:
            row["rejected"] = rejected
        rows.append(row)
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    header = ["NAME", "CDS", "LDS", "EDS", "RDS", "ISTIOD", "VERSION"]
    table = [[r["name"], r["CDS"], r["LDS"], r["EDS"], r["RDS"], r["istiod"], r["version"]] for r in rows]
    click.echo(render_table(header, table))
    for r in rows:
        for short, rej in r.get("rejected", {}).items():
            click.echo(f"{r['name']}: {short} version {rej['version']} rejected: {rej['error']}")


def render_table(header: list[str], rows: list[list[Any]]) -> str:
    """Columns padded like kubectl and istioctl print them (three spaces between)."""
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)
