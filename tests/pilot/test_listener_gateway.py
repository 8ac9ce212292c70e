"""Gateway listeners: one per distinct server port of the Gateways selecting the proxy."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from pilotfish.config.loader import documents_from_text, to_resource
from pilotfish.pilot.listeners import build_listeners
from pilotfish.pilot.proxy import Proxy, proxy_from_node
from pilotfish.pilot.push_context import PushContext

GATEWAYS = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
  - port: {number: 9000, name: tcp, protocol: TCP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: other, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["shop.example.com"]
  - port: {number: 8081, name: grpc, protocol: GRPC}
    bind: 127.0.0.40
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: default}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 8090, name: http, protocol: HTTP}
    hosts: ["*"]
"""


def push() -> PushContext:
    return PushContext(resources=tuple(to_resource(d) for d in documents_from_text(GATEWAYS, "gw.yaml")))


def gateway(labels: dict[str, str] | None = None) -> Proxy:
    return proxy_from_node("router~127.0.0.2~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local",
                           {"NAMESPACE": "istio-system", "LABELS": labels or {"istio": "ingressgateway"}})


def hcm(lst: listener_pb2.Listener) -> hcm_pb2.HttpConnectionManager:
    out = hcm_pb2.HttpConnectionManager()
    assert lst.filter_chains[0].filters[0].typed_config.Unpack(out)
    return out


def test_one_listener_per_distinct_http_server_port() -> None:
    listeners = {lst.name: lst for lst in build_listeners(push(), gateway(), set())}
    assert sorted(listeners) == ["0.0.0.0_8080", "127.0.0.40_8081"]
    lst = listeners["0.0.0.0_8080"]
    assert lst.address.socket_address.address == "0.0.0.0"
    assert lst.address.socket_address.port_value == 8080
    assert not lst.HasField("bind_to_port") or lst.bind_to_port.value  # a real socket


def test_gateway_http_routes_come_from_rds_http_port() -> None:
    listeners = {lst.name: lst for lst in build_listeners(push(), gateway(), set())}
    m = hcm(listeners["0.0.0.0_8080"])
    assert m.rds.route_config_name == "http.8080"
    assert m.rds.config_source.HasField("ads")
    assert m.stat_prefix == "outbound_0.0.0.0_8080"
    assert hcm(listeners["127.0.0.40_8081"]).rds.route_config_name == "http.8081"


def test_gateway_connection_manager_trusts_the_remote_address() -> None:
    m = hcm(build_listeners(push(), gateway(), set())[0])
    assert m.use_remote_address.value
    assert m.server_name == "istio-envoy"
    assert m.http_filters[-1].name == "envoy.filters.http.router"


def test_https_and_tcp_servers_get_no_listener_yet() -> None:
    names = {lst.name for lst in build_listeners(push(), gateway(), set())}
    assert "0.0.0.0_8443" not in names and "0.0.0.0_9000" not in names


def test_a_gateway_only_gets_the_servers_of_gateways_selecting_it() -> None:
    names = [lst.name for lst in build_listeners(push(), gateway({"istio": "egressgateway"}), set())]
    assert names == ["0.0.0.0_8090"]
    assert build_listeners(push(), gateway({"app": "other"}), set()) == []


GATEWAY_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: 8080}
  - {name: status-port, port: 15021, targetPort: 15021}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["web.example.com"]
  - port: {number: 9090, name: http-direct, protocol: HTTP}
    hosts: ["web.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web.example.com]
  gateways: [web]
  http: [{route: [{destination: {host: web.default.svc.cluster.local}}]}]
"""


def registered_gateway_push(gw: Proxy) -> PushContext:
    """The gateway as istiod registers it when it connects: an instance of its own Service."""
    from pilotfish.registry.build import build_registry
    from pilotfish.registry.model import Workload

    resources = tuple(to_resource(d) for d in documents_from_text(GATEWAY_SERVICE, "gw.yaml"))
    me = Workload(name="ingress-1", namespace="istio-system", address=gw.ip, labels=dict(gw.labels))
    return PushContext(resources=resources, registry=build_registry(resources, connected=[me]))


def test_a_server_port_of_the_gateway_service_listens_on_its_target_port() -> None:
    gw = gateway()
    push = registered_gateway_push(gw)
    names = sorted(lst.name for lst in build_listeners(push, gw, set()))
    assert names == ["0.0.0.0_8080", "0.0.0.0_9090"]  # 80 → 8080; 9090 is no service port: as it is
    from pilotfish.pilot.routes import build_routes

    (config,) = build_routes(push, gw, {"http.8080"})
    assert [(v.name, list(v.domains)) for v in config.virtual_hosts] == [
        ("web.example.com:80", ["web.example.com", "web.example.com:80"])]


def test_a_none_mode_gateway_binds_its_own_address() -> None:
    gw = proxy_from_node("router~127.0.7.9~ingress-1.istio-system~istio-system.svc.cluster.local",
                         {"NAMESPACE": "istio-system", "LABELS": {"istio": "ingressgateway"},
                          "INTERCEPTION_MODE": "NONE"})
    push = registered_gateway_push(gw)
    addresses = sorted((lst.address.socket_address.address, lst.address.socket_address.port_value)
                       for lst in build_listeners(push, gw, set()))
    assert addresses == [("127.0.7.9", 8080), ("127.0.7.9", 9090)]
