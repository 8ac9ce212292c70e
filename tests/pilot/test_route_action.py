"""What a matched request gets: destinations, weights, rewrites, redirects, direct responses,
header edits, retries, timeouts, faults and mirrors (through whole VirtualServices)."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.fault.v3 import fault_pb2

from pilotfish.config.models.virtualservice import HTTPRetry
from pilotfish.pilot.route_action import FAULT_FILTER, parse_retry_on, retry_policy
from pilotfish.pilot.routes import build_routes
from tests.pilot.route_fixtures import accepted_by_proxy, push_of, sidecar, svc

HEAD = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: default}
spec:
  hosts: [reviews]
  http:
"""


def routes_for(rules: str, host: str = "reviews.default.svc.cluster.local:9080",
               services: tuple = ()) -> list[rc.Route]:
    push = push_of(HEAD + rules, **({"services": services} if services else {}))
    (config,) = build_routes(push, sidecar(), {"9080"})
    accepted_by_proxy(config)
    (vh,) = [v for v in config.virtual_hosts if v.name == host]
    return list(vh.routes)


def test_subset_destination_names_the_subset_cluster() -> None:
    (r,) = routes_for("""
  - route:
    - destination: {host: reviews, subset: v2}
""")
    assert r.route.cluster == "outbound|9080|v2|reviews.default.svc.cluster.local"


def test_weights_become_weighted_clusters_and_zero_weights_drop() -> None:
    (r,) = routes_for("""
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v3}
      weight: 50
    - destination: {host: reviews, subset: v2}
      weight: 0
""")
    assert [(c.name, c.weight.value) for c in r.route.weighted_clusters.clusters] == [
        ("outbound|9080|v1|reviews.default.svc.cluster.local", 50),
        ("outbound|9080|v3|reviews.default.svc.cluster.local", 50)]


def test_destination_port_explicit_else_the_only_port() -> None:
    services = (svc("reviews"), svc("ratings", ports=(8080,)), svc("details", ports=(9080, 9090)))
    (r,) = routes_for("""
  - match: [{uri: {prefix: /ratings}}]
    route:
    - destination: {host: ratings}
  - match: [{uri: {prefix: /details}}]
    route:
    - destination: {host: details.default.svc.cluster.local, port: {number: 9090}}
""", services=services)[:1]
    assert r.route.cluster == "outbound|8080||ratings.default.svc.cluster.local"
    r2 = routes_for("""
  - route:
    - destination: {host: details, port: {number: 9090}}
""", services=services)[0]
    assert r2.route.cluster == "outbound|9090||details.default.svc.cluster.local"


def test_default_retry_policy_and_no_timeout() -> None:
    (r,) = routes_for("""
  - route:
    - destination: {host: reviews}
""")
    p = r.route.retry_policy
    assert p.retry_on == "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    assert p.num_retries.value == 2 and list(p.retriable_status_codes) == [503]
    assert p.host_selection_retry_max_attempts == 5
    assert [h.name for h in p.retry_host_predicate] == ["envoy.retry_host_predicates.previous_hosts"]
    assert r.route.HasField("timeout") and r.route.timeout.ToNanoseconds() == 0


def test_retries_and_timeout_from_the_rule() -> None:
    (r,) = routes_for("""
  - timeout: 1.5s
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,429", retryIgnorePreviousHosts: false}
    route:
    - destination: {host: reviews}
""")
    assert r.route.timeout.ToMilliseconds() == 1500
    p = r.route.retry_policy
    assert p.num_retries.value == 3 and p.per_try_timeout.ToMilliseconds() == 500
    assert p.retry_on == "5xx,retriable-status-codes" and list(p.retriable_status_codes) == [429]
    assert not p.retry_host_predicate


def test_zero_attempts_disable_retries() -> None:
    assert retry_policy(HTTPRetry(attempts=0), False) is None
    assert parse_retry_on("gateway-error, 503,connect-failure") == (["gateway-error", "connect-failure"], [503])


def test_rewrite_uri_authority_and_regex() -> None:
    r1, r2 = routes_for("""
  - match: [{uri: {prefix: /v1}}]
    rewrite: {uri: /, authority: reviews.internal}
    route:
    - destination: {host: reviews}
  - rewrite: {uriRegexRewrite: {match: "^/old/(.*)", rewrite: "/new/\\\\1"}}
    route:
    - destination: {host: reviews}
""")
    assert r1.route.prefix_rewrite == "/" and r1.route.host_rewrite_literal == "reviews.internal"
    assert r2.route.regex_rewrite.pattern.regex == "^/old/(.*)"
    assert r2.route.regex_rewrite.substitution == "/new/\\1"


def test_redirect() -> None:
    (r,) = routes_for("""
  - redirect: {uri: /v2, authority: new.example.com, port: 8443, scheme: https, redirectCode: 302}
""")
    assert r.redirect.path_redirect == "/v2" and r.redirect.host_redirect == "new.example.com"
    assert r.redirect.port_redirect == 8443 and r.redirect.scheme_redirect == "https"
    assert r.redirect.response_code == rc.RedirectAction.FOUND
    assert not r.HasField("route")


