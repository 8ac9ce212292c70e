"""EDS: a ClusterLoadAssignment per requested ``outbound|PORT|SUBSET|HOST`` cluster (Istio's
EndpointBuilder): the service's endpoints, narrowed to the subset's labels, grouped by locality,
with priorities or weights relative to the asking proxy.

Every requested name gets an answer, empty when no such service or subset exists: a client waits
for each name it subscribed to (grpcio's does-not-exist timer costs 15 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from envoy.config.core.v3 import health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2

from ..config.models.destinationrule import TrafficPolicy
from ..config.selectors import labels_match
from ..registry.instances import is_ip
from ..registry.model import Endpoint, Port, Service
from . import locality
from .cluster_policy import MeshDefaults, cluster_policy, find_subset, mesh_defaults
from .naming import OUTBOUND, parse_cluster_name
from .proxy import Proxy
from .push_context import PushContext


def build_endpoints(push: PushContext, proxy: Proxy, names: Iterable[str]) -> list[endpoint_pb2.ClusterLoadAssignment]:
    defaults = mesh_defaults(push.mesh)
    return [load_assignment(push, proxy, name, defaults) for name in sorted(set(names))]


def load_assignment(push: PushContext, proxy: Proxy, name: str,
                    defaults: MeshDefaults | None = None) -> endpoint_pb2.ClusterLoadAssignment:
    """The endpoints of cluster ``name`` as ``proxy`` should see them."""
    defaults = defaults or mesh_defaults(push.mesh)
    # What depends only on the caller's namespace is made once per push and shared: every
    # sidecar in a namespace asks for the same thousands of assignments.
    key = ("eds", name, proxy.namespace)
    base = push.generated.get(key)
    if base is None:
        base = push.generated[key] = _namespace_assignment(push, proxy.namespace, name, defaults)
    # (the namespace counts only through the service and rule it finds: namespaces finding the
    # same ones share one assignment, made once)
    cla, groups, policy = base
    lb = policy.load_balancer if policy is not None else None
    if not groups or locality.effective_setting(defaults.locality_lb_setting, lb) is None:
        return cla  # the same for every proxy in the namespace (never modified once made)
    mine = endpoint_pb2.ClusterLoadAssignment()
    mine.CopyFrom(cla)
    apply_locality(mine, [(mine.endpoints[i], members) for i, (_, members) in enumerate(groups)], proxy,
                   policy, defaults)
    return mine


def _namespace_assignment(push: PushContext, namespace: str, name: str, defaults: MeshDefaults
                          ) -> tuple[endpoint_pb2.ClusterLoadAssignment, list[locality.Group], TrafficPolicy | None]:
    empty = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    parsed = parse_cluster_name(name)
    if parsed is None or parsed[0] != OUTBOUND:
        return empty, [], None
    _, number, subset, host = parsed
    service = push.service(host, namespace)
    port = service.port(number) if service is not None else None
    if service is None or port is None:
        return empty, [], None
    rule = push.destination_rule(namespace, service)
    shared_key = ("eds-shared", name, id(service), id(rule))
    shared = push.generated.get(shared_key)
    if shared is not None:
        return shared  # type: ignore[no-any-return]
    labels = None
    if subset:
        found = find_subset(rule, subset)
        if found is None:
            return empty, [], None
        labels = found.labels
    endpoints = [ep for ep in subset_endpoints(push, service, labels) if is_ip(ep.address)]
    cla, groups = assignment_for(name, port, endpoints)
    made = push.generated[shared_key] = (cla, groups, cluster_policy(rule, number, subset, defaults))
    return made


def subset_endpoints(push: PushContext, service: Service, labels: dict[str, str] | None) -> list[Endpoint]:
    """The service's endpoints whose labels the subset selects (all, without a subset). Every
    endpoint serves every service port (a port it does not name maps to the same number)."""
    return [ep for ep in push.registry.endpoints_of(service) if labels_match(labels, ep.labels)]


def lb_endpoint(ep: Endpoint, port: Port) -> endpoint_components_pb2.LbEndpoint:
    out = endpoint_components_pb2.LbEndpoint(
        health_status=health_check_pb2.HEALTHY if ep.healthy else health_check_pb2.UNHEALTHY)
    sa = out.endpoint.address.socket_address
    sa.address = ep.address
    sa.port_value = ep.port_for(port)
    out.load_balancing_weight.value = max(1, ep.weight)
    # Istio's endpoint metadata (istio.workload, envoy.transport_socket_match tlsMode) feeds
    # telemetry and mTLS, neither of which our proxy reads from endpoints: left out.
    return out


def assignment_for(name: str, port: Port, endpoints: Sequence[Endpoint]
                   ) -> tuple[endpoint_pb2.ClusterLoadAssignment, list[locality.Group]]:
    """A ClusterLoadAssignment with one LocalityLbEndpoints per locality (sorted by its label),
    each weighted by the sum of its endpoints' weights (grpc's client ignores unweighted
    localities), and the endpoints behind each group."""
    by_locality: dict[str, list[Endpoint]] = {}
    for ep in endpoints:
        by_locality.setdefault(ep.locality.label, []).append(ep)
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    groups: list[locality.Group] = []
    for label in sorted(by_locality):
        members = by_locality[label]
        group = cla.endpoints.add()
        loc = members[0].locality
        group.locality.SetInParent()  # present even when empty: grpcio rejects a group without one
        if label:
            group.locality.region, group.locality.zone, group.locality.sub_zone = loc.region, loc.zone, loc.subzone
        for ep in members:
            group.lb_endpoints.append(lb_endpoint(ep, port))
        group.load_balancing_weight.value = min(locality_weight(members), 4_294_967_295)
        groups.append((group, members))
    return cla, groups


def locality_weight(endpoints: Sequence[Endpoint]) -> int:
    return sum(max(1, ep.weight) for ep in endpoints)


def apply_locality(cla: endpoint_pb2.ClusterLoadAssignment, groups: Sequence[locality.Group], proxy: Proxy,
                   policy: TrafficPolicy | None, defaults: MeshDefaults) -> None:
    """Locality failover or weights for ``proxy`` when a locality setting applies (failover only
    with outlier detection)."""
    lb = policy.load_balancer if policy is not None else None
    setting = locality.effective_setting(defaults.locality_lb_setting, lb)
    if setting is None:
        return
    failover = policy is not None and policy.outlier_detection is not None
    labels = locality.topology_labels(proxy.labels, proxy.locality)
    locality.apply(cla, groups, proxy.locality, labels, setting, failover)
