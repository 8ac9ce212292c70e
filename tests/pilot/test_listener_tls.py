"""VirtualService ``tls`` routes (SNI passthrough) on a REDIRECT sidecar's outbound listeners."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from pilotfish.config.loader import documents_from_text, to_resource
from pilotfish.pilot.listeners import build_listeners
from pilotfish.pilot.proxy import Proxy, proxy_from_node
from pilotfish.pilot.push_context import PushContext
from pilotfish.registry.model import Port, Protocol, RegistrySnapshot, Service

WEB = Service("web.default.svc.cluster.local", "default", (Port("https", 443, Protocol.HTTPS),), ("10.96.0.21",))
MAIL = Service("mail.default.svc.cluster.local", "default", (Port("tls", 8443, Protocol.TLS),), ())
DB = Service("db.default.svc.cluster.local", "default", (Port("tcp", 5432, Protocol.TCP),), ("10.96.0.11",))
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"

HEAD = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [HOST]
  tls:
"""


def listeners(rules: str = "", labels: dict[str, str] | None = None, host: str = "web"
              ) -> list[listener_pb2.Listener]:
    yaml = HEAD.replace("HOST", host) + rules if rules else ""
    resources = tuple(to_resource(d) for d in documents_from_text(yaml, "test.yaml")) if yaml else ()
    push = PushContext(resources=resources, registry=RegistrySnapshot(services=(WEB, MAIL, DB), endpoints={}))
    proxy: Proxy = proxy_from_node("sidecar~10.0.0.5~app-1.default~default.svc.cluster.local",
                                   {"NAMESPACE": "default", "INTERCEPTION_MODE": "REDIRECT", "LABELS": labels or {}})
    return build_listeners(push, proxy, set())


def listener(rules: str = "", name: str = "10.96.0.21_443", labels: dict[str, str] | None = None,
             host: str = "web") -> listener_pb2.Listener:
    [lst] = [lst for lst in listeners(rules, labels, host) if lst.name == name]
    return lst


def chains(lst: listener_pb2.Listener) -> list[tuple[list[str], tcp_proxy_pb2.TcpProxy]]:
    """(server_names, tcp_proxy) per filter chain; the tcp_proxy is the chain's last filter."""
    out = []
    for chain in lst.filter_chains:
        tcp = tcp_proxy_pb2.TcpProxy()
        assert chain.filters[-1].typed_config.Unpack(tcp)
        out.append((list(chain.filter_chain_match.server_names), tcp))
    return out


def test_sni_hosts_route_to_subsets_then_fall_back_to_the_service() -> None:
    lst = listener("""
  - match: [{sniHosts: [web], port: 443}]
    route: [{destination: {host: web, subset: v1}}]
  - match: [{sniHosts: [api.example.com, "*.example.org"]}]
    route: [{destination: {host: web, subset: v2}}]
""")
    assert [f.name for f in lst.listener_filters] == [TLS_INSPECTOR]
    assert not lst.bind_to_port.value
    got = [(names, tcp.cluster) for names, tcp in chains(lst)]
    assert got == [(["web.default.svc.cluster.local"], "outbound|443|v1|web.default.svc.cluster.local"),
                   (["api.example.com", "*.example.org"], "outbound|443|v2|web.default.svc.cluster.local"),
                   ([], "outbound|443||web.default.svc.cluster.local")]
    assert not any(c.filter_chain_match.HasField("destination_port") for c in lst.filter_chains)


def test_weighted_split() -> None:
    [(names, tcp), _] = chains(listener("""
  - match: [{sniHosts: [web]}]
    route:
    - {destination: {host: web, subset: v1}, weight: 75}
    - {destination: {host: web, subset: v2}, weight: 25}
"""))
    assert names == ["web.default.svc.cluster.local"]
    assert tcp.stat_prefix == "web.default"
    assert [(c.name, c.weight) for c in tcp.weighted_clusters.clusters] == [
        ("outbound|443|v1|web.default.svc.cluster.local", 75),
        ("outbound|443|v2|web.default.svc.cluster.local", 25)]


def test_no_virtualservice_is_one_chain_to_the_service_cluster() -> None:
    lst = listener()
    assert [f.name for f in lst.listener_filters] == [TLS_INSPECTOR]
    [(names, tcp)] = chains(lst)
    assert (names, tcp.cluster) == ([], "outbound|443||web.default.svc.cluster.local")
    assert not lst.filter_chains[0].HasField("filter_chain_match")


def test_static_predicates_and_repeated_sni() -> None:
    rules = """
  - match: [{sniHosts: [web], port: 9999}]
    route: [{destination: {host: web, subset: wrong-port}}]
  - match: [{sniHosts: [web], sourceLabels: {app: reporting}}]
    route: [{destination: {host: web, subset: reporting}}]
  - match: [{sniHosts: [web], gateways: [ingress]}]
    route: [{destination: {host: web, subset: gateway}}]
  - match: [{sniHosts: [web], destinationSubnets: [10.0.0.0/24]}]
    route: [{destination: {host: web, subset: other-subnet}}]
  - match: [{sniHosts: [web], destinationSubnets: [10.96.0.0/16], gateways: [mesh]}]
    route: [{destination: {host: web, subset: v1}}]
  - match: [{sniHosts: ["*"]}]
    route: [{destination: {host: web, subset: any}}]
"""
    got = [(names, tcp.cluster) for names, tcp in chains(listener(rules))]
    assert got == [(["web.default.svc.cluster.local"], "outbound|443|v1|web.default.svc.cluster.local"),
                   ([], "outbound|443|any|web.default.svc.cluster.local")]
    got = [tcp.cluster for _, tcp in chains(listener(rules, labels={"app": "reporting"}))]
    assert got == ["outbound|443|reporting|web.default.svc.cluster.local",
                   "outbound|443|any|web.default.svc.cluster.local"]


def test_tls_port_without_vip_gets_a_wildcard_listener() -> None:
    all_listeners = listeners("""
  - match: [{sniHosts: [web]}]
    route: [{destination: {host: web, subset: v1}}]
""")
    [mail] = [lst for lst in all_listeners if lst.name == "0.0.0.0_8443"]
    assert mail.address.socket_address.address == "0.0.0.0"
    assert [f.name for f in mail.listener_filters] == [TLS_INSPECTOR]
    [(names, tcp)] = chains(mail)
    assert (names, tcp.cluster) == ([], "outbound|8443||mail.default.svc.cluster.local")
    [db] = [lst for lst in all_listeners if lst.name == "10.96.0.11_5432"]
    assert not db.listener_filters


def test_destination_subnets_become_prefix_ranges_without_a_vip() -> None:
    lst = listener("""
  - match: [{sniHosts: [mail.example.com], destinationSubnets: [192.168.1.7/24, bogus]}]
    route: [{destination: {host: mail, subset: v2, port: {number: 8443}}}]
""", name="0.0.0.0_8443", host="mail")
    first = lst.filter_chains[0].filter_chain_match
    assert [(r.address_prefix, r.prefix_len.value) for r in first.prefix_ranges] == [("192.168.1.0", 24)]
    assert [tcp.cluster for _, tcp in chains(lst)] == ["outbound|8443|v2|mail.default.svc.cluster.local",
                                                       "outbound|8443||mail.default.svc.cluster.local"]
