"""VirtualService ``tcp`` routes on a REDIRECT sidecar's ``VIP_PORT`` listeners."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from pilotfish.config.loader import documents_from_text, to_resource
from pilotfish.pilot.listener_tcp import in_subnets, tcp_proxy_config
from pilotfish.pilot.listeners import build_listeners
from pilotfish.pilot.proxy import Proxy, proxy_from_node
from pilotfish.pilot.push_context import PushContext
from pilotfish.registry.model import Port, Protocol, RegistrySnapshot, Service

DB = Service("db.default.svc.cluster.local", "default",
             (Port("tcp", 5432, Protocol.TCP), Port("admin", 5433, Protocol.TCP)), ("10.96.0.11",))
CACHE = Service("cache.other.svc.cluster.local", "other", (Port("tcp", 6379, Protocol.TCP),), ("10.96.0.12",))
DB_VIP = "10.96.0.11"

HEAD = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: [db]
  tcp:
"""


def push(yaml: str = "") -> PushContext:
    resources = tuple(to_resource(d) for d in documents_from_text(yaml, "test.yaml")) if yaml else ()
    return PushContext(resources=resources, registry=RegistrySnapshot(services=(DB, CACHE), endpoints={}))


def sidecar(labels: dict[str, str] | None = None, namespace: str = "default") -> Proxy:
    return proxy_from_node(f"sidecar~10.0.0.5~app-1.{namespace}~{namespace}.svc.cluster.local",
                           {"NAMESPACE": namespace, "INTERCEPTION_MODE": "REDIRECT", "LABELS": labels or {}})


def config(rules: str, proxy: Proxy | None = None, port: int = 5432, vip: str = DB_VIP) -> tcp_proxy_pb2.TcpProxy:
    return tcp_proxy_config(push(HEAD + rules), proxy or sidecar(), DB, port, vip)


def listener_tcp(listeners: list[listener_pb2.Listener], name: str) -> tcp_proxy_pb2.TcpProxy:
    [lst] = [lst for lst in listeners if lst.name == name]
    out = tcp_proxy_pb2.TcpProxy()
    assert lst.filter_chains[-1].filters[-1].typed_config.Unpack(out)
    return out


def test_no_virtualservice_leaves_the_service_cluster() -> None:
    tcp = tcp_proxy_config(push(), sidecar(), DB, 5432, DB_VIP)
    assert (tcp.cluster, tcp.stat_prefix) == ("outbound|5432||db.default.svc.cluster.local",) * 2
    assert not tcp.HasField("weighted_clusters")


def test_no_applying_route_leaves_the_service_cluster() -> None:
    tcp = config("""
  - match: [{port: 9999}]
    route: [{destination: {host: db, subset: v2}}]
""")
    assert tcp.cluster == "outbound|5432||db.default.svc.cluster.local"


def test_weighted_split_to_subsets() -> None:
    tcp = config("""
  - route:
    - {destination: {host: db, subset: v1}, weight: 80}
    - {destination: {host: db, subset: v2}, weight: 20}
""")
    assert not tcp.cluster
    assert tcp.stat_prefix == "db.default"
    assert [(c.name, c.weight) for c in tcp.weighted_clusters.clusters] == [
        ("outbound|5432|v1|db.default.svc.cluster.local", 80),
        ("outbound|5432|v2|db.default.svc.cluster.local", 20)]


def test_weighted_split_reaches_the_vip_listener() -> None:
    yaml = HEAD + """
  - route:
    - {destination: {host: db, subset: v1}, weight: 80}
    - {destination: {host: db, subset: v2}, weight: 20}
"""
    listeners = build_listeners(push(yaml), sidecar(), set())
    tcp = listener_tcp(listeners, "10.96.0.11_5432")
    assert [c.weight for c in tcp.weighted_clusters.clusters] == [80, 20]
    assert listener_tcp(listeners, "10.96.0.12_6379").cluster == "outbound|6379||cache.other.svc.cluster.local"


def test_port_match_picks_the_route() -> None:
    rules = """
  - match: [{port: 5433}]
    route: [{destination: {host: db, subset: admin}}]
  - match: [{port: 5432}]
    route: [{destination: {host: db, subset: v1, port: {number: 5432}}}]
"""
    assert config(rules, port=5432).cluster == "outbound|5432|v1|db.default.svc.cluster.local"
    assert config(rules, port=5433).cluster == "outbound|5433|admin|db.default.svc.cluster.local"


def test_source_labels_apply_only_to_matching_proxies() -> None:
    rules = """
  - match: [{sourceLabels: {app: reporting}}]
    route: [{destination: {host: db, subset: replica}}]
  - route: [{destination: {host: db, subset: primary}}]
"""
    assert config(rules, sidecar({"app": "reporting", "v": "1"})).cluster == \
        "outbound|5432|replica|db.default.svc.cluster.local"
    assert config(rules, sidecar({"app": "web"})).cluster == "outbound|5432|primary|db.default.svc.cluster.local"


def test_source_namespace_gateways_and_destination_subnets() -> None:
    rules = """
  - match: [{sourceNamespace: other}]
    route: [{destination: {host: db, subset: a}}]
  - match: [{gateways: [default/ingress]}]
    route: [{destination: {host: db, subset: b}}]
  - match: [{destinationSubnets: [10.0.0.0/16]}]
    route: [{destination: {host: db, subset: c}}]
  - match: [{destinationSubnets: [10.96.0.0/24], gateways: [mesh]}]
    route: [{destination: {host: db, subset: d}}]
"""
    assert config(rules).cluster == "outbound|5432|d|db.default.svc.cluster.local"
    assert config(rules, sidecar(namespace="other")).cluster == "outbound|5432|a|db.default.svc.cluster.local"


def test_destination_port_defaults_to_the_only_port_and_short_hosts_resolve_in_the_vs_namespace() -> None:
    tcp = config("""
  - route: [{destination: {host: cache.other.svc.cluster.local}}]
""")
    assert tcp.cluster == "outbound|6379||cache.other.svc.cluster.local"
    tcp = config("""
  - route: [{destination: {host: elsewhere}}]
""")
    assert tcp.cluster == "outbound|5432||elsewhere.default.svc.cluster.local"


def test_subnets() -> None:
    assert in_subnets("10.96.0.11", ["10.96.0.0/16"])
    assert in_subnets("10.96.0.11", ["bogus", "10.96.0.11"])
    assert not in_subnets("10.96.0.11", ["10.97.0.0/16", "fd00::/8"])
    assert not in_subnets("not-an-ip", ["0.0.0.0/0"])
