"""What ``status`` and ``up``'s live table show: mesh.json with readiness probed now, and the
request rate each workload serves (from its merged metrics, ``istio_requests_total``)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..agent.probe import http_get
from .mesh import Mesh

_REQUESTS = re.compile(rb'^istio_requests_total\{([^}]*)\} ([0-9.e+]+)', re.M)


async def probed(mesh: dict[str, Any]) -> dict[str, Any]:
    """mesh.json with ``ready`` filled in for istiod and every instance."""
    out = dict(mesh)
    istiod = dict(out.get("istiod") or {})
    host, _, port = istiod.get("http", "").removeprefix("http://").partition(":")
    istiod["ready"] = bool(port) and (await http_get(host, int(port), "/ready", timeout=1))[0] == 200
    out["istiod"] = istiod

    async def one(entry: dict[str, Any]) -> dict[str, Any]:
        status, _ = await http_get(entry["address"], entry["ports"]["health"], "/healthz/ready", timeout=1)
        return {**entry, "ready": status == 200}

    for group in ("workloads", "gateways"):
        out[group] = list(await asyncio.gather(*(one(e) for e in out.get(group) or ())))
    return out


async def served_requests(entry: dict[str, Any]) -> float:
    """Requests this instance's proxy has reported as the destination (inbound) or, for a
    gateway, as the source."""
    status, body = await http_get(entry["address"], entry["ports"]["metrics"], "/stats/prometheus", timeout=1)
    if status != 200:
        return 0.0
    wanted = b'reporter="source"' if "istio" in entry.get("labels", {}) else b'reporter="destination"'
    return sum(float(v) for labels, v in _REQUESTS.findall(body) if wanted in labels)


def table(status: dict[str, Any], rates: dict[str, float] | None = None) -> Table:
    t = Table(title=f"pilotfish mesh — ingress {status.get('ingress_url') or '-'}", title_justify="left")
    for col in ("NAME", "NAMESPACE", "ADDRESS", "READY", "RESTARTS", "REQ/S"):
        t.add_column(col)
    istiod = status.get("istiod") or {}
    t.add_row("istiod", "istio-system", istiod.get("xds", ""), _yes(istiod.get("ready")), "", "")
    for entry in (status.get("gateways") or []) + (status.get("workloads") or []):
        rate = (rates or {}).get(entry["name"])
        t.add_row(entry["name"], entry["namespace"], entry["address"], _yes(entry.get("ready")),
                  str(entry.get("restarts", 0)), "" if rate is None else f"{rate:.1f}")
    return t


def _yes(ready: Any) -> str:
    return "[green]yes[/green]" if ready else "[red]no[/red]"


async def live(mesh: Mesh, console: Console | None = None, interval: float = 1.0) -> None:
    """The foreground table, refreshed every ``interval`` seconds until cancelled."""
    last: dict[str, tuple[float, float]] = {}
    with Live(console=console or Console(), auto_refresh=False) as view:
        while True:
            status = await probed(mesh.describe())
            rates = {}
            now = time.monotonic()
            entries = status["workloads"] + status["gateways"]
            totals = await asyncio.gather(*(served_requests(e) for e in entries))
            for entry, total in zip(entries, totals):
                before = last.get(entry["name"])
                rates[entry["name"]] = (total - before[1]) / (now - before[0]) if before and now > before[0] else 0.0
                last[entry["name"]] = (now, total)
            view.update(table(status, rates), refresh=True)
            await asyncio.sleep(interval)
