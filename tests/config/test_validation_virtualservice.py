"""VirtualService validation: Istio's webhook rules and messages, plus the RE2 syntax check."""

from __future__ import annotations

import pytest

from pilotfish.config.errors import Verdict
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate
from pilotfish.config.validation.regex import re2_error

DEST = [{"destination": {"host": "reviews"}}]


def check(spec: dict, annotations: dict | None = None) -> Verdict:
    meta = {"name": "r", "namespace": "default", "annotations": annotations or {}}
    doc = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta, "spec": spec}
    return validate(to_resource(Document(doc, "vs.yaml", 1)))


def http(**route) -> dict:
    return {"hosts": ["reviews"], "http": [{"route": DEST, **route}]}


def test_simple_route_is_valid() -> None:
    v = check(http())
    assert v.valid and not v.warnings


def test_wildcard_host_is_rejected_for_the_mesh_but_not_for_gateways() -> None:
    assert "wildcard host * is not allowed for virtual services bound to the mesh gateway" in check({"hosts": ["*"], "http": [{"route": DEST}]}).errors
    assert check({"hosts": ["*"], "gateways": ["ns/gw"], "http": [{"route": DEST}]}).valid


def test_overlapping_hosts_are_duplicates() -> None:
    v = check({"hosts": ["*.foo.bar", "*.bar"], "http": [{"route": DEST}]})
    assert "duplicate hosts in virtual service: *.foo.bar & *.bar" in v.errors


def test_delegate_virtual_service_takes_http_routes_only() -> None:
    assert check({"http": [{"route": DEST}]}).valid
    v = check({"gateways": ["ns/gw"], "tcp": [{"route": DEST}]})
    assert "delegate virtual service must have no gateways specified" in v.errors
    assert "delegate virtual service must have no tcp route specified" in v.errors


def test_root_route_with_delegate_may_not_route() -> None:
    v = check({"hosts": ["a.b"], "http": [{"delegate": {"name": "d", "namespace": "ns"}, "route": DEST}]})
    assert "root HTTP route  must not specify route" in v.errors


def test_legacy_gateway_name_warns() -> None:
    v = check({"hosts": ["a.b"], "gateways": ["gateway.example.com"], "http": [{"route": DEST}]})
    assert v.valid
    assert v.warnings == ['using legacy gatewayName format "gateway.example.com"; prefer the <namespace>/<name> format: "example/gateway"']


@pytest.mark.parametrize("gateway", ["ns1/*", "*/gateway", "b@dgateway"])
def test_bad_gateway_names(gateway: str) -> None:
    assert not check({"hosts": ["a.b"], "gateways": [gateway], "http": [{"route": DEST}]}).valid


def test_jwt_claim_routing_needs_a_gateway() -> None:
    match = [{"headers": {"@request.auth.claims.group": {"exact": "admin"}}}]
    assert not check({"hosts": ["a.b"], "http": [{"match": match, "route": DEST}]}).valid
    assert check({"hosts": ["a.b"], "gateways": ["ns/gw"], "http": [{"match": match, "route": DEST}]}).valid


@pytest.mark.parametrize("regex", ["a(?=b)", "(a)\\1", "a++", "(?<!x)y", "[z-a]", "("])
def test_regexes_re2_rejects_are_invalid(regex: str) -> None:
    v = check(http(match=[{"uri": {"regex": regex}}]))
    assert not v.valid
    assert "Istio uses RE2 style regex-based match" in v.errors[0]


@pytest.mark.parametrize("regex", ["/api/v[0-9]+/.*", "\\pL+", "(?i)abc", "a{2,5}", "[[:alpha:]]\\z"])
def test_regexes_re2_accepts_are_valid(regex: str) -> None:
    assert check(http(match=[{"uri": {"regex": regex}}])).valid


def test_re2_error_text_matches_go() -> None:
    assert re2_error("a(?=b)") == "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"
    assert re2_error("a**") == "error parsing regexp: invalid nested repetition operator: `**`"
    assert re2_error("x{1001}") == "error parsing regexp: invalid repeat count: `{1001}`"


def test_empty_prefix_is_allowed_for_uri_only() -> None:
    assert check(http(match=[{"uri": {"prefix": ""}}])).valid
    assert '"scheme": prefix string match should not be empty' in check(http(match=[{"scheme": {"prefix": ""}}])).errors


def test_header_values_follow_envoy_syntax() -> None:
    ok = http(headers={"response": {"set": {"a": "100%%", "b": "%HOSTNAME%"}}})
    bad = http(headers={"response": {"add": {"a": "abcd%oijasodifj"}}})
    assert check(ok).valid
    assert not check(bad).valid


