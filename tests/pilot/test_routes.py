"""RDS: the route configurations a sidecar, a gateway and a proxyless gRPC client ask for."""

from __future__ import annotations

from envoy.config.route.v3 import route_pb2

from pilotfish.config.models.kube import MeshConfig, OutboundTrafficPolicy
from pilotfish.pilot.routes import build_routes
from tests.pilot.route_fixtures import accepted_by_proxy, gateway, push_of, sidecar, svc

REVIEWS_JASON = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v3}
"""

BOOKINFO_GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match:
    - uri: {exact: /productpage}
    - uri: {prefix: /static}
    route:
    - destination: {host: productpage, port: {number: 9080}}
"""


def one(push, proxy, name: str) -> route_pb2.RouteConfiguration:  # type: ignore[no-untyped-def]
    (config,) = build_routes(push, proxy, {name})
    assert config.name == name
    accepted_by_proxy(config)
    return config


def vhost(config: route_pb2.RouteConfiguration, name: str):  # type: ignore[no-untyped-def]
    (vh,) = [v for v in config.virtual_hosts if v.name == name]
    return vh


def test_sidecar_port_config_has_a_vhost_per_service_with_istio_domains() -> None:
    config = one(push_of(), sidecar(), "9080")
    assert [v.name for v in config.virtual_hosts] == [
        "details.default.svc.cluster.local:9080", "productpage.default.svc.cluster.local:9080",
        "ratings.default.svc.cluster.local:9080", "reviews.default.svc.cluster.local:9080", "allow_any"]
    vh = vhost(config, "reviews.default.svc.cluster.local:9080")
    assert set(vh.domains) == {
        "reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local:9080", "reviews", "reviews:9080",
        "reviews.default.svc", "reviews.default.svc:9080", "reviews.default", "reviews.default:9080",
        "10.0.0.2", "10.0.0.2:9080"}
    (route,) = vh.routes
    assert route.name == "default" and route.route.cluster == "outbound|9080||reviews.default.svc.cluster.local"


def test_short_name_only_in_the_callers_namespace() -> None:
    config = one(push_of(), sidecar(ns="other"), "9080")
    domains = vhost(config, "reviews.default.svc.cluster.local:9080").domains
    assert "reviews" not in domains and "reviews.default" in domains


def test_only_services_with_the_port_and_http() -> None:
    services = (svc("reviews"), svc("mongo", ports=(27017,)), svc("tcp", ports=(9080,), protocol=__import__(
        "pilotfish.registry.model", fromlist=["Protocol"]).Protocol.TCP))
    config = one(push_of(services=services), sidecar(), "9080")
    assert [v.name for v in config.virtual_hosts] == ["reviews.default.svc.cluster.local:9080", "allow_any"]


def test_virtual_service_routes_first_match_wins() -> None:
    config = one(push_of(REVIEWS_JASON), sidecar(), "9080")
    jason, rest = vhost(config, "reviews.default.svc.cluster.local:9080").routes
    assert jason.match.headers[0].name == "end-user" and jason.match.headers[0].string_match.exact == "jason"
    assert jason.route.cluster == "outbound|9080|v2|reviews.default.svc.cluster.local"
    assert rest.match.prefix == "/" and rest.route.cluster == "outbound|9080|v3|reviews.default.svc.cluster.local"


def test_each_match_is_a_route_and_catch_all_ends_the_list() -> None:
    push = push_of("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - name: api
    match:
    - {name: one, uri: {prefix: /a}}
    - {name: two, uri: {prefix: /b}}
    route: [{destination: {host: ratings, subset: v1}}]
  - route: [{destination: {host: ratings, subset: v2}}]
  - route: [{destination: {host: ratings, subset: v3}}]
""")
    routes = vhost(one(push, sidecar(), "9080"), "ratings.default.svc.cluster.local:9080").routes
    assert [r.name for r in routes] == ["api.one", "api.two", ""]
    assert routes[2].route.cluster.endswith("|v2|ratings.default.svc.cluster.local")


def test_source_labels_pick_routes_per_caller() -> None:
    push = push_of("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{sourceLabels: {app: productpage}}]
    route: [{destination: {host: reviews, subset: v2}}]
""")
    from_pp = vhost(one(push, sidecar(labels={"app": "productpage"}), "9080"), "reviews.default.svc.cluster.local:9080")
    assert from_pp.routes[0].route.cluster.endswith("|v2|reviews.default.svc.cluster.local")
    other = vhost(one(push, sidecar(labels={"app": "ratings"}), "9080"), "reviews.default.svc.cluster.local:9080")
    assert [r.name for r in other.routes] == ["default"]  # no rule applies: the service's default route


def test_registry_only_gives_block_all() -> None:
    mesh = MeshConfig(outbound_traffic_policy=OutboundTrafficPolicy(mode="REGISTRY_ONLY"))
    last = one(push_of(mesh=mesh), sidecar(), "9080").virtual_hosts[-1]
    assert last.name == "block_all" and list(last.domains) == ["*"]
    assert last.routes[0].direct_response.status == 502


def test_allow_any_goes_to_passthrough_and_sidecar_overrides_mesh() -> None:
    last = one(push_of(), sidecar(), "9080").virtual_hosts[-1]
    assert last.name == "allow_any" and last.routes[0].route.cluster == "PassthroughCluster"
    push = push_of("""
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
""")
    assert one(push, sidecar(), "9080").virtual_hosts[-1].name == "block_all"


