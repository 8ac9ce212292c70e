"""HTTPMatchRequest → Envoy RouteMatch, and which matches apply to which proxy."""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2 as rc

from pilotfish.config.models.virtualservice import HTTPMatchRequest
from pilotfish.pilot.route_match import (
    is_catch_all, port_matches, source_matches, translate_match,
)
from tests.pilot.route_fixtures import gateway, sidecar


def m(**kw: object) -> HTTPMatchRequest:
    return HTTPMatchRequest.model_validate(kw)


def test_no_match_is_the_catch_all_prefix() -> None:
    out = translate_match(None)
    assert out.prefix == "/" and not out.headers
    assert is_catch_all(rc.Route(match=out))


def test_uri_exact_prefix_regex_and_ignore_case() -> None:
    assert translate_match(m(uri={"exact": "/productpage"})).path == "/productpage"
    assert translate_match(m(uri={"prefix": "/static"})).prefix == "/static"
    assert translate_match(m(uri={"regex": "/api/v[0-9]+"})).safe_regex.regex == "/api/v[0-9]+"
    assert translate_match(m(uri={"exact": "/a"})).case_sensitive.value is True
    assert translate_match(m(uri={"exact": "/a"}, ignoreUriCase=True)).case_sensitive.value is False


def test_headers_sorted_then_method_authority_scheme() -> None:
    out = translate_match(m(headers={"x-b": {"prefix": "v"}, "end-user": {"exact": "jason"}},
                            method={"exact": "GET"}, authority={"regex": "a.*"}, scheme={"exact": "https"}))
    assert [h.name for h in out.headers] == ["end-user", "x-b", ":method", ":authority", ":scheme"]
    assert out.headers[0].string_match.exact == "jason"
    assert out.headers[1].string_match.prefix == "v"
    assert out.headers[3].string_match.safe_regex.regex == "a.*"


def test_empty_match_and_star_regex_mean_present() -> None:
    out = translate_match(m(headers={"x-debug": {}, "x-any": {"regex": "*"}}))
    assert all(h.present_match for h in out.headers)


def test_without_headers_inverts_and_treats_missing_as_empty() -> None:
    out = translate_match(m(withoutHeaders={"end-user": {"exact": "jason"}, "x-flag": {}}))
    by_name = {h.name: h for h in out.headers}
    assert by_name["end-user"].invert_match and by_name["end-user"].treat_missing_header_as_empty
    assert by_name["x-flag"].invert_match and by_name["x-flag"].present_match
    assert not by_name["x-flag"].treat_missing_header_as_empty


def test_query_params() -> None:
    out = translate_match(m(queryParams={"v": {"exact": "2"}, "debug": {}}))
    assert [(q.name, q.present_match, q.string_match.exact) for q in out.query_parameters] == [
        ("debug", True, ""), ("v", False, "2")]


def test_header_match_is_not_catch_all() -> None:
    assert not is_catch_all(rc.Route(match=translate_match(m(headers={"a": {"exact": "b"}}))))
    assert is_catch_all(rc.Route(match=translate_match(m(uri={"prefix": "/"}))))


def test_source_labels_and_namespace_select_the_proxy() -> None:
    match = m(sourceLabels={"app": "productpage"})
    assert source_matches(match, sidecar(labels={"app": "productpage", "version": "v1"}), {"mesh"}, "default")
    assert not source_matches(match, sidecar(labels={"app": "reviews"}), {"mesh"}, "default")
    assert source_matches(m(sourceNamespace="default"), sidecar(), {"mesh"}, "default")
    assert not source_matches(m(sourceNamespace="other"), sidecar(), {"mesh"}, "default")


def test_gateways_in_a_match_restrict_it() -> None:
    match = m(gateways=["bookinfo-gateway"])
    assert source_matches(match, gateway(), {"default/bookinfo-gateway"}, "default")
    assert not source_matches(match, sidecar(), {"mesh"}, "default")
    assert source_matches(m(gateways=["mesh"]), sidecar(), {"mesh"}, "default")


def test_port_restricts_a_match_to_its_listener_port() -> None:
    assert port_matches(m(port=9080), 9080)
    assert not port_matches(m(port=9080), 8080)
    assert port_matches(m(), 8080) and port_matches(None, 1)
