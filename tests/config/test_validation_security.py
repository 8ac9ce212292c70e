"""AuthorizationPolicy, PeerAuthentication and RequestAuthentication: Istio's verdicts and texts."""

from __future__ import annotations

from typing import Any

import pytest

from pilotfish.config.errors import Verdict
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate


def check(kind: str, spec: Any, annotations: dict[str, str] | None = None) -> Verdict:
    meta: dict[str, Any] = {"name": "p", "namespace": "ns"}
    if annotations:
        meta["annotations"] = annotations
    doc = {"apiVersion": "security.istio.io/v1", "kind": kind, "metadata": meta, "spec": spec}
    return validate(to_resource(Document(doc, "t.yaml", 1)))


def errors(kind: str, spec: Any, **kw: Any) -> str:
    return "\n".join(check(kind, spec, **kw).errors)


# ---------------------------------------------------------------- AuthorizationPolicy

AP = "AuthorizationPolicy"


def test_good_policy_is_valid() -> None:
    v = check(AP, {
        "selector": {"matchLabels": {"app": "httpbin"}},
        "rules": [{
            "from": [{"source": {"principals": ["sa1"], "ipBlocks": ["10.0.0.0/8"]}}],
            "to": [{"operation": {"methods": ["GET"], "paths": ["/api/{*}/items/{**}"], "ports": ["8080"]}}],
            "when": [{"key": "request.headers[x-user]", "values": ["a"]}, {"key": "source.ip", "values": ["1.2.3.4"]}],
        }],
    })
    assert v.valid and not v.warnings, v


def test_errors_carry_istios_policy_prefix() -> None:
    assert "invalid policy p.ns: `from.source` must not be empty, found at rule 0" in errors(AP, {"rules": [{"from": [{"source": {}}]}]})


