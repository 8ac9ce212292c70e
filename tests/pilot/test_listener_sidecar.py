"""Sidecar listeners: NONE mode (the local mesh) and REDIRECT (Istio's default)."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from pilotfish.config.loader import documents_from_text, to_resource
from pilotfish.config.models.kube import MeshConfig
from pilotfish.pilot.listeners import build_listeners
from pilotfish.pilot.proxy import Proxy, proxy_from_node
from pilotfish.pilot.push_context import PushContext
from pilotfish.registry.model import Endpoint, Port, Protocol, RegistrySnapshot, Service

REVIEWS = Service("reviews.default.svc.cluster.local", "default",
                  (Port("http", 9080, Protocol.HTTP), Port("mysql", 3306, Protocol.TCP)), ("10.96.0.9",))
RATINGS = Service("ratings.default.svc.cluster.local", "default", (Port("http", 9080, Protocol.HTTP),),
                  ("10.96.0.10",))
DB = Service("db.default.svc.cluster.local", "default", (Port("tcp", 5432, Protocol.TCP),), ("10.96.0.11",))
REVIEWS_IP = "127.0.0.5"


def push(yaml: str = "", mesh: MeshConfig | None = None) -> PushContext:
    resources = tuple(to_resource(d) for d in documents_from_text(yaml, "test.yaml")) if yaml else ()
    registry = RegistrySnapshot(
        services=(REVIEWS, RATINGS, DB),
        endpoints={(REVIEWS.hostname, "default"): (Endpoint(REVIEWS_IP, {"http": 19080}),),
                   (RATINGS.hostname, "default"): (Endpoint("127.0.0.6"),)})
    return PushContext(resources=resources, registry=registry, **({"mesh": mesh} if mesh else {}))


def sidecar(mode: str = "NONE", ip: str = REVIEWS_IP, **metadata: str) -> Proxy:
    return proxy_from_node(f"sidecar~{ip}~reviews-v1.default~default.svc.cluster.local",
                           {"NAMESPACE": "default", "INTERCEPTION_MODE": mode, **metadata})


def by_name(listeners: list[listener_pb2.Listener]) -> dict[str, listener_pb2.Listener]:
    return {lst.name: lst for lst in listeners}


def hcm(lst: listener_pb2.Listener, chain: int = 0) -> hcm_pb2.HttpConnectionManager:
    out = hcm_pb2.HttpConnectionManager()
    assert lst.filter_chains[chain].filters[-1].typed_config.Unpack(out)
    return out


def tcp_cluster(chain: object) -> str:
    out = tcp_proxy_pb2.TcpProxy()
    assert chain.filters[-1].typed_config.Unpack(out)  # type: ignore[attr-defined]
    return out.cluster


# ---------------------------------------------------------------- NONE


def test_none_mode_inbound_listener_binds_the_workload_address_on_the_instance_port() -> None:
    lst = by_name(build_listeners(push(), sidecar(), set()))["127.0.0.5_19080"]
    assert lst.address.socket_address.address == REVIEWS_IP
    assert lst.address.socket_address.port_value == 19080
    assert lst.traffic_direction == 1  # INBOUND
    m = hcm(lst)
    assert m.stat_prefix == "inbound_127.0.0.5_19080"
    rc = m.route_config
    assert rc.name == "inbound|19080||"
    [vhost] = rc.virtual_hosts
    assert (vhost.name, list(vhost.domains)) == ("inbound|http|9080", ["*"])
    [route] = vhost.routes
    assert route.match.prefix == "/"
    assert route.route.cluster == "inbound|19080||"
    assert route.route.HasField("timeout") and route.route.timeout.seconds == 0
    assert not m.use_remote_address.value


def test_none_mode_has_no_listener_for_tcp_ports_or_other_workloads() -> None:
    names = set(by_name(build_listeners(push(), sidecar(), set())))
    assert not any(n.endswith("_3306") for n in names)  # TCP: our proxy has no tcp_proxy
    assert "127.0.0.6_9080" not in names  # ratings' instance, not this proxy's
    assert not {"virtualOutbound", "virtualInbound"} & names


def test_none_mode_http_proxy_listener_accepts_absolute_urls() -> None:
    lst = by_name(build_listeners(push(), sidecar(), set()))["127.0.0.1_15080"]
    assert lst.address.socket_address.address == "127.0.0.1"
    m = hcm(lst)
    assert m.rds.route_config_name == "http_proxy"
    assert m.rds.config_source.HasField("ads")
    assert m.http_protocol_options.allow_absolute_url.value
    assert m.stat_prefix == "outbound_127.0.0.1_15080"


def test_http_proxy_port_follows_node_metadata() -> None:
    names = set(by_name(build_listeners(push(), sidecar(HTTP_PROXY_PORT="15181"), set())))
    assert "127.0.0.1_15181" in names and "127.0.0.1_15080" not in names


def test_sidecar_egress_listeners_bind_localhost_and_route_by_port() -> None:
    yaml = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - port: {number: 9080, protocol: HTTP, name: http}
    hosts: ["./ratings.default.svc.cluster.local"]
  - port: {number: 8081, protocol: HTTP, name: http-alt}
    bind: 127.0.0.9
    hosts: ["./*"]
  - port: {number: 5432, protocol: TCP, name: tcp}
    hosts: ["./*"]
  - hosts: ["istio-system/*"]
"""
    listeners = by_name(build_listeners(push(yaml), sidecar(), set()))
    egress = listeners["127.0.0.1_9080"]
    assert egress.address.socket_address.port_value == 9080
    assert hcm(egress).rds.route_config_name == "9080"
    assert hcm(egress).stat_prefix == "outbound_127.0.0.1_9080"
    assert hcm(listeners["127.0.0.9_8081"]).rds.route_config_name == "8081"
    assert "127.0.0.1_5432" not in listeners


