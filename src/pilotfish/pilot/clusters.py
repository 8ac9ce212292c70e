"""CDS: the clusters one proxy gets (Istio's cluster.go and cluster_builder.go).

Outbound, per visible service port: ``outbound|PORT||HOST`` and one ``outbound|PORT|SUBSET|HOST``
per DestinationRule subset, typed by the service's resolution (EDS, STRICT_DNS, LOGICAL_DNS,
ORIGINAL_DST). Inbound, for a sidecar: ``inbound|PORT||`` per port its workload serves, to the
app on loopback. Then BlackHoleCluster, and for sidecars PassthroughCluster and
InboundPassthroughCluster.
"""

from __future__ import annotations

import ipaddress
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2

from ..config.base import Resource
from ..registry.instances import is_ip
from ..registry.model import Endpoint, Port, Protocol, Resolution, Service
from . import locality
from .cluster_policy import (
    HTTP_OPTIONS_KEY,
    MeshDefaults,
    apply_connection_pool,
    apply_traffic_policy,
    cluster_policy,
    find_subset,
    http_protocol_options,
    mesh_defaults,
    port_policy,
    proto_duration,
    with_mesh_defaults,
)
from .endpoints import apply_locality, assignment_for, subset_endpoints
from .naming import (
    BLACKHOLE_CLUSTER,
    INBOUND,
    INBOUND_PASSTHROUGH_CLUSTER,
    OUTBOUND,
    PASSTHROUGH_CLUSTER,
    cluster_name,
)
from .proxy import Proxy
from .push_context import PushContext

Cluster = cluster_pb2.Cluster
_RESOLUTION_TYPES = {
    Resolution.CLIENT_SIDE_LB: Cluster.EDS,
    Resolution.DNS: Cluster.STRICT_DNS,
    Resolution.DNS_ROUND_ROBIN: Cluster.LOGICAL_DNS,
    Resolution.PASSTHROUGH: Cluster.ORIGINAL_DST,
}
LOCALHOST = "127.0.0.1"


def build_clusters(push: PushContext, proxy: Proxy) -> list[cluster_pb2.Cluster]:
    defaults = mesh_defaults(push.mesh)
    out: list[Cluster] = []
    families = frozenset(":" in a for a in proxy.ip_addresses)  # IPv6 or not: a DNS cluster's lookup family
    for service in push.services_for(proxy):
        # A service's outbound clusters depend on the DestinationRule the caller's namespace
        # finds and the caller's kind, not on the caller itself (a DNS one also on its locality
        # and address family): made once per push, shared across namespaces.
        dns = service.resolution in (Resolution.DNS, Resolution.DNS_ROUND_ROBIN)
        rule = push.destination_rule(proxy.namespace, service)  # the caller's namespace counts only here
        key = ("cds", id(service), id(rule), proxy.is_gateway, proxy.generator,
               (proxy.locality, families) if dns else None)
        made = push.generated.get(key)
        if made is None:
            made = push.generated[key] = outbound_clusters(push, proxy, service, defaults)
        out.extend(made)
    out.append(blackhole_cluster(defaults))
    if not proxy.is_gateway:  # gateways have no original-destination listeners
        out.append(passthrough_cluster(defaults))
        out.extend(inbound_clusters(push, proxy, defaults))
        out.append(inbound_passthrough_cluster(defaults))
    seen: set[str] = set()
    unique = []
    for c in out:  # two services may claim one name: the first wins, as Istio
        if c.name not in seen:
            seen.add(c.name)
            unique.append(c)
    return unique


# ---------------------------------------------------------------- outbound


def discovery_type(proxy: Proxy, service: Service) -> int:
    """The cluster type for a service's resolution; gateways have no original destination to
    pass through to, so a passthrough service is EDS there."""
    if service.resolution is Resolution.PASSTHROUGH and proxy.is_gateway:
        return Cluster.EDS
    return _RESOLUTION_TYPES.get(service.resolution, Cluster.EDS)


def outbound_clusters(push: PushContext, proxy: Proxy, service: Service, defaults: MeshDefaults) -> list[Cluster]:
    rule = push.destination_rule(proxy.namespace, service)
    out: list[Cluster] = []
    for port in service.ports:
        if port.protocol is Protocol.UDP:
            continue
        default = _outbound_cluster(push, proxy, service, port, rule, "", defaults)
        if default is None:
            continue
        out.append(default)
        for subset in (rule.spec.subsets or ()) if rule is not None else ():
            c = _outbound_cluster(push, proxy, service, port, rule, subset.name, defaults)
            if c is not None:
                out.append(c)
    return out