@pytest.mark.parametrize("spec,message", [
    ({"action": "DENY"}, "DENY action without `rules` is meaningless"),
    ({"action": "CUSTOM"}, "CUSTOM action without `rules` is meaningless"),
    ({"action": "CUSTOM", "rules": [{}]}, "`provider.name` must not be empty"),
    ({"action": "ALLOW", "provider": {"name": "ext"}}, "`provider` must not be with non CUSTOM action, found ALLOW"),
    ({"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{"from": [{"source": {"principals": ["a"]}}]}]},
     "From.Principals is currently not supported with CUSTOM action"),
    ({"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{"when": [{"key": "request.auth.claims[a]", "values": ["b"]}]}]},
     "request.auth.claims[a] is currently not supported with CUSTOM action"),
    ({"rules": [{"from": []}]}, "`from` must not be empty, found at rule 0"),
    ({"rules": [{"to": [{}]}]}, "`to.operation` must not be nil, found at rule 0"),
    ({"rules": [{"to": [{"operation": {}}]}]}, "`to.operation` must not be empty, found at rule 0"),
    ({"rules": [{"from": [{"source": {"namespaces": ["a", ""]}}]}]}, "empty value not allowed, found in Namespaces"),
    ({"rules": [{"from": [{"source": {"serviceAccounts": ["a/b/c"]}}]}]}, "expected format 'serviceAccount' or 'namespace/serviceAccount'"),
    ({"rules": [{"from": [{"source": {"serviceAccounts": ["ns/*"]}}]}]}, "wildcard not allowed, found in ServiceAccounts"),
    ({"rules": [{"from": [{"source": {"ipBlocks": ["1.2.3.4/33"]}}]}]}, "bad CIDR range (1.2.3.4/33)"),
    ({"rules": [{"from": [{"source": {"notIpBlocks": ["ip1"]}}]}]}, "bad IP address (ip1)"),
    ({"rules": [{"to": [{"operation": {"ports": ["http"]}}]}]}, "bad port (http)"),
    ({"rules": [{"to": [{"operation": {"notPorts": ["70000"]}}]}]}, "bad port (70000)"),
    ({"rules": [{"to": [{"operation": {"paths": ["/{**}/a/{**}"]}}]}]}, "{**} is not the last operator"),
    ({"rules": [{"to": [{"operation": {"paths": ["/{name}/{*}"]}}]}]}, "Contains '{' or '}' beyond a supported path template"),
    ({"rules": [{"when": [{"key": ""}]}]}, "`key` must not be empty"),
    ({"rules": [{"when": [{"key": "source.ip"}]}]}, "at least one of `values` or `notValues` must be set for key source.ip"),
    ({"rules": [{"when": [{"key": "source.ip", "values": ["a.b.c.d"]}]}]}, "invalid `value` for `key` source.ip: bad IP address (a.b.c.d)"),
    ({"rules": [{"when": [{"key": "destination.port", "notValues": ["x"]}]}]}, "invalid `notValue` for `key` destination.port"),
    ({"rules": [{"when": [{"key": "request.auth.claims[]", "values": ["x"]}]}]}, "bad key (request.auth.claims[]): should have format a[b]"),
    ({"rules": [{"when": [{"key": "destination.namespace", "values": ["x"]}]}]}, "is replaced by the metadata.namespace"),
    ({"rules": [{"when": [{"key": "destination.labels[app]", "values": ["x"]}]}]}, "is replaced by the workload selector"),
    ({"rules": [{"when": [{"key": "destination.user", "values": ["x"]}]}]}, "only supported in v1alpha1"),
    ({"rules": [{"when": [{"key": "key1", "values": ["x"]}]}]}, "unknown attribute: key1"),
])
def test_authorization_policy_errors(spec: dict, message: str) -> None:
    assert message in errors(AP, spec)


@pytest.mark.parametrize("key", [
    "request.headers[x]", "source.namespace", "source.principal", "source.serviceAccount", "request.auth.principal",
    "request.auth.audiences", "request.auth.presenter", "request.auth.claims[groups]", "connection.sni",
    "experimental.envoy.filters.network.mysql_proxy[db.table]", "remote.ip", "destination.ip", "source.trustDomain",
])
def test_known_condition_keys_are_valid(key: str) -> None:
    value = "10.0.0.1" if key.endswith(".ip") else "ns/sa" if key.endswith("serviceAccount") else "v"
    assert check(AP, {"rules": [{"when": [{"key": key, "values": [value]}]}]}).valid


def test_service_accounts_cannot_mix_with_namespaces() -> None:
    assert "Cannot set serviceAccounts with namespaces or principals" in errors(AP, {"rules": [{"from": [{"source": {"serviceAccounts": ["a/b"], "namespaces": ["a"]}}]}]})
    assert check(AP, {"rules": [{"from": [{"source": {"serviceAccounts": ["a/b"]}}, {"source": {"namespaces": ["a"]}}]}]}).valid


def test_deny_on_http_attributes_only_warns_about_tcp() -> None:
    v = check(AP, {"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]})
    assert v.valid
    assert any("deny all traffic to TCP ports" in w for w in v.warnings)
    assert not check(AP, {"action": "DENY", "rules": [{"to": [{"operation": {"ports": ["80"], "methods": ["GET"]}}]}]}).warnings


def test_selector_rules() -> None:
    assert check(AP, {"selector": {}}).warnings == ["workload selector specified without labels"]
    assert "wildcard not allowed in label value match" in errors(AP, {"selector": {"matchLabels": {"app": "a*"}}})
    assert "key must not be empty" in errors(AP, {"selector": {"matchLabels": {"": "a"}}})


@pytest.mark.parametrize("ref,message", [
    ({"group": "gateway.networking.k8s.io", "kind": "Gateway"}, "spec.targetRef.name: Required value"),
    ({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "g", "namespace": "x"}, "cross namespace referencing is not currently supported"),
    ({"group": "wrong-group", "kind": "Gateway", "name": "g"}, "targetRef must be to one of"),
    ({"group": "", "kind": "Pod", "name": "g"}, "but was /Pod"),
])
def test_target_ref_rules(ref: dict, message: str) -> None:
    assert message in errors(AP, {"targetRef": ref})


def test_target_ref_and_selector_are_exclusive() -> None:
    spec = {"selector": {"matchLabels": {"a": "b"}}, "targetRefs": [{"kind": "Service", "name": "s"}]}
    assert "only one of targetRefs or selector can be set" in errors(AP, spec)


def test_dry_run_annotation() -> None:
    assert check(AP, {"action": "DENY", "rules": [{}]}, annotations={"istio.io/dry-run": "true"}).valid
    assert "with invalid value (foo)" in errors(AP, {}, annotations={"istio.io/dry-run": "foo"})
    assert "only supports action ALLOW/DENY, found action AUDIT" in errors(AP, {"action": "AUDIT", "rules": [{}]}, annotations={"istio.io/dry-run": "true"})
    assert "has unsupported annotation istio.io/dry-run" in errors("PeerAuthentication", {}, annotations={"istio.io/dry-run": "true"})


# ---------------------------------------------------------------- PeerAuthentication

PA = "PeerAuthentication"


def test_peer_authentication() -> None:
    assert check(PA, {}).valid
    assert check(PA, {"selector": {"matchLabels": {"app": "a"}}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}}).valid
    assert "portLevelMtls requires selector" in errors(PA, {"portLevelMtls": {"8080": {"mode": "STRICT"}}})
    assert "port must be between 1-65535" in errors(PA, {"selector": {"matchLabels": {"a": "b"}}, "portLevelMtls": {"0": {"mode": "STRICT"}}})
    assert check(PA, {"selector": {}}).warnings == ["workload selector specified without labels"]


# ---------------------------------------------------------------- RequestAuthentication

RA = "RequestAuthentication"
PRIVATE_JWKS = '{"keys":[{"kty":"RSA","e":"AQAB","n":"xAE7","d":"jJVK"}]}'
PUBLIC_JWKS = '{"keys":[{"kty":"RSA","e":"AQAB","n":"xAE7","kid":"k"}]}'


def test_request_authentication_good() -> None:
    v = check(RA, {"jwtRules": [{"issuer": "a", "jwksUri": "https://a/jwks", "timeout": "5s", "fromHeaders": [{"name": "x-jwt"}],
                                 "outputClaimToHeaders": [{"claim": "sub", "header": "x-sub"}]}]})
    assert v.valid and not v.warnings, v
    assert check(RA, {"jwtRules": [{"jwksUri": "https://a/jwks"}]}).valid


@pytest.mark.parametrize("rule,message", [
    ({}, "issuer or jwksUri must be non-empty string"),
    ({"issuer": "a", "jwksUri": "foo.com"}, "url must have scheme http:// or https://"),
    ({"issuer": "a", "jwksUri": "https://foo.com:not-a-number"}, "url must have scheme"),
    ({"issuer": "a", "jwks": "foo"}, "jwks parse error"),
    ({"issuer": "a", "jwks": '{"keys":[{"kty":"XYZ"}]}'}, "jwks parse error"),
    ({"issuer": "a", "outputClaimToHeaders": [{"claim": "sub", "header": "x_sub"}]}, "header name x_sub is not a valid header name"),
    ({"issuer": "a", "timeout": "0.5ms"}, "must be a valid duration greater than 1ms"),
    ({"issuer": "a", "jwks": PUBLIC_JWKS, "jwksUri": "https://k"}, "only one of jwks or jwksUri can be set"),
])
def test_jwt_rule_errors(rule: dict, message: str) -> None:
    assert message in errors(RA, {"jwtRules": [rule]})


def test_private_jwks_warns() -> None:
    v = check(RA, {"jwtRules": [{"issuer": "a", "jwks": PRIVATE_JWKS}]})
    assert v.valid
    assert v.warnings and "private RSA key material" in v.warnings[0]
    assert not check(RA, {"jwtRules": [{"issuer": "a", "jwks": PUBLIC_JWKS}]}).warnings


def test_always_reject_annotation() -> None:
    assert '"internal.istio.io/webhook-always-reject" annotation found, rejecting' in errors(RA, {}, annotations={"internal.istio.io/webhook-always-reject": ""})