def test_direct_response_string_and_bytes() -> None:
    r1, r2 = routes_for("""
  - match: [{uri: {exact: /a}}]
    directResponse: {status: 418, body: {string: teapot}}
  - directResponse: {status: 200, body: {bytes: aGVsbG8=}}
""")
    assert (r1.direct_response.status, r1.direct_response.body.inline_string) == (418, "teapot")
    assert r2.direct_response.body.inline_bytes == b"hello"


def test_headers_set_add_remove_and_per_destination() -> None:
    (r,) = routes_for("""
  - headers:
      request: {set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-c]}
      response: {set: {x-d: "3"}, remove: [server]}
    route:
    - destination: {host: reviews, subset: v1}
      weight: 60
      headers: {request: {set: {x-dest: v1}}}
    - destination: {host: reviews, subset: v2}
      weight: 40
""")
    assert [(h.header.key, h.header.value, h.append_action) for h in r.request_headers_to_add] == [
        ("x-a", "1", base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD),
        ("x-b", "2", base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD)]
    assert list(r.request_headers_to_remove) == ["x-c"]
    assert [h.header.key for h in r.response_headers_to_add] == ["x-d"]
    assert list(r.response_headers_to_remove) == ["server"]
    first = r.route.weighted_clusters.clusters[0]
    assert [h.header.key for h in first.request_headers_to_add] == ["x-dest"]


def test_fault_delay_and_abort_per_route() -> None:
    (r,) = routes_for("""
  - fault:
      delay: {fixedDelay: 7s, percentage: {value: 100}}
      abort: {httpStatus: 500, percentage: {value: 12.5}}
    route:
    - destination: {host: reviews}
""")
    fault = fault_pb2.HTTPFault()
    r.typed_per_filter_config[FAULT_FILTER].Unpack(fault)
    assert fault.delay.fixed_delay.seconds == 7 and fault.delay.percentage.numerator == 1_000_000
    assert fault.abort.http_status == 500 and fault.abort.percentage.numerator == 125_000


def test_mirror_with_percentage_and_mirrors() -> None:
    (r,) = routes_for("""
  - route:
    - destination: {host: reviews, subset: v1}
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 50}
    mirrors:
    - destination: {host: ratings}
""")
    mirrors = r.route.request_mirror_policies
    assert [m.cluster for m in mirrors] == ["outbound|9080|v2|reviews.default.svc.cluster.local",
                                            "outbound|9080||ratings.default.svc.cluster.local"]
    assert mirrors[0].runtime_fraction.default_value.numerator == 500_000
    assert mirrors[1].runtime_fraction.default_value.numerator == 100


def test_zero_mirror_percentage_means_no_mirror() -> None:
    (r,) = routes_for("""
  - route:
    - destination: {host: reviews}
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 0}
""")
    assert not r.route.request_mirror_policies


def test_consistent_hash_becomes_a_route_hash_policy() -> None:
    from pilotfish.config.models.destinationrule import ConsistentHashLB
    from pilotfish.pilot.route_action import hash_policy

    header = hash_policy(ConsistentHashLB(http_header_name="x-user"))
    assert header is not None and header.header.header_name == "x-user"
    cookie = hash_policy(ConsistentHashLB.model_validate({"httpCookie": {"name": "s", "ttl": "10s"}}))
    assert cookie is not None and cookie.cookie.name == "s" and cookie.cookie.ttl.seconds == 10
    source = hash_policy(ConsistentHashLB(use_source_ip=True))
    assert source is not None and source.connection_properties.source_ip
    assert hash_policy(None) is None
    # a consistent-hash destination keeps its host across retries
    policy = retry_policy(None, consistent_hash=True)
    assert policy is not None and not policy.retry_host_predicate


def test_the_mesh_default_retry_policy_replaces_istios_where_a_route_sets_none() -> None:
    """meshConfig.defaultHttpRetryPolicy: routes without ``retries`` (and default routes) get it."""
    from pilotfish.config.models.kube import mesh_config_from_yaml
    from pilotfish.pilot.generate import generate
    from pilotfish.pilot.proxy import proxy_from_node
    from pilotfish.pilot.push_context import PushContext
    from pilotfish.registry.model import Port, Protocol, RegistrySnapshot, Service
    from pilotfish.xds.type_urls import ROUTE

    mesh = mesh_config_from_yaml("defaultHttpRetryPolicy: {attempts: 5, retryOn: 'gateway-error'}\n")
    svc = Service("web.default.svc.cluster.local", "default", (Port("http", 8000, Protocol.HTTP),))
    push = PushContext(registry=RegistrySnapshot(services=(svc,)), mesh=mesh)
    proxy = proxy_from_node("sidecar~10.0.0.1~a.default~default.svc.cluster.local", {"NAMESPACE": "default"})
    config = generate(push, proxy, ROUTE, {"8000"})["8000"]
    (vh,) = [v for v in config.virtual_hosts if v.name.startswith("web.")]
    policy = vh.routes[0].route.retry_policy
    assert (policy.num_retries.value, policy.retry_on) == (5, "gateway-error")
    off = PushContext(registry=push.registry, mesh=mesh_config_from_yaml("defaultHttpRetryPolicy: {attempts: 0}\n"))
    (vh,) = [v for v in generate(off, proxy, ROUTE, {"8000"})["8000"].virtual_hosts if v.name.startswith("web.")]
    assert not vh.routes[0].route.HasField("retry_policy")