def _outbound_cluster(push: PushContext, proxy: Proxy, service: Service, port: Port, rule: Resource | None,
                      subset: str, defaults: MeshDefaults) -> Cluster | None:
    name = cluster_name(OUTBOUND, port.number, subset, service.hostname)
    kind = discovery_type(proxy, service)
    policy = cluster_policy(rule, port.number, subset, defaults)
    groups: list[locality.Group] = []
    c = Cluster(name=name, type=kind)
    if kind in (Cluster.STRICT_DNS, Cluster.LOGICAL_DNS):
        found = find_subset(rule, subset) if subset else None
        labels = found.labels if found is not None else None
        endpoints = subset_endpoints(push, service, labels)
        if kind == Cluster.LOGICAL_DNS:
            endpoints = endpoints[:1]  # one name resolved per connection: one endpoint
        if not endpoints:
            return None  # Istio drops a DNS cluster with nothing to resolve
        cla, groups = assignment_for(name, port, endpoints)
        c.load_assignment.CopyFrom(cla)
        _dns_settings(c, proxy, defaults)
    apply_traffic_policy(c, policy, defaults)
    if proxy.generator == "grpc" and c.lb_policy != Cluster.RING_HASH:
        c.lb_policy = Cluster.ROUND_ROBIN  # grpcgen's default; grpcio rejects LEAST_REQUEST
    if c.type == Cluster.EDS:
        eds = c.eds_cluster_config
        eds.service_name = name
        eds.eds_config.ads.SetInParent()
        eds.eds_config.initial_fetch_timeout.SetInParent()
        eds.eds_config.resource_api_version = config_source_pb2.V3
    if c.HasField("load_assignment"):
        if c.type == Cluster.LOGICAL_DNS:
            # our proxy requires LOGICAL_DNS to keep its one locality whole: no failover split
            return c
        apply_locality(c.load_assignment, groups, proxy, policy, defaults)
    # HTTP2/gRPC ports would get explicit HTTP/2 upstreams and sniffed ports
    # use_downstream_protocol in Istio; our proxy speaks HTTP/1.1 upstream only, so neither is set.
    return c


def _dns_settings(c: Cluster, proxy: Proxy, defaults: MeshDefaults) -> None:
    """Lookup family from the proxy's own addresses, refresh rate from the mesh. (Istio's
    respect_dns_ttl, dns_jitter and c-ares resolver config are outside our proxy's subset.)"""
    versions = {ipaddress.ip_address(a).version for a in proxy.ip_addresses if is_ip(a)}
    if versions == {6}:
        c.dns_lookup_family = Cluster.V6_ONLY
    elif versions == {4, 6}:
        c.dns_lookup_family = Cluster.ALL
    else:
        c.dns_lookup_family = Cluster.V4_ONLY
    c.dns_refresh_rate.CopyFrom(proto_duration(defaults.dns_refresh_rate))



# ---------------------------------------------------------------- inbound


def inbound_clusters(push: PushContext, proxy: Proxy, defaults: MeshDefaults) -> list[Cluster]:
    """``inbound|PORT||`` to the app. With Sidecar ingress listeners, one per listener (its
    defaultEndpoint); otherwise one per service port of the services whose endpoints are this
    proxy's workload, to 127.0.0.1 on the instance's port (or the app's, when the local mesh's
    APP_PORTS moved it)."""
    instances = service_instances(push, proxy)
    sidecar = push.sidecar_for(proxy)
    ingress = sidecar.spec.ingress if sidecar is not None else None
    out: list[Cluster] = []
    if ingress:
        for listener in ingress:
            if listener.port is None or not listener.port.number:
                continue
            number = int(listener.port.number)
            match = next(((s, p, ep) for s, p, ep in instances
                          if p.number == number or ep.port_for(p) == number), None)
            target = _default_endpoint(listener.default_endpoint or "", proxy)
            if target is None and listener.default_endpoint:
                continue  # a unix socket: our proxy cannot dial one for proxied traffic
            if target is None and match is not None:
                instance_port = match[2].port_for(match[1])
                target = (LOCALHOST, proxy.app_ports.get(instance_port, instance_port))
            service = match[0] if match is not None else None
            out.append(_inbound_cluster(push, proxy, number, target, service, sidecar, defaults))
        return out
    for service, port, ep in instances:
        target = ep.port_for(port)  # Istio names inbound clusters after the instance's port
        app = (LOCALHOST, proxy.app_ports.get(target, target))
        out.append(_inbound_cluster(push, proxy, target, app, service, sidecar, defaults))
    return out


