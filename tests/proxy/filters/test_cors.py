"""The CORS filter (envoy.filters.http.cors) on the request path, driven without sockets:
preflights answered by the proxy, allowed origins echoed on responses, the rest untouched."""

from __future__ import annotations

from typing import Any

import pytest

from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.testing import Proxy, bootstrap, static_cluster

CORS = {"name": "envoy.filters.http.cors",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}}
POLICY_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
POLICY = {
    "@type": POLICY_TYPE,
    "allow_origin_string_match": [{"exact": "https://app.example"}, {"suffix": ".trusted.example"}],
    "allow_methods": "GET,POST", "allow_headers": "x-token", "expose_headers": "x-trace",
    "max_age": "600", "allow_credentials": True,
}
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def proxy(policy: dict[str, Any] | None = POLICY, filters: bool = True, vhost_policy: dict[str, Any] | None = None,
          ) -> Proxy:
    route: dict[str, Any] = {"match": {"prefix": "/"}, "route": {"cluster": "web"}}
    if policy is not None:
        route["typed_per_filter_config"] = {"envoy.filters.http.cors": policy}
    doc = bootstrap([route], [static_cluster("web", 8080)], [CORS] if filters else None)
    if vhost_policy is not None:
        vh = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
            "route_config"]["virtual_hosts"][0]
        vh["typed_per_filter_config"] = {"envoy.filters.http.cors": vhost_policy}
    return Proxy(doc)


def head_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def cors_headers(data: bytes) -> dict[bytes, bytes]:
    out = {}
    for line in head_lines(data)[1:]:
        k, _, v = line.partition(b": ")
        if k.startswith(b"access-control-"):
            out[k] = v
    return out


def upstream_exchange(p: Proxy, request: bytes) -> tuple[bytes, bytes]:
    """(what the upstream received, what the client received)."""
    c = p.connect()
    c.send(request)
    (up,) = p.upstreams
    sent = up.received()
    up.respond(OK)
    return sent, c.received()


PREFLIGHT = (b"OPTIONS /api HTTP/1.1\r\nHost: web\r\nOrigin: https://app.example\r\n"
             b"Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: x-token\r\n\r\n")


def test_a_preflight_from_an_allowed_origin_is_answered_by_the_proxy() -> None:
    p = proxy()
    c = p.connect()
    c.send(PREFLIGHT)
    out = c.received()
    assert head_lines(out)[0] == b"HTTP/1.1 200 OK"
    assert cors_headers(out) == {
        b"access-control-allow-origin": b"https://app.example",
        b"access-control-allow-credentials": b"true",
        b"access-control-allow-methods": b"GET,POST",
        b"access-control-allow-headers": b"x-token",
        b"access-control-max-age": b"600",
    }
    assert not p.upstreams


def test_wildcard_methods_and_headers_echo_the_request() -> None:
    p = proxy({"@type": POLICY_TYPE, "allow_origin_string_match": [{"exact": "*"}],
               "allow_methods": "*", "allow_headers": "*"})
    c = p.connect()
    c.send(PREFLIGHT.replace(b"https://app.example", b"https://any.example"))
    assert cors_headers(c.received()) == {
        b"access-control-allow-origin": b"https://any.example",
        b"access-control-allow-methods": b"POST",
        b"access-control-allow-headers": b"x-token",
    }


def test_a_simple_request_from_an_allowed_origin_gets_allow_origin_on_its_response() -> None:
    sent, out = upstream_exchange(proxy(), b"GET /api HTTP/1.1\r\nHost: web\r\nOrigin: https://a.trusted.example\r\n\r\n")
    assert b"origin: https://a.trusted.example" in head_lines(sent)
    assert head_lines(out)[0] == b"HTTP/1.1 200 OK"
    assert cors_headers(out) == {
        b"access-control-allow-origin": b"https://a.trusted.example",
        b"access-control-allow-credentials": b"true",
        b"access-control-expose-headers": b"x-trace",
    }


def test_an_origin_not_allowed_is_untouched_and_its_preflight_goes_upstream() -> None:
    p = proxy()
    sent, out = upstream_exchange(p, PREFLIGHT.replace(b"https://app.example", b"https://evil.example"))
    assert head_lines(sent)[0] == b"OPTIONS /api HTTP/1.1"
    assert cors_headers(out) == {}
    _, out = upstream_exchange(proxy(), b"GET / HTTP/1.1\r\nHost: web\r\nOrigin: https://evil.example\r\n\r\n")
    assert cors_headers(out) == {}


def test_an_origin_not_allowed_gets_a_bare_200_when_preflights_are_not_forwarded() -> None:
    p = proxy({**POLICY, "forward_not_matching_preflights": False})
    c = p.connect()
    c.send(PREFLIGHT.replace(b"https://app.example", b"https://evil.example"))
    out = c.received()
    assert head_lines(out)[0] == b"HTTP/1.1 200 OK" and cors_headers(out) == {} and not p.upstreams


def test_without_a_policy_or_without_the_filter_nothing_changes() -> None:
    for p in (proxy(None), proxy(filters=False, policy=None)):
        sent, out = upstream_exchange(p, PREFLIGHT)
        assert head_lines(sent)[0] == b"OPTIONS /api HTTP/1.1"
        assert cors_headers(out) == {}


def test_a_disabled_policy_does_nothing() -> None:
    p = proxy({**POLICY, "filter_enabled": {"default_value": {"numerator": 0}}})
    sent, out = upstream_exchange(p, PREFLIGHT)
    assert head_lines(sent)[0] == b"OPTIONS /api HTTP/1.1" and cors_headers(out) == {}


def test_a_route_policy_takes_the_virtual_hosts_values_it_leaves_unset() -> None:
    p = proxy({"@type": POLICY_TYPE, "allow_methods": "PUT"}, vhost_policy=POLICY)
    c = p.connect()
    c.send(PREFLIGHT)
    headers = cors_headers(c.received())
    assert headers[b"access-control-allow-methods"] == b"PUT"
    assert headers[b"access-control-allow-origin"] == b"https://app.example"
    assert headers[b"access-control-max-age"] == b"600"


def test_unsupported_policy_fields_are_refused() -> None:
    with pytest.raises(ProxyConfigError):
        proxy({**POLICY, "allow_origin_string_match": [{"custom": {"name": "c"}}]})


FAULT = {"name": "envoy.filters.http.fault", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
    "abort": {"http_status": 503, "percentage": {"numerator": 100}}}}


@pytest.mark.parametrize(("filters", "status"), [([CORS, FAULT], b"200"), ([FAULT, CORS], b"503")])
def test_cors_and_fault_run_in_the_listeners_order(filters: list[dict[str, Any]], status: bytes) -> None:
    route = {"match": {"prefix": "/"}, "route": {"cluster": "web"},
             "typed_per_filter_config": {"envoy.filters.http.cors": POLICY}}
    p = Proxy(bootstrap([route], [static_cluster("web", 8080)], filters))
    c = p.connect()
    c.send(PREFLIGHT)
    assert head_lines(c.received())[0].split(b" ")[1] == status
