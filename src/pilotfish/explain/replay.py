"""Replay one request through one proxy's configuration: the connection to a listener and a
filter chain, then either the HTTP route (by the proxy's compiled route table) or the TCP
proxy's cluster, then the cluster's endpoints."""

from __future__ import annotations

from typing import Any

from ..pilot import naming
from ..proxy.common.errors import ProxyConfigError
from ..proxy.common.stats import StatsStore
from ..proxy.compile.listeners import RouteWarming, compile_listener
from ..proxy.router.route_table import DIRECT, FORWARD, header_value
from ..proxy.router.routing import redirect_location
from . import explanation as ex_
from .explanation import Explanation
from .http_route import choose, compile_routing, matched_domain, miss_reasons, route_info, vhost_message
from .listener_match import (
    chains_of, connection_manager, find_listener, select_filter_chain, socket_of, tcp_proxy,
)
from .request import Request
from .snapshot import ProxySnapshot
from .upstream import view_cluster

_MAX_DOMAINS_SHOWN = 12


def explain(snap: ProxySnapshot, request: Request) -> Explanation:
    address, port, how = connection_target(snap, request)
    summary = {"host": request.host, "path": request.path, "method": request.method, "port": request.port,
               "address": address, "protocol": str(request.protocol), "headers": dict(request.headers)}
    if request.sni:
        summary["sni"] = request.sni
    ex = Explanation(request=summary, source=snap.source)
    hit = find_listener(snap, address, port)
    if hit is None:
        return ex.finish(ex_.NO_LISTENER, f"no listener on {address or '*'}:{port} (connection refused)")
    ex.listener = {"name": hit.listener.name, "address": hit.address, "port": hit.port, "why": how or hit.why}
    if hit.via:
        ex.listener["via"] = hit.via
    refusal = proxy_refusal(hit.listener, snap)
    if refusal:
        ex.warnings.append(refusal)
    chain = select_filter_chain(hit.listener, request, address, port)
    if chain is None:
        return ex.finish(ex_.NO_FILTER_CHAIN, f"no filter chain of {hit.listener.name} matches (the connection is closed)")
    ex.filter_chain = {"name": chain.label,
                       "not_chosen": [{"name": n, "why": w} for n, w in chain.rejected]}
    for f in chain.chain.filters:
        hcm = connection_manager(f)
        if hcm is not None:
            ex.filter_chain["filter"] = "envoy.filters.network.http_connection_manager"
            if not request.protocol.is_http:
                ex.warnings.append(f"a {request.protocol} connection reached an HTTP connection manager: "
                                   "the proxy will expect HTTP on it")
            return _http(ex, snap, request, hcm, hit.listener, hit.port)
        tcp = tcp_proxy(f)
        if tcp is not None:
            ex.filter_chain["filter"] = "envoy.filters.network.tcp_proxy"
            return _tcp(ex, snap, tcp)
    return ex.finish(ex_.REJECTED, f"filter chain {chain.label} has neither an HTTP connection manager nor a TCP proxy")


def proxy_refusal(listener: Any, snap: ProxySnapshot) -> str:
    """Why pilotfish's proxy would refuse ``listener`` as a whole ('' when it takes it): the
    replay follows Envoy's semantics either way."""
    try:
        compile_listener(listener, f"Listener[{listener.name}]", StatsStore(), dict.fromkeys(snap.clusters), {},
                         snap.routes)
    except RouteWarming:
        return ""
    except ProxyConfigError as exc:
        return f"pilotfish proxy refuses listener {listener.name}: {exc}"
    return ""


def connection_target(snap: ProxySnapshot, request: Request) -> tuple[str | None, int, str]:
    """(destination address or None for any, port, how it was chosen: '' when as asked)."""
    if request.address is not None:
        return request.address, request.port, ""
    if not snap.is_gateway and not _has_virtual_outbound(snap):
        proxy_listener = _http_proxy_listener(snap)
        if proxy_listener is not None:
            a, p = proxy_listener
            return a, p, f"the sidecar's HTTP proxy listener {a}:{p} (the app's HTTP_PROXY)"
    if snap.is_gateway:
        return None, request.port, ""
    for ip in _service_addresses(snap, request.bare_host, request.port):
        return ip, request.port, ""
    return None, request.port, ""


