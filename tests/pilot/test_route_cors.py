"""VirtualService corsPolicy → the route's envoy.filters.http.cors CorsPolicy, the cors filter in
the generated connection managers, and our proxy accepting both (RDS and LDS)."""

from __future__ import annotations

from envoy.extensions.filters.http.cors.v3 import cors_pb2

from pilotfish.pilot.listeners import build_listeners
from pilotfish.pilot.proxy import proxy_from_node
from pilotfish.pilot.route_cors import CORS_FILTER
from pilotfish.pilot.routes import build_routes
from pilotfish.proxy.common.stats import StatsStore
from pilotfish.proxy.compile.listeners import compile_listener
from pilotfish.proxy.compile.subset import CheckResult, check_message, connection_managers
from tests.pilot.route_fixtures import accepted_by_proxy, push_of, sidecar

VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: default}
spec:
  hosts: [reviews]
  http:
  - corsPolicy:
      allowOrigins: [{exact: "https://app.example"}, {regex: "https://.*\\\\.trusted\\\\.example"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-token, x-user]
      exposeHeaders: [x-trace]
      maxAge: 24h
      allowCredentials: true
      %s
    route:
    - destination: {host: reviews}
"""


def policy_of(extra: str = "") -> cors_pb2.CorsPolicy:
    (config,) = build_routes(push_of(VS % extra), sidecar(), {"9080"})
    accepted_by_proxy(config)
    (vh,) = [v for v in config.virtual_hosts if v.name == "reviews.default.svc.cluster.local:9080"]
    (r,) = vh.routes
    out = cors_pb2.CorsPolicy()
    assert r.typed_per_filter_config[CORS_FILTER].Unpack(out)
    return out


def test_the_route_carries_the_policy_as_istio_translates_it() -> None:
    p = policy_of()
    assert [m.exact or m.safe_regex.regex for m in p.allow_origin_string_match] == [
        "https://app.example", "https://.*\\.trusted\\.example"]
    assert (p.allow_methods, p.allow_headers, p.expose_headers, p.max_age) == (
        "GET,POST", "x-token,x-user", "x-trace", "86400")
    assert p.allow_credentials.value is True
    assert p.filter_enabled.default_value.numerator == 100
    assert p.forward_not_matching_preflights.value is True


def test_unmatched_preflights_ignore_stops_forwarding_them() -> None:
    assert policy_of("unmatchedPreflights: IGNORE").forward_not_matching_preflights.value is False


def test_connection_managers_run_cors_before_fault_and_our_proxy_accepts_lds_and_rds() -> None:
    push = push_of(VS % "")
    proxy = proxy_from_node("sidecar~127.0.0.5~reviews-v1.default~default.svc.cluster.local",
                            {"NAMESPACE": "default", "INTERCEPTION_MODE": "NONE"})
    listeners = build_listeners(push, proxy, set())
    managers = [m for _, m in connection_managers(listeners)]
    assert any(m.HasField("rds") for m in managers)
    routes = {}
    for m in managers:
        names = [f.name for f in m.http_filters]
        assert names.index(CORS_FILTER) + 1 == names.index("envoy.filters.http.fault"), names
        if m.HasField("rds"):
            (config,) = build_routes(push, proxy, {m.rds.route_config_name})
            accepted_by_proxy(config)
            routes[config.name] = config
    assert any(CORS_FILTER in r.typed_per_filter_config
               for config in routes.values() for vh in config.virtual_hosts for r in vh.routes)
    clusters = {r.route.cluster: object() for config in [*routes.values(), *(m.route_config for m in managers)]
                for vh in config.virtual_hosts for r in vh.routes}
    for lst in listeners:
        check_message(lst, f"Listener[{lst.name}]", CheckResult())
        compiled = compile_listener(lst, f"Listener[{lst.name}]", StatsStore(), clusters, {}, routes)  # type: ignore[arg-type]
        assert compiled.hcm.cors is not None