def test_sidecar_ingress_listeners_replace_the_inferred_ones() -> None:
    yaml = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: reviews, namespace: default}
spec:
  ingress:
  - port: {number: 9443, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
  - port: {number: 7070, protocol: HTTP, name: http2}
    bind: 127.0.0.50
"""
    listeners = by_name(build_listeners(push(yaml), sidecar(), set()))
    assert "127.0.0.5_19080" not in listeners
    assert hcm(listeners["127.0.0.5_9443"]).route_config.virtual_hosts[0].routes[0].route.cluster == "inbound|9443||"
    assert listeners["127.0.0.50_7070"].address.socket_address.address == "127.0.0.50"


def test_sidecar_http_filters_end_with_the_router() -> None:
    m = hcm(by_name(build_listeners(push(), sidecar(), set()))["127.0.0.5_19080"])
    assert [f.name for f in m.http_filters] == [
        "istio.metadata_exchange", "envoy.filters.http.cors", "envoy.filters.http.fault", "istio.stats",
        "envoy.filters.http.router"]
    assert m.server_name == "istio-envoy"
    assert m.normalize_path.value and m.generate_request_id.value
    assert [u.upgrade_type for u in m.upgrade_configs] == ["websocket"]
    assert m.HasField("stream_idle_timeout") and m.stream_idle_timeout.seconds == 0


# ---------------------------------------------------------------- REDIRECT


def test_redirect_virtual_outbound_passes_unknown_traffic_through() -> None:
    lst = by_name(build_listeners(push(), sidecar("REDIRECT"), set()))["virtualOutbound"]
    assert lst.address.socket_address.port_value == 15001
    assert lst.use_original_dst.value
    assert [c.name for c in lst.filter_chains] == ["virtualOutbound-blackhole", "virtualOutbound-catchall-tcp"]
    assert lst.filter_chains[0].filter_chain_match.destination_port.value == 15001
    assert tcp_cluster(lst.filter_chains[0]) == "BlackHoleCluster"
    assert tcp_cluster(lst.filter_chains[1]) == "PassthroughCluster"


def test_registry_only_sends_unknown_traffic_to_the_black_hole() -> None:
    mesh = MeshConfig.model_validate({"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}})
    lst = by_name(build_listeners(push(mesh=mesh), sidecar("REDIRECT"), set()))["virtualOutbound"]
    assert tcp_cluster(lst.filter_chains[1]) == "BlackHoleCluster"
    yaml = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""
    lst = by_name(build_listeners(push(yaml), sidecar("REDIRECT"), set()))["virtualOutbound"]
    assert tcp_cluster(lst.filter_chains[1]) == "BlackHoleCluster"


def test_redirect_virtual_inbound_has_a_chain_per_inbound_port() -> None:
    lst = by_name(build_listeners(push(), sidecar("REDIRECT"), set()))["virtualInbound"]
    assert lst.address.socket_address.port_value == 15006
    names = [c.name for c in lst.filter_chains]
    assert names[:3] == ["virtualInbound-blackhole", "virtualInbound-catchall-http", "virtualInbound"]
    http = lst.filter_chains[names.index("0.0.0.0_19080")]
    assert http.filter_chain_match.destination_port.value == 19080
    m = hcm(lst, names.index("0.0.0.0_19080"))
    assert m.stat_prefix == "inbound_0.0.0.0_19080"
    assert m.route_config.virtual_hosts[0].routes[0].route.cluster == "inbound|19080||"
    tcp = lst.filter_chains[names.index("0.0.0.0_3306")]
    assert tcp_cluster(tcp) == "inbound|3306||"


def test_redirect_outbound_listeners_per_http_port_and_per_tcp_vip() -> None:
    listeners = by_name(build_listeners(push(), sidecar("REDIRECT"), set()))
    http = listeners["0.0.0.0_9080"]
    assert not http.bind_to_port.value
    assert hcm(http).rds.route_config_name == "9080"
    assert hcm(http).stat_prefix == "outbound_0.0.0.0_9080"
    assert tcp_cluster(listeners["10.96.0.11_5432"].filter_chains[0]) == "outbound|5432||db.default.svc.cluster.local"
    assert tcp_cluster(listeners["10.96.0.9_3306"].filter_chains[0]) == "outbound|3306||reviews.default.svc.cluster.local"
    assert "127.0.0.1_15080" not in listeners


def test_redirect_outbound_listeners_follow_sidecar_egress_hosts() -> None:
    yaml = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - hosts: ["./ratings.default.svc.cluster.local"]
"""
    names = set(by_name(build_listeners(push(yaml), sidecar("REDIRECT"), set())))
    assert "0.0.0.0_9080" in names
    assert "10.96.0.11_5432" not in names
