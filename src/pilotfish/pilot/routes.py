"""RDS: the RouteConfigurations a proxy asks for by name.

- ``9080`` (a sidecar's outbound port): a virtual host per visible HTTP service on that port,
  then ``allow_any`` or ``block_all`` by the outbound traffic policy;
- ``http_proxy`` (the NONE-mode HTTP proxy listener): every service on every HTTP port,
  told apart by ``host:port``;
- ``http.8080`` (a gateway's plaintext server port): the hosts VirtualServices bind to the
  gateway's servers on that port;
- ``reviews.default.svc.cluster.local:9080`` (grpcio's proxyless client): one service.
"""

from __future__ import annotations

from collections.abc import Iterable

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2

from ..config.base import Resource
from ..config.host import Hostname
from ..registry.model import Service
from .gateway_ports import listener_ports, target_ports
from .naming import (
    ALLOW_ANY_ROUTE, BLACKHOLE_ROUTE, HTTP_PROXY_ROUTE, OUTBOUND, PASSTHROUGH_CLUSTER, cluster_name,
)
from .proxy import Proxy
from .push_context import MESH_GATEWAY, PushContext
from .route_action import destination_cluster, mesh_retry, retry_policy, service_hash_policy, set_timeout
from .route_hosts import (
    bare, bind_virtual_services, is_http_or_sniffed, non_service_hosts, service_names, unique_services, with_port,
)
from .route_http import RouteContext, config_path, http_routes
from .route_match import is_catch_all

DEFAULT_ROUTE = "default"
MAX_DIRECT_RESPONSE_BODY = 1024 * 1024
_PLAINTEXT_HTTP = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB"}


def build_routes(push: PushContext, proxy: Proxy, names: set[str]) -> list[route_pb2.RouteConfiguration]:
    """The named route configurations that exist for ``proxy``, sorted by name.

    A route configuration depends on what the proxy is, not who: its namespace, kind, the Sidecar
    or Gateways that apply to it, and its labels only when some VirtualService matches on
    sourceLabels. Proxies alike share one made per push (a thousand virtual hosts take a
    sidecar ~0.15 s to translate)."""
    shape = _shape(push, proxy)
    out = []
    for name in sorted(names):
        key = ("rds", name, shape)
        if key in push.generated:
            config = push.generated[key]
        else:
            config = _patched(push, proxy, name, key)
            if config is None:
                config = route_config(push, proxy, name)
            push.generated[key] = config
        if config is not None:
            out.append(config)
    return out


def _patched(push: PushContext, proxy: Proxy, name: str, key: tuple[object, ...]) -> route_pb2.RouteConfiguration | None:
    """A sidecar's port configuration from the earlier push's, with the routes of the edited
    VirtualServices (found by their routes' Istio metadata) translated again; None when that
    cannot be done exactly (no earlier one, or an edit that empties or fills a virtual host)."""
    prior = push.prior_routes
    if not prior or not push.edited or not name.isdigit() or proxy.is_gateway:
        return None
    old = prior.get(key)
    if old is None:
        return None
    ctx = RouteContext(push, proxy, int(name), {MESH_GATEWAY})
    fresh: dict[str, list[rc.Route]] = {}
    for before, after in push.edited:
        routes = http_routes(ctx, after)
        if bool(routes) != bool(http_routes(ctx, before)):
            return None  # its services fall back to (or leave) their default routes here
        fresh[config_path(after)] = routes
    out = route_pb2.RouteConfiguration()
    out.CopyFrom(old)
    for vh in out.virtual_hosts:
        if not vh.routes:
            continue
        istio = vh.routes[0].metadata.filter_metadata.get("istio")
        path = istio.fields["config"].string_value if istio is not None and "config" in istio.fields else ""
        if path in fresh:
            del vh.routes[:]
            vh.routes.extend(fresh[path])
    return out


def _shape(push: PushContext, proxy: Proxy) -> tuple[object, ...]:
    """What of ``proxy`` its route configurations depend on."""
    if "rds-source-labels" not in push.generated:
        push.generated["rds-source-labels"] = any(
            m.source_labels for vs in push.of_kind("VirtualService") for http in vs.spec.http or ()
            for m in http.match or ())
    labels = tuple(sorted(proxy.labels.items())) if push.generated["rds-source-labels"] else None
    if proxy.is_gateway:
        scope: object = tuple(id(g) for g in push.gateways_for(proxy))
    else:
        scope = id(push.sidecar_for(proxy))
    return (proxy.type, proxy.namespace, proxy.generator, scope, labels)


