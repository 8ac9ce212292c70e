"""LDS dispatch: names filtering, proxyless gRPC API listeners, and our own proxy accepting
what is generated for it."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from pilotfish.config.loader import documents_from_text, to_resource
from pilotfish.pilot.listeners import build_listeners, is_grpc_name
from pilotfish.pilot.proxy import Proxy, proxy_from_node
from pilotfish.pilot.push_context import PushContext
from pilotfish.proxy.common.stats import StatsStore
from pilotfish.proxy.compile.listeners import compile_listener
from pilotfish.proxy.compile.subset import CheckResult, check_message, connection_managers
from pilotfish.registry.model import Endpoint, Port, Protocol, RegistrySnapshot, Service

REVIEWS = Service("reviews.default.svc.cluster.local", "default", (Port("grpc", 9080, Protocol.GRPC),), ("10.96.0.9",))
PAYMENTS = Service("payments.shop.svc.cluster.local", "shop", (Port("http", 8000, Protocol.HTTP),))

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - port: {number: 9090, protocol: HTTP, name: http}
    hosts: ["./*"]
"""


def push() -> PushContext:
    registry = RegistrySnapshot(services=(REVIEWS, PAYMENTS),
                                endpoints={(REVIEWS.hostname, "default"): (Endpoint("127.0.0.5"),)})
    return PushContext(resources=tuple(to_resource(d) for d in documents_from_text(GATEWAY, "t.yaml")),
                       registry=registry)


def node(kind: str = "sidecar", **metadata: object) -> Proxy:
    return proxy_from_node(f"{kind}~127.0.0.5~reviews-v1.default~default.svc.cluster.local",
                           {"NAMESPACE": "default", **metadata})


def grpc_client() -> Proxy:
    return node(GENERATOR="grpc")


def api_hcm(lst: listener_pb2.Listener) -> hcm_pb2.HttpConnectionManager:
    out = hcm_pb2.HttpConnectionManager()
    assert lst.api_listener.api_listener.Unpack(out)
    return out


def test_names_select_listeners() -> None:
    proxy = node(INTERCEPTION_MODE="NONE")
    assert [lst.name for lst in build_listeners(push(), proxy, {"127.0.0.1_15080", "nope"})] == ["127.0.0.1_15080"]


def test_grpc_names_are_host_port() -> None:
    assert is_grpc_name("reviews:9080")
    assert is_grpc_name("xds.istio.io/grpc/lds/inbound/127.0.0.5:9080")
    assert not is_grpc_name("0.0.0.0_9080") and not is_grpc_name("virtualInbound")


def test_grpc_client_gets_an_api_listener_per_asked_service_port() -> None:
    listeners = build_listeners(push(), grpc_client(), {"reviews:9080", "reviews.default.svc.cluster.local:9080"})
    assert [lst.name for lst in listeners] == ["reviews.default.svc.cluster.local:9080", "reviews:9080"]
    for lst in listeners:
        assert not lst.filter_chains  # no socket: the HCM is the channel's config
        m = api_hcm(lst)
        assert m.rds.route_config_name == lst.name
        assert m.rds.config_source.HasField("ads")
        assert m.http_filters[-1].name == "envoy.filters.http.router"
        assert [f.name for f in m.http_filters] == ["envoy.filters.http.fault", "envoy.filters.http.router"]


def test_grpc_client_gets_nothing_for_unknown_ports_or_hosts() -> None:
    assert build_listeners(push(), grpc_client(), {"reviews:9999", "nowhere:80"}) == []


def test_grpc_client_without_names_gets_every_visible_service_port() -> None:
    # The namespace's Sidecar (egress ./*) hides payments in "shop".
    names = [lst.name for lst in build_listeners(push(), grpc_client(), set())]
    assert names == ["reviews.default.svc.cluster.local:9080"]


def test_grpc_short_names_resolve_in_the_clients_namespace() -> None:
    assert [lst.name for lst in build_listeners(push(), grpc_client(), {"reviews.default:9080"})] == ["reviews.default:9080"]


def test_envoy_sidecar_asking_for_host_port_also_gets_an_api_listener() -> None:
    listeners = build_listeners(push(), node(INTERCEPTION_MODE="NONE"), {"reviews:9080"})
    assert [lst.name for lst in listeners] == ["reviews:9080"]


def test_grpc_server_gets_an_inbound_listener_on_its_address() -> None:
    name = "xds.istio.io/grpc/lds/inbound/127.0.0.5:9080"
    [lst] = build_listeners(push(), grpc_client(), {name})
    assert lst.name == name
    assert (lst.address.socket_address.address, lst.address.socket_address.port_value) == ("127.0.0.5", 9080)
    m = hcm_pb2.HttpConnectionManager()
    assert lst.filter_chains[0].filters[0].typed_config.Unpack(m)
    assert m.route_config.virtual_hosts[0].routes[0].HasField("non_forwarding_action")
    assert m.http_filters[-1].name == "envoy.filters.http.router"


def _compile(listeners: list[listener_pb2.Listener]) -> list[str]:
    """What our proxy does with LDS resources: the supported-subset check, then the compile
    with every RDS name and cluster it refers to present."""
    routes = {}
    clusters: dict[str, object] = {}
    for _, m in connection_managers(listeners):
        if m.HasField("rds"):
            routes[m.rds.route_config_name] = route_pb2.RouteConfiguration(name=m.rds.route_config_name)
        for vh in m.route_config.virtual_hosts:
            for r in vh.routes:
                clusters[r.route.cluster] = object()
    names = []
    for lst in listeners:
        check_message(lst, f"Listener[{lst.name}]", CheckResult())
        compiled = compile_listener(lst, f"Listener[{lst.name}]", StatsStore(), clusters, {}, routes)  # type: ignore[arg-type]
        names.append(compiled.name)
    return names


def test_our_proxy_accepts_none_mode_sidecar_listeners() -> None:
    listeners = build_listeners(push(), node(INTERCEPTION_MODE="NONE"), set())
    assert _compile(listeners) == ["127.0.0.5_9080", "127.0.0.1_15080", "127.0.0.1_9090"]


def test_our_proxy_accepts_gateway_listeners() -> None:
    listeners = build_listeners(push(), node("router", LABELS={"istio": "ingressgateway"}), set())
    assert _compile(listeners) == ["0.0.0.0_8080"]