def service_instances(push: PushContext, proxy: Proxy) -> list[tuple[Service, Port, Endpoint]]:
    """(service, port, endpoint) for each service port served by an endpoint at one of the
    proxy's addresses; one per instance port, the first service (by hostname) winning."""
    seen: set[int] = set()
    out = []
    first: dict[int, tuple[Service, Endpoint]] = {}  # id(service) → its first endpoint here
    for service, ep in push.proxy_endpoints(proxy):
        first.setdefault(id(service), (service, ep))
    for service, ep in first.values():
        mine = [ep]
        for port in service.ports:
            target = mine[0].port_for(port)
            if port.protocol is Protocol.UDP or target in seen:
                continue
            seen.add(target)
            out.append((service, port, mine[0]))
    return out


def _default_endpoint(text: str, proxy: Proxy) -> tuple[str, int] | None:
    """Sidecar ingress defaultEndpoint ``127.0.0.1:PORT``, ``0.0.0.0:PORT`` (the workload's own
    IPv4 address), ``[::1]:PORT``, ``[::]:PORT``; None for ``unix://`` or nothing."""
    if not text or text.startswith("unix://"):
        return None
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit():
        return None
    if host == "0.0.0.0":
        host = next((a for a in proxy.ip_addresses if is_ip(a) and ipaddress.ip_address(a).version == 4), LOCALHOST)
    elif host == "::":
        host = next((a for a in proxy.ip_addresses if is_ip(a) and ipaddress.ip_address(a).version == 6), "::1")
    return host, int(port)


def _inbound_cluster(push: PushContext, proxy: Proxy, number: int, target: tuple[str, int] | None,
                     service: Service | None, sidecar: Resource | None, defaults: MeshDefaults) -> Cluster:
    """STATIC to ``target``, or ORIGINAL_DST without one (Istio's passthrough inbound cluster).
    The service's DestinationRule connection pool applies server side too, and the Sidecar's
    inbound connection pool overrides it."""
    name = cluster_name(INBOUND, number)
    c = Cluster(name=name, type=Cluster.STATIC if target is not None else Cluster.ORIGINAL_DST)
    if target is not None:
        group = c.load_assignment.endpoints.add()
        sa = group.lb_endpoints.add().endpoint.address.socket_address
        sa.address, sa.port_value = target
        c.load_assignment.cluster_name = name
    policy = None
    if service is not None:
        rule = push.destination_rule(proxy.namespace, service)
        if rule is not None:
            policy = port_policy(rule.spec.traffic_policy, number)[0]
    policy = with_mesh_defaults(policy, defaults)
    pool = policy.connection_pool if policy is not None else None
    if sidecar is not None:
        for listener in sidecar.spec.ingress or ():
            if listener.port is not None and listener.port.number == number and listener.connection_pool:
                pool = listener.connection_pool
                break
        else:
            pool = sidecar.spec.inbound_connection_pool or pool
    apply_connection_pool(c, pool, policy, defaults)
    if c.type == Cluster.ORIGINAL_DST:
        c.lb_policy = Cluster.CLUSTER_PROVIDED
    return c


# ---------------------------------------------------------------- catch-alls


def blackhole_cluster(defaults: MeshDefaults) -> Cluster:
    """STATIC with no endpoints: where routes to nothing go."""
    c = Cluster(name=BLACKHOLE_CLUSTER, type=Cluster.STATIC, lb_policy=Cluster.ROUND_ROBIN)
    c.connect_timeout.CopyFrom(proto_duration(defaults.connect_timeout))
    return c


def passthrough_cluster(defaults: MeshDefaults, name: str = PASSTHROUGH_CLUSTER) -> Cluster:
    """ORIGINAL_DST: traffic to destinations the mesh does not know (ALLOW_ANY), with Istio's
    5-minute idle timeout; the mesh's default connection pool caps it."""
    c = Cluster(name=name, type=Cluster.ORIGINAL_DST, lb_policy=Cluster.CLUSTER_PROVIDED)
    apply_connection_pool(c, defaults.connection_pool, None, defaults)
    options = http_protocol_options(c)
    # Istio also sets use_downstream_protocol_config (HTTP/2 when the caller speaks it); our
    # proxy's upstreams are HTTP/1.1 only.
    if not options.common_http_protocol_options.HasField("idle_timeout"):
        options.common_http_protocol_options.idle_timeout.seconds = 300
    c.typed_extension_protocol_options[HTTP_OPTIONS_KEY].Pack(options)
    return c


def inbound_passthrough_cluster(defaults: MeshDefaults) -> Cluster:
    """Inbound traffic to ports no service declares. Istio binds its upstream connections to a
    magic source address so iptables lets them through; our proxy does not support
    upstream_bind_config, so it is left out."""
    return passthrough_cluster(defaults, INBOUND_PASSTHROUGH_CLUSTER)