def route_config(push: PushContext, proxy: Proxy, name: str) -> route_pb2.RouteConfiguration | None:
    if name == HTTP_PROXY_ROUTE:
        return http_proxy_config(push, proxy)
    if name.startswith("http.") and name[5:].isdigit():
        return gateway_config(push, proxy, name, int(name[5:])) if proxy.is_gateway else None
    if name.isdigit():
        return None if proxy.is_gateway else outbound_config(push, proxy, int(name))
    host, sep, port = name.rpartition(":")
    if sep and port.isdigit() and host:
        return grpc_config(push, proxy, name, host, int(port))
    return None


def _config(name: str, vhosts: list[rc.VirtualHost], ignore_port: bool) -> route_pb2.RouteConfiguration:
    out = route_pb2.RouteConfiguration(name=name, virtual_hosts=vhosts, ignore_port_in_host_matching=ignore_port)
    out.max_direct_response_body_size_bytes.value = MAX_DIRECT_RESPONSE_BODY
    out.validate_clusters.value = False  # clusters may arrive after the routes naming them
    return out


def _vhost(name: str, domains: list[str], routes: Iterable[rc.Route], seen: set[str]) -> rc.VirtualHost | None:
    """A virtual host with the domains no earlier one claimed (a domain twice is refused)."""
    fresh = []
    for d in domains:
        if d.lower() not in seen:
            seen.add(d.lower())
            fresh.append(d)
    if not fresh:
        return None
    return rc.VirtualHost(name=name, domains=fresh, routes=list(routes), include_request_attempt_count=True)


def default_route(push: PushContext, proxy: Proxy, service: Service, port: int) -> rc.Route:
    """Istio's BuildDefaultHTTPOutboundRoute: everything to the service's port, default retries,
    no timeout, session affinity from its DestinationRule."""
    out = rc.Route(name=DEFAULT_ROUTE, match=rc.RouteMatch(prefix="/"))
    action = out.route
    action.cluster = cluster_name(OUTBOUND, port, "", service.hostname)
    set_timeout(action, None, proxy.generator == "grpc")
    hp = service_hash_policy(push, proxy, service, port)
    if hp is not None:
        action.hash_policy.append(hp)
    policy = retry_policy(mesh_retry(push), hp is not None)
    if policy is not None:  # (the mesh default may say attempts: 0)
        action.retry_policy.CopyFrom(policy)
    return out


def _service_routes(push: PushContext, proxy: Proxy, service: Service, port: int,
                    vs: Resource | None) -> list[rc.Route]:
    if vs is not None:
        routes = http_routes(RouteContext(push, proxy, port, {MESH_GATEWAY}), vs)
        if routes:
            return routes
    return [default_route(push, proxy, service, port)]


# ---------------------------------------------------------------- sidecar


def catch_all_vhost(push: PushContext, proxy: Proxy) -> rc.VirtualHost:
    """``allow_any`` (to PassthroughCluster, or the Sidecar's egressProxy) or ``block_all``
    (502), by the Sidecar's outboundTrafficPolicy, else the mesh's."""
    mode = str(push.mesh.outbound_traffic_policy.mode or "ALLOW_ANY")
    egress = None
    sidecar = push.sidecar_for(proxy)
    policy = sidecar.spec.outbound_traffic_policy if sidecar is not None else None
    if policy is not None and policy.mode is not None:
        mode = str(policy.mode)
    if policy is not None:
        egress = policy.egress_proxy
    route = rc.Route(match=rc.RouteMatch(prefix="/"))
    if mode == "REGISTRY_ONLY":
        route.name = BLACKHOLE_ROUTE
        route.direct_response.status = 502
        name = BLACKHOLE_ROUTE
    else:
        route.name = name = ALLOW_ANY_ROUTE
        route.route.cluster = (destination_cluster(push, proxy, egress, sidecar.namespace if sidecar else proxy.namespace, 0)
                               if egress is not None else PASSTHROUGH_CLUSTER)
        set_timeout(route.route, None, False)
    return rc.VirtualHost(name=name, domains=["*"], routes=[route], include_request_attempt_count=True)


