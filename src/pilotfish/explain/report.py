"""An Explanation as one readable block of text, or as JSON with Envoy's and Istio's names."""

from __future__ import annotations

import json
from typing import Any

from .explanation import Explanation


def to_json(ex: Explanation) -> str:
    return json.dumps(ex.as_dict(), indent=2)


def _endpoint(e: dict[str, Any]) -> str:
    extra = [e["health"]]
    if e.get("locality"):
        extra.append(e["locality"])
    if e.get("weight", 1) != 1:
        extra.append(f"weight {e['weight']}")
    mark = "" if e["usable"] else " (not used)"
    return f"{e['address']}:{e['port']} {', '.join(extra)}{mark}"


def _cluster_line(info: dict[str, Any]) -> str:
    parts = [info["name"] or "(none)"]
    details = []
    if info.get("host"):
        details.append(f"service {info['host']}:{info['port']}")
    if info.get("subset"):
        details.append(f"subset {info['subset']}")
    if info.get("type"):
        details.append(info["type"])
    if details:
        parts.append(f"({', '.join(details)})")
    return " ".join(parts)


def to_text(ex: Explanation) -> str:
    r = ex.request
    lines = [f"{r['method']} {r['host']}{r['path']} ({r['protocol']}, port {r['port']}"
             + (f", to {r['address']}" if r.get("address") else "") + f") — config from {ex.source}"]
    for name, value in r.get("headers", {}).items():
        lines.append(f"  {name}: {value}")
    if ex.listener is not None:
        l = ex.listener
        via = f" via {l['via']}" if l.get("via") else ""
        lines.append(f"Listener:       {l['name']} ({l['address']}:{l['port']}){via}")
        if l.get("why"):
            lines.append(f"                {l['why']}")
    if ex.filter_chain is not None:
        fc = ex.filter_chain
        lines.append(f"Filter chain:   {fc['name']}" + (f" ({fc['filter']})" if fc.get("filter") else ""))
        for other in fc.get("not_chosen", []):
            lines.append(f"                not {other['name']}: {other['why']}")
    if ex.route_config is not None:
        rc = ex.route_config
        lines.append(f"Route config:   {rc['name']}" + (" (inline)" if rc.get("inline") else " (RDS)"))
    if ex.virtual_host is not None:
        vh = ex.virtual_host
        lines.append(f"Virtual host:   {vh['name']} (domain {vh['domain']!r} matched)")
    if ex.route is not None:
        for skipped in ex.route.get("not_matched", []):
            lines.append(f"Not route:      {skipped['name'] or '(unnamed)'} [{skipped['match_text']}]")
            for why in skipped["why"]:
                lines.append(f"                - {why}")
        if "match" in ex.route:
            vs = f" from VirtualService {ex.route['virtual_service']}" if ex.route.get("virtual_service") else ""
            lines.append(f"Route:          {ex.route['name'] or '(unnamed)'} [{ex.route['match_text']}]{vs}")
    if ex.cluster is not None:
        if "weighted" in ex.cluster:
            lines.append(f"Clusters:       weighted (total {ex.cluster['total_weight']})")
            for c in ex.cluster["weighted"]:
                lines.append(f"                {c['weight']:>4}  {_cluster_line(c)}")
        else:
            lines.append(f"Cluster:        {_cluster_line(ex.cluster)}")
    for name, endpoints in ex.endpoints.items():
        if len(ex.endpoints) > 1:
            lines.append(f"Endpoints of {name}:")
            first = "                "
        else:
            first = "Endpoints:      "
        shown = [_endpoint(e) for e in endpoints] or ["none"]
        lines.append(first + shown[0])
        lines += [f"                {e}" for e in shown[1:]]
    status = f" {ex.status}" if ex.status is not None else ""
    lines.append(f"Outcome:        {ex.outcome}{status}: {ex.reason}")
    for w in ex.warnings:
        lines.append(f"Warning:        {w}")
    return "\n".join(lines)