def test_http_proxy_config_tells_services_apart_by_port() -> None:
    services = (svc("reviews", vip="10.0.0.2"), svc("web", ports=(80, 9090)))
    config = one(push_of(REVIEWS_JASON, services=services), sidecar(), "http_proxy")
    names = [v.name for v in config.virtual_hosts]
    assert names == ["reviews.default.svc.cluster.local:9080", "web.default.svc.cluster.local:80",
                     "web.default.svc.cluster.local:9090", "allow_any"]
    reviews = vhost(config, "reviews.default.svc.cluster.local:9080")
    assert "reviews:9080" in reviews.domains and "reviews" not in reviews.domains
    assert reviews.routes[0].route.cluster.endswith("|v2|reviews.default.svc.cluster.local")
    web80 = vhost(config, "web.default.svc.cluster.local:80")
    assert "web" in web80.domains and "web:80" in web80.domains
    assert "web:9090" in vhost(config, "web.default.svc.cluster.local:9090").domains
    assert not config.ignore_port_in_host_matching


def test_gateway_routes_for_bound_hosts() -> None:
    config = one(push_of(BOOKINFO_GATEWAY), gateway(), "http.8080")
    (vh,) = config.virtual_hosts
    assert vh.name == "*:8080" and list(vh.domains) == ["*"]
    assert [(r.match.path, r.match.prefix) for r in vh.routes] == [("/productpage", ""), ("", "/static")]
    assert vh.routes[0].route.cluster == "outbound|9080||productpage.default.svc.cluster.local"


def test_gateway_host_without_virtual_service_gets_no_vhost() -> None:
    push = push_of(BOOKINFO_GATEWAY.replace('hosts: ["*"]\n---', 'hosts: ["bookinfo.com", "other.com"]\n---')
                   .replace('hosts: ["*"]\n  gateways', 'hosts: ["bookinfo.com"]\n  gateways'))
    config = one(push, gateway(), "http.8080")
    (vh,) = config.virtual_hosts
    assert vh.name == "bookinfo.com:8080" and list(vh.domains) == ["bookinfo.com", "bookinfo.com:8080"]


def test_gateway_ignores_other_ports_and_unselected_gateways() -> None:
    push = push_of(BOOKINFO_GATEWAY)
    assert not one(push, gateway(), "http.9999").virtual_hosts
    assert not one(push, gateway(labels={"istio": "egressgateway"}), "http.8080").virtual_hosts
    assert build_routes(push, sidecar(), {"http.8080"}) == []


def test_mesh_virtual_service_does_not_bind_to_gateway() -> None:
    push = push_of(BOOKINFO_GATEWAY.split("---")[0] + "---" + REVIEWS_JASON)
    assert not one(push, gateway(), "http.8080").virtual_hosts


def test_delegate_routes_merge_under_the_parent_match() -> None:
    push = push_of("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: root
    match: [{uri: {prefix: /reviews}}]
    timeout: 3s
    delegate: {name: child, namespace: team}
  - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: child, namespace: team}
spec:
  http:
  - name: v2
    match: [{uri: {prefix: /reviews/v2}}]
    route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
  - match: [{uri: {prefix: /other}}]
    route: [{destination: {host: reviews.default.svc.cluster.local, subset: v9}}]
  - route: [{destination: {host: reviews.default.svc.cluster.local, subset: v3}}]
""")
    routes = vhost(one(push, sidecar(), "9080"), "reviews.default.svc.cluster.local:9080").routes
    assert [(r.name, r.match.prefix, r.route.cluster.split("|")[2]) for r in routes] == [
        ("root-v2", "/reviews/v2", "v2"), ("root", "/reviews", "v3"), ("", "/", "v1")]
    assert routes[0].route.timeout.seconds == 3


def test_grpc_proxyless_route_config() -> None:
    name = "reviews.default.svc.cluster.local:9080"
    config = one(push_of(REVIEWS_JASON), sidecar(generator="grpc"), name)
    (vh,) = config.virtual_hosts
    assert list(vh.domains) == [name, "reviews.default.svc.cluster.local"]
    assert vh.routes[1].route.cluster == "outbound|9080|v3|reviews.default.svc.cluster.local"
    assert vh.routes[1].route.HasField("max_stream_duration")
    assert build_routes(push_of(), sidecar(generator="grpc"), {"nothing.example.com:80"}) == []


def test_unknown_names_are_absent() -> None:
    assert build_routes(push_of(), sidecar(), {"no-such-route", "9999"})[0].virtual_hosts[0].name == "allow_any"
    assert [c.name for c in build_routes(push_of(), sidecar(), {"no-such-route"})] == []


def test_gateway_https_redirect_server_redirects() -> None:
    push = push_of(BOOKINFO_GATEWAY.replace(
        'hosts: ["*"]\n---', 'hosts: ["secure.com"]\n    tls: {httpsRedirect: true}\n---'))
    (vh,) = one(push, gateway(), "http.8080").virtual_hosts
    assert vh.name == "secure.com:8080" and vh.routes[0].redirect.https_redirect


def test_virtual_service_for_an_outside_host_on_port_80() -> None:
    push = push_of("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ext, namespace: default}
spec:
  hosts: [httpbin.org]
  http:
  - timeout: 5s
    route: [{destination: {host: httpbin.org}}]
""")
    vh = vhost(one(push, sidecar(), "80"), "httpbin.org:80")
    assert list(vh.domains) == ["httpbin.org", "httpbin.org:80"]
    assert vh.routes[0].route.cluster == "outbound|80||httpbin.org"
    assert [v.name for v in one(push, sidecar(), "9080").virtual_hosts if "httpbin" in v.name] == []