def outbound_config(push: PushContext, proxy: Proxy, port: int) -> route_pb2.RouteConfiguration:
    """A sidecar's route configuration for one outbound port."""
    services = unique_services(push, proxy)
    on_port = [s for s in services if (p := s.port(port)) is not None and is_http_or_sniffed(p)]
    vss = push.virtual_services_for(proxy, {MESH_GATEWAY})
    binding = bind_virtual_services(push, vss, on_port)
    owners = set(map(id, bind_virtual_services(push, vss, services).values()))
    seen: set[str] = set()
    vhosts: list[rc.VirtualHost] = []
    all_hosts = {s.hostname for s in services}
    bound_to: dict[int, list[Service]] = {}  # id(VirtualService) → its services on this port
    for s in on_port:
        owner = binding.get(s.hostname)
        if owner is not None:
            bound_to.setdefault(id(owner), []).append(s)
    for vs in vss:
        bound = bound_to.get(id(vs), [])
        # a VirtualService for hosts outside the registry only (bookinfo.com) serves port 80
        if not bound and not (port == 80 and id(vs) not in owners):
            continue
        routes = http_routes(RouteContext(push, proxy, port, {MESH_GATEWAY}), vs)
        if not routes:
            for s in bound:  # no rule applies to this proxy: the services keep their default route
                binding.pop(s.hostname, None)
            continue
        for h in non_service_hosts(push, vs, all_hosts):
            vh = _vhost(with_port(h, port), [h, with_port(h, port)], routes, seen)
            if vh is not None:
                vhosts.append(vh)
        for s in bound:
            vh = _vhost(with_port(s.hostname, port), _domains(push, proxy, s, port), routes, seen)
            if vh is not None:
                vhosts.append(vh)
    for s in on_port:
        if s.hostname not in binding:
            vh = _vhost(with_port(s.hostname, port), _domains(push, proxy, s, port),
                        [default_route(push, proxy, s, port)], seen)
            if vh is not None:
                vhosts.append(vh)
    vhosts.sort(key=lambda v: v.name)
    vhosts.append(catch_all_vhost(push, proxy))
    return _config(str(port), vhosts, ignore_port=False)


def _domains(push: PushContext, proxy: Proxy, service: Service, port: int) -> list[str]:
    out = []
    for n in service_names(push, proxy, service):
        out += [bare(n), with_port(n, port)]
    return out


def http_proxy_config(push: PushContext, proxy: Proxy) -> route_pb2.RouteConfiguration:
    """The HTTP proxy listener's routes: an app's ``http://reviews:9080/`` through its sidecar.
    Hosts carry their port (bare names only for port 80), so the port picks the service port."""
    services = unique_services(push, proxy)
    vss = push.virtual_services_for(proxy, {MESH_GATEWAY})
    binding = bind_virtual_services(push, vss, services)
    seen: set[str] = set()
    vhosts = []
    for s in services:
        for p in s.ports:
            if not is_http_or_sniffed(p):
                continue
            domains = []
            for n in service_names(push, proxy, s):
                domains += [bare(n), with_port(n, 80)] if p.number == 80 else [with_port(n, p.number)]
            vh = _vhost(with_port(s.hostname, p.number), domains,
                        _service_routes(push, proxy, s, p.number, binding.get(s.hostname)), seen)
            if vh is not None:
                vhosts.append(vh)
    vhosts.sort(key=lambda v: v.name)
    vhosts.append(catch_all_vhost(push, proxy))
    return _config(HTTP_PROXY_ROUTE, vhosts, ignore_port=False)


# ---------------------------------------------------------------- proxyless gRPC


