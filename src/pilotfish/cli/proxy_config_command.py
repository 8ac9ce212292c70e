"""``pilotfish proxy-config cluster|listener|route|endpoint|all PROXY``: what istiod sends a
proxy, in istioctl's columns, read from istiod's /debug/config_dump."""

from __future__ import annotations

import json
from typing import Any

import click

from .istiod_client import get_json, istiod_option, token_option
from .proxy_status_command import render_table

_SECTIONS = {
    "cluster": "ClustersConfigDump",
    "listener": "ListenersConfigDump",
    "route": "RoutesConfigDump",
    "endpoint": "EndpointsConfigDump",
}


def section(dump: dict[str, Any], name: str) -> dict[str, Any]:
    for config in dump.get("configs", []):
        if config.get("@type", "").endswith("." + name):
            return config
    return {}


def camel_keys(data: Any) -> Any:
    """JSON with proto field names (``dynamic_active_clusters``) as protobuf's JSON names."""
    if isinstance(data, dict):
        return {(k if k.startswith("@") else _camel(k)): camel_keys(v) for k, v in data.items()}
    if isinstance(data, list):
        return [camel_keys(v) for v in data]
    return data


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


# ---------------------------------------------------------------- clusters

def cluster_rows(dump: dict[str, Any]) -> list[list[str]]:
    rows = []
    for item in section(dump, "ClustersConfigDump").get("dynamicActiveClusters", []):
        c = item.get("cluster", {})
        name = c.get("name", "")
        parts = name.split("|")
        ctype = c.get("type", "EDS" if "edsClusterConfig" in c else "STATIC")
        if len(parts) == 4:
            direction, port, subset, fqdn = parts
            rows.append([fqdn or "-", port, subset or "-", direction, ctype, _dr_of(c)])
        else:
            rows.append([name, "-", "-", "-", ctype, "-"])
    return sorted(rows, key=lambda r: (r[0], r[1], r[2], r[3]))


def _dr_of(cluster: dict[str, Any]) -> str:
    config = cluster.get("metadata", {}).get("filterMetadata", {}).get("istio", {}).get("config", "")
    return _istio_config_ref(config)


def _istio_config_ref(path: str) -> str:
    """``/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews`` → ``reviews.default``."""
    parts = path.strip("/").split("/")
    if len(parts) >= 6 and parts[3] == "namespaces":
        return f"{parts[-1]}.{parts[4]}"
    return "-"


# ---------------------------------------------------------------- listeners

def listener_rows(dump: dict[str, Any]) -> list[list[str]]:
    rows = []
    for item in section(dump, "ListenersConfigDump").get("dynamicListeners", []):
        listener = item.get("activeState", {}).get("listener", {})
        address = listener.get("address", {}).get("socketAddress", {})
        addr, port = address.get("address", ""), str(address.get("portValue", ""))
        if "apiListener" in listener:
            rows.append([listener.get("name", ""), "-", "ALL", "API listener"])
            continue
        chains = list(listener.get("filterChains", []))
        if "defaultFilterChain" in listener:
            chains.append(listener["defaultFilterChain"])
        for chain in chains:
            rows.append([addr, port, _chain_match(chain), _chain_destination(chain)])
    return rows


def _chain_match(chain: dict[str, Any]) -> str:
    m = chain.get("filterChainMatch", {})
    parts = []
    if "destinationPort" in m:
        parts.append(f"port {m['destinationPort']}")
    if m.get("serverNames"):
        parts.append("SNI: " + ",".join(m["serverNames"]))
    if m.get("applicationProtocols"):
        parts.append("App: " + ",".join(m["applicationProtocols"]))
    if m.get("transportProtocol"):
        parts.append("Trans: " + m["transportProtocol"])
    return "; ".join(parts) or "ALL"