def _has_virtual_outbound(snap: ProxySnapshot) -> bool:
    return any(l.use_original_dst.value for l in snap.listeners.values())


def _http_proxy_listener(snap: ProxySnapshot) -> tuple[str, int] | None:
    for lst in snap.listeners.values():
        s = socket_of(lst)
        if s is None:
            continue
        for _, chain in chains_of(lst):
            for f in chain.filters:
                hcm = connection_manager(f)
                if hcm is not None and hcm.HasField("rds") and hcm.rds.route_config_name == naming.HTTP_PROXY_ROUTE:
                    return s
    return None


def _service_addresses(snap: ProxySnapshot, host: str, port: int) -> list[str]:
    """The host's VIPs or endpoint addresses: from the source when it knows services, else from
    the endpoints of the outbound cluster for that host and port."""
    host = host.lower()

    def named(fqdn: str) -> bool:
        return fqdn == host or fqdn.startswith(host + ".")

    for fqdn, ips in snap.service_addresses.items():
        if named(fqdn):
            return list(ips)
    for name in snap.clusters:
        parsed = naming.parse_cluster_name(name)
        if parsed is not None and parsed[0] == naming.OUTBOUND and parsed[1] == port and not parsed[2] \
                and named(parsed[3]):
            view = view_cluster(snap, name)
            return [e["address"] for e in view.endpoints]
    return []


# ---------------------------------------------------------------- HTTP


def _http(ex: Explanation, snap: ProxySnapshot, request: Request, hcm: Any, listener: Any, port: int) -> Explanation:
    head = request.head()
    routing = compile_routing(hcm, listener, port, snap.routes, set(snap.clusters), head.authority)
    ex.warnings += routing.warnings
    ex.route_config = {"name": routing.route_config, "inline": routing.inline}
    if routing.table is None:
        return ex.finish(ex_.REJECTED, routing.error)
    authority, rc = routing.authority, routing.messages
    vh, route = choose(routing.table, head, authority)
    host = authority.decode("latin-1")
    if vh is None:
        domains = [d for v in rc.virtual_hosts for d in v.domains]
        shown = ", ".join(domains[:_MAX_DOMAINS_SHOWN]) + (f" and {len(domains) - _MAX_DOMAINS_SHOWN} more"
                                                           if len(domains) > _MAX_DOMAINS_SHOWN else "")
        why = (f"no virtual host of route configuration {routing.route_config} matches host {host!r} "
               f"(domains: {shown or 'none'})")
        return ex.finish(ex_.NOT_FOUND, why, 404)
    vh_msg = vhost_message(rc, vh)
    ex.virtual_host = {"name": vh.name, "domain": matched_domain(routing.table, vh_msg, authority),
                       "domains": list(vh_msg.domains)}
    not_matched = []
    for r, msg in zip(vh.routes, vh_msg.routes):
        if r is route:
            break
        info = route_info(r, msg)
        info["why"] = miss_reasons(r, msg, head)
        not_matched.append(info)
    if route is None:
        ex.route = {"not_matched": not_matched}
        return ex.finish(ex_.NOT_FOUND, f"no route of virtual host {vh.name} matches "
                                        f"{request.method} {request.path}", 404)
    ex.route = {**route_info(route, vh_msg.routes[list(vh.routes).index(route)]), "not_matched": not_matched}
    action = route.action
    if route.action_kind == DIRECT:
        if route.name == naming.BLACKHOLE_ROUTE:
            return ex.finish(ex_.BLACKHOLE, f"{host} is not in the registry and the outbound traffic policy is "
                                            f"REGISTRY_ONLY: route {route.name} answers {action.status}", action.status)
        return ex.finish(ex_.DIRECT_RESPONSE, f"route {route.name or '(unnamed)'} answers {action.status} itself",
                         action.status)
    if route.action_kind != FORWARD:
        location = redirect_location(route, action, head, authority, head.forwarded_proto or b"http")
        ex.route["redirect"] = location.decode("latin-1")
        return ex.finish(ex_.REDIRECT, f"redirected ({action.status}) to {location.decode('latin-1')}", action.status)
    if action.weighted:
        targets = [(e.cluster, e.weight) for e in action.weighted]
    elif action.cluster_header:
        value = header_value(head.headers, action.cluster_header)
        targets = [(value.decode("latin-1") if value else "", None)]
    else:
        targets = [(action.cluster, None)]
    return _to_clusters(ex, snap, targets, action.not_found_status, action.total_weight)