def grpc_config(push: PushContext, proxy: Proxy, name: str, host: str, port: int) -> route_pb2.RouteConfiguration | None:
    """grpcio's xDS client asks for ``host:port`` (its target): one virtual host for it."""
    service = push.service(host, proxy.namespace)
    vss = push.virtual_services_for(proxy, {MESH_GATEWAY})
    if service is None:
        matched = [vs for vs in vss if any(h == host or (h.is_wildcard and Hostname(host).subset_of(h))
                                           for h in push.vs_hosts(vs))]
        if not matched:
            return None
        routes = http_routes(RouteContext(push, proxy, port, {MESH_GATEWAY}), matched[0])
    else:
        vs = bind_virtual_services(push, vss, [service]).get(service.hostname)
        routes = _service_routes(push, proxy, service, port, vs)
    if not routes:
        return None
    vhost = rc.VirtualHost(name=name, domains=[name, host], routes=routes)
    return _config(name, [vhost], ignore_port=False)


# ---------------------------------------------------------------- gateway


def gateway_config(push: PushContext, proxy: Proxy, name: str, port: int) -> route_pb2.RouteConfiguration:
    """A gateway's plaintext HTTP servers served on listener ``port``: a virtual host per server
    host that a VirtualService bound to the gateway also names. Unbound hosts get none (404 NR).
    Virtual hosts and port matches use the server's port (``*:80`` in ``http.8080``), as Istio."""
    routes_by_host: dict[tuple[str, int], list[rc.Route]] = {}
    redirect_hosts: list[tuple[str, int]] = []
    targets = target_ports(push, proxy)
    for gw in push.gateways_for(proxy):
        gw_name = f"{gw.namespace}/{gw.name}"
        for server in gw.spec.servers or ():
            if server.port is None or port not in listener_ports(int(server.port.number or 0), targets):
                continue
            server_port = int(server.port.number or 0)
            if (server.port.protocol or "").upper() not in _PLAINTEXT_HTTP:
                continue
            if server.tls is not None and server.tls.https_redirect:
                redirect_hosts += [(h.partition("/")[2] if "/" in h else h, server_port) for h in server.hosts or ()]
                continue
            ctx = RouteContext(push, proxy, server_port, {gw_name})
            for vs in push.virtual_services_for(proxy, {gw_name}):
                hosts = _intersect(_server_hosts(server.hosts or (), vs.namespace, gw.namespace), push.vs_hosts(vs))
                if not hosts:
                    continue
                routes = http_routes(ctx, vs)
                if not routes:
                    continue
                for h in hosts:
                    routes_by_host.setdefault((h, server_port), []).extend(routes)
    seen: set[str] = set()
    vhosts = []
    for h, sp in dict.fromkeys(redirect_hosts):  # Istio's require_tls, as the redirect it answers with
        redirect = rc.Route(match=rc.RouteMatch(prefix="/"), redirect=rc.RedirectAction(https_redirect=True))
        vh = _vhost(with_port(h.lower(), sp), _gateway_domains(h.lower(), sp), [redirect], seen)
        if vh is not None:
            vhosts.append(vh)
    for (h, sp), routes in routes_by_host.items():
        ordered = [r for r in routes if not is_catch_all(r)] + [r for r in routes if is_catch_all(r)]
        vh = _vhost(with_port(h, sp), _gateway_domains(h, sp), ordered, seen)
        if vh is not None:
            vhosts.append(vh)
    vhosts.sort(key=lambda v: v.name)
    return _config(name, vhosts, ignore_port=True)


def _gateway_domains(host: str, port: int) -> list[str]:
    return ["*"] if host == "*" else [host, with_port(host, port)]


def _server_hosts(hosts: Iterable[str], vs_namespace: str, gw_namespace: str) -> list[Hostname]:
    """A server's ``ns/host`` entries that admit VirtualServices of ``vs_namespace``."""
    out = []
    for h in hosts:
        ns, sep, name = h.partition("/")
        if not sep:
            out.append(Hostname(h.lower()))
        elif ns == "*" or ns == vs_namespace or (ns == "." and vs_namespace == gw_namespace):
            out.append(Hostname(name.lower()))
    return out


def _intersect(server_hosts: list[Hostname], vs_hosts: list[Hostname]) -> list[str]:
    """The names both sides cover, the more specific of each matching pair."""
    out: dict[str, None] = {}
    for s in server_hosts:
        for v in vs_hosts:
            v = Hostname(v.lower())
            if not s.matches(v):
                continue
            if Hostname(v).subset_of(s):
                out[str(v)] = None
            elif s.subset_of(v):
                out[str(s)] = None
    return list(out)