def _chain_destination(chain: dict[str, Any]) -> str:
    for f in chain.get("filters", []):
        cfg = f.get("typedConfig", {})
        if "rds" in cfg:
            return f"Route: {cfg['rds'].get('routeConfigName', '')}"
        if "routeConfig" in cfg:
            vhosts = cfg["routeConfig"].get("virtualHosts", [])
            clusters = {r.get("route", {}).get("cluster", "") for v in vhosts for r in v.get("routes", [])}
            return "Inline Route: " + ",".join(sorted(c for c in clusters if c)) if clusters else "Inline Route"
        if "cluster" in cfg:
            return f"Cluster: {cfg['cluster']}"
    return "-"


# ---------------------------------------------------------------- routes

def route_rows(dump: dict[str, Any]) -> list[list[str]]:
    rows = []
    for item in section(dump, "RoutesConfigDump").get("dynamicRouteConfigs", []):
        rc = item.get("routeConfig", {})
        for vh in rc.get("virtualHosts", []):
            domains = vh.get("domains", [])
            shown = domains[0] if len(domains) == 1 else (f"{domains[0]} + {len(domains) - 1} more" if domains else "")
            for route in vh.get("routes", []):
                vs = _istio_config_ref(route.get("metadata", {}).get("filterMetadata", {})
                                       .get("istio", {}).get("config", ""))
                rows.append([rc.get("name", ""), vh.get("name", ""), shown, _route_match(route.get("match", {})), vs])
    return rows


def _route_match(m: dict[str, Any]) -> str:
    if "prefix" in m:
        return m["prefix"] + "*"
    if "path" in m:
        return m["path"]
    if "pathSeparatedPrefix" in m:
        return m["pathSeparatedPrefix"] + "/*"
    if "safeRegex" in m:
        return m["safeRegex"].get("regex", "")
    return "-"


# ---------------------------------------------------------------- endpoints

def endpoint_rows(dump: dict[str, Any]) -> list[list[str]]:
    rows = []
    for item in section(dump, "EndpointsConfigDump").get("dynamicEndpointConfigs", []):
        cla = item.get("endpointConfig", {})
        for group in cla.get("endpoints", []):
            for lb in group.get("lbEndpoints", []):
                sa = lb.get("endpoint", {}).get("address", {}).get("socketAddress", {})
                status = lb.get("healthStatus", "HEALTHY")
                rows.append([f"{sa.get('address', '')}:{sa.get('portValue', '')}", status, "OK",
                             cla.get("clusterName", "")])
    return rows


_TABLES = {
    "cluster": (["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"], cluster_rows),
    "listener": (["ADDRESSES", "PORT", "MATCH", "DESTINATION"], listener_rows),
    "route": (["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"], route_rows),
    "endpoint": (["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"], endpoint_rows),
}


@click.command("proxy-config")
@click.argument("what", type=click.Choice(["cluster", "listener", "route", "endpoint", "all"]))
@click.argument("proxy", required=False)
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--admin", "admin_url", default=None, metavar="URL",
              help="Read a proxy's own admin /config_dump (e.g. http://127.0.0.1:15000) instead of istiod.")
@istiod_option
@token_option
def proxy_config(what: str, proxy: str | None, output: str, admin_url: str | None, istiod_url: str,
                 token: str | None) -> None:
    """What istiod sends PROXY (pod.namespace or a full node id), or what a proxy holds (--admin),
    as istioctl proxy-config shows it."""
    from urllib.parse import quote

    if admin_url is not None:
        # The admin writes proto field names (snake_case); istiod's dump is protobuf's JSON names.
        dump = camel_keys(get_json(admin_url, "/config_dump?include_eds", None))
    elif proxy:
        dump = get_json(istiod_url, f"/debug/config_dump?proxyID={quote(proxy)}", token)
    else:
        raise click.UsageError("give PROXY (read from istiod) or --admin URL (read from the proxy)")
    kinds = list(_TABLES) if what == "all" else [what]
    if output == "json":
        sections = [section(dump, _SECTIONS[k]) for k in kinds]
        click.echo(json.dumps(sections[0] if len(sections) == 1 else {"configs": sections}, indent=2))
        return
    blocks = []
    for k in kinds:
        header, rows_of = _TABLES[k]
        blocks.append(render_table(header, rows_of(dump)))
    click.echo("\n\n".join(blocks))