def _to_clusters(ex: Explanation, snap: ProxySnapshot, targets: list[tuple[str, int | None]],
                 not_found_status: int, total_weight: int = 0) -> Explanation:
    views = [(view_cluster(snap, name), weight) for name, weight in targets]
    for view, _ in views:
        if view.exists and not (view.passthrough or view.blackhole):
            ex.endpoints[view.name] = view.endpoints
        if view.error:
            ex.warnings.append(view.error)
    if len(views) == 1 and views[0][1] is None:
        ex.cluster = views[0][0].info
    else:
        ex.cluster = {"weighted": [{**v.info, "weight": w} for v, w in views], "total_weight": total_weight}
    present = [(v, w) for v, w in views if v.exists]
    missing = [v.name or "(empty cluster header)" for v, _ in views if not v.exists]
    if not present:
        return ex.finish(ex_.CLUSTER_NOT_FOUND, f"cluster {', '.join(missing)} is not in the proxy's configuration",
                         not_found_status)
    if len(views) == 1 and views[0][0].passthrough:
        return ex.finish(ex_.PASSTHROUGH, f"{views[0][0].name}: sent on to the original destination as it is")
    if len(views) == 1 and views[0][0].blackhole:
        return ex.finish(ex_.BLACKHOLE, f"{views[0][0].name}: dropped")
    serving = [(v, w) for v, w in present if v.usable or v.passthrough]
    if not serving:
        names = ", ".join(v.name for v, _ in present)
        return ex.finish(ex_.NO_HEALTHY_UPSTREAM, f"no healthy endpoint in {names} (503 no healthy upstream)", 503)
    serving_names = {v.name for v, _ in serving}
    notes = [f"{v.name} has no healthy endpoint: its share fails with 503" for v, _ in present
             if v.name not in serving_names]
    notes += [f"{name} is not in the proxy's configuration: its share fails" for name in missing]
    if len(views) == 1:
        v = views[0][0]
        why = f"to {v.name} ({v.usable} healthy endpoint{'s' if v.usable != 1 else ''})"
    else:
        why = "split " + ", ".join(f"{w}/{total_weight} to {v.name}" for v, w in views)
    return ex.finish(ex_.ROUTED, "; ".join([why, *notes]))


# ---------------------------------------------------------------- TCP


def _tcp(ex: Explanation, snap: ProxySnapshot, tcp: Any) -> Explanation:
    if tcp.WhichOneof("cluster_specifier") == "weighted_clusters":
        targets = [(c.name, c.weight) for c in tcp.weighted_clusters.clusters]
        total = sum(w for _, w in targets)
    else:
        targets, total = [(tcp.cluster, None)], 0
    out = _to_clusters(ex, snap, targets, 0, total)
    if out.outcome == ex_.ROUTED:
        return out.finish(ex_.TCP_PROXY, f"TCP proxied {out.reason}")
    if out.outcome == ex_.NO_HEALTHY_UPSTREAM:
        out.status = None  # a TCP connection is closed, not answered
    if out.outcome == ex_.CLUSTER_NOT_FOUND:
        out.status = None
    return out