def test_authority_may_be_rewritten_once() -> None:
    v = check(http(rewrite={"authority": "bar"}, headers={"request": {"set": {":authority": "foo"}}}))
    assert v.errors == ['authority header cannot be set multiple times: have "bar", attempting to set "foo"']


def test_route_redirect_and_direct_response_conflict() -> None:
    v = check({"hosts": ["a.b"], "http": [{"route": DEST, "redirect": {"uri": "/x"}}]})
    assert "HTTP route cannot contain both route and redirect" in v.errors
    assert "HTTP route, redirect or direct_response is required" in check({"hosts": ["a.b"], "http": [{}]}).errors


def test_retries_and_faults() -> None:
    assert "http retry policy configured when attempts are set to 0 (disabled)" in check(http(retries={"attempts": 0, "retryOn": "5xx"})).errors
    assert '"600" is not a valid retryOn policy' in check(http(retries={"attempts": 3, "retryOn": "600,5xx"})).errors
    assert check(http(retries={"attempts": 3, "retryOn": "503,connect-failure", "perTryTimeout": "2s"})).valid
    assert "HTTP status 700 is not in range 200-599" in check(http(fault={"abort": {"httpStatus": 700}})).errors
    assert not check(http(fault={"delay": {"fixedDelay": "1s", "percentage": {"value": 101}}})).valid
    assert check(http(fault={"abort": {"percentage": {"value": 5}}})).warnings == ["abort configured, but error type not set"]


def test_durations_must_be_whole_milliseconds() -> None:
    assert "only durations to ms precision are supported" in check(http(timeout="1.0000001s")).errors


def test_mirror_rules() -> None:
    v = check(http(mirror={"host": "a"}, mirrors=[{"destination": {"host": "b"}}]))
    assert "HTTP route cannot contain both mirror and mirrors" in v.errors
    assert check(http(mirrorPercent=5)).warnings == ['using deprecated setting "mirrorPercent", use "mirrorPercentage" instead']
    assert "mirror_percentage must have a max value of 100 (it has 101.000000)" in check(http(mirrorPercentage={"value": 101})).errors


def test_cors_policy() -> None:
    assert check(http(corsPolicy={"allowOrigins": [{"prefix": "https://"}], "allowMethods": ["GET", "*"], "maxAge": "24h"})).valid
    assert '"FETCH" is not a supported HTTP method' in check(http(corsPolicy={"allowMethods": ["FETCH"]})).errors
    assert "max_age duration is accurate only to seconds precision" in check(http(corsPolicy={"maxAge": "1500ms"})).errors


def test_route_weights() -> None:
    zero = http()
    zero["http"][0]["route"] = [{"destination": {"host": "a"}, "weight": 0}, {"destination": {"host": "b"}, "weight": 0}]
    assert "total destination weight = 0" in check(zero).errors


def test_missing_destination_is_reported_by_validation() -> None:
    assert "destination is required" in check({"hosts": ["a.b"], "http": [{"route": [{}]}]}).errors


def test_sni_hosts_must_fit_the_hosts() -> None:
    tls = {"hosts": ["foo.bar"], "tls": [{"match": [{"sniHosts": ["other.com"]}], "route": DEST}]}
    assert 'SNI host "other.com" is not a compatible subset of any of the virtual service hosts: [foo.bar]' in check(tls).errors
    tls["tls"][0]["match"][0]["sniHosts"] = ["1.1.1.1"]
    v = check(tls)
    assert v.valid and v.warnings


def test_unreachable_rules_warn() -> None:
    spec = {"hosts": ["a.b"], "http": [{"route": DEST}, {"match": [{"uri": {"exact": "/"}}], "route": DEST}]}
    v = check(spec)
    assert v.valid
    assert v.warnings == ["virtualService rule #1 not used (route without matches defined before)"]


def test_overlapping_prefix_matches_warn() -> None:
    spec = http()
    spec["http"] = [
        {"name": "a", "match": [{"uri": {"prefix": "/api"}}], "route": DEST},
        {"name": "b", "match": [{"uri": {"prefix": "/api/v1"}, "method": {"exact": "GET"}}], "route": DEST},
    ]
    v = check(spec)
    assert v.valid
    assert v.warnings == ['virtualService rule "b" match #0 of prefix /api/v1 is not used (duplicate/overlapping match in rule #0 of prefix /api on "a")']


def test_dry_run_annotation_is_refused() -> None:
    v = check(http(), annotations={"istio.io/dry-run": "true"})
    assert v.errors == ["default/r has unsupported annotation istio.io/dry-run, please remove the annotation"]


def test_export_to() -> None:
    assert check({**http(), "exportTo": [".", "*"]}).errors == ["cannot have both public (*) and non-public exportTo values for a resource"]
    assert check({**http(), "exportTo": ["~"]}).errors == ["exportTo ~ (none) is not allowed for Istio configuration objects"]
