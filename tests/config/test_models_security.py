"""Security models: YAML names, enums and the CRD's schema limits, as a user writes them."""

from __future__ import annotations

from typing import Any

import pytest

from pilotfish.config.errors import ConfigError
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.models.security import Action, AuthorizationPolicy, MutualTLSMode, PeerAuthentication, RequestAuthentication


def load(kind: str, spec: Any, version: str = "v1") -> Any:
    doc = {"apiVersion": f"security.istio.io/{version}", "kind": kind, "metadata": {"name": "p", "namespace": "ns"}, "spec": spec}
    return to_resource(Document(doc, "t.yaml", 1)).spec


def test_authorization_policy_reads_from_to_when() -> None:
    spec = load("AuthorizationPolicy", {
        "action": "DENY",
        "rules": [{
            "from": [{"source": {"principals": ["cluster.local/ns/a/sa/b"], "serviceAccounts": ["a/b"]}}],
            "to": [{"operation": {"methods": ["GET"], "ports": ["8080"]}}],
            "when": [{"key": "request.auth.claims[iss]", "values": ["x"]}],
        }],
    })
    assert isinstance(spec, AuthorizationPolicy)
    assert spec.action is Action.DENY
    rule = spec.rules[0]
    assert rule.from_[0].source.principals == ["cluster.local/ns/a/sa/b"]
    assert rule.to[0].operation.ports == ["8080"]
    assert rule.when[0].key == "request.auth.claims[iss]"
    assert spec.dump()["rules"][0]["from"][0]["source"]["serviceAccounts"] == ["a/b"]


def test_v1beta1_is_served() -> None:
    assert isinstance(load("AuthorizationPolicy", {}, version="v1beta1"), AuthorizationPolicy)


def test_empty_rules_differ_from_unset_rules() -> None:
    assert load("AuthorizationPolicy", {"rules": []}).rules == []
    assert load("AuthorizationPolicy", {}).rules is None


@pytest.mark.parametrize("spec,field", [
    ({"action": "PERMIT"}, "spec.action"),
    ({"rules": [{"when": [{"values": ["a"]}]}]}, "spec.rules[0].when[0].key"),
    ({"rules": [{"from": [{"source": {"serviceAccounts": ["a"] * 17}}]}]}, "spec.rules[0].from[0].source.serviceAccounts"),
    ({"rules": [{"frm": []}]}, "spec.rules[0].frm"),
])
def test_authorization_policy_schema_errors_name_the_field(spec: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load("AuthorizationPolicy", spec)
    assert info.value.field_path == field


def test_peer_authentication_port_keys_are_numbers() -> None:
    spec = load("PeerAuthentication", {"selector": {"matchLabels": {"app": "a"}}, "mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}})
    assert isinstance(spec, PeerAuthentication)
    assert spec.mtls.mode is MutualTLSMode.STRICT
    assert spec.port_level_mtls == {8080: spec.port_level_mtls[8080]}
    assert spec.port_level_mtls[8080].mode is MutualTLSMode.DISABLE


def test_peer_authentication_rejects_non_numeric_port_and_empty_map() -> None:
    with pytest.raises(ConfigError, match="integer"):
        load("PeerAuthentication", {"selector": {"matchLabels": {"a": "b"}}, "portLevelMtls": {"http": {"mode": "STRICT"}}})
    with pytest.raises(ConfigError, match="at least 1"):
        load("PeerAuthentication", {"selector": {"matchLabels": {"a": "b"}}, "portLevelMtls": {}})


def test_jwt_rule_fields_and_duration() -> None:
    spec = load("RequestAuthentication", {"jwtRules": [{
        "issuer": "https://issuer", "jwksUri": "https://issuer/jwks", "timeout": "1.5s",
        "fromHeaders": [{"name": "x-jwt", "prefix": "Bearer "}], "outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"}],
        "forwardOriginalToken": True, "presence": "OPTIONAL",
    }]})
    assert isinstance(spec, RequestAuthentication)
    rule = spec.jwt_rules[0]
    assert rule.timeout.nanos == 1_500_000_000
    assert rule.effective_jwks_uri == "https://issuer/jwks"
    assert rule.from_headers[0].prefix == "Bearer "


def test_jwks_uri_legacy_spelling_is_accepted() -> None:
    rule = load("RequestAuthentication", {"jwtRules": [{"issuer": "i", "jwks_uri": "https://k"}]}).jwt_rules[0]
    assert rule.jwks_uri is None
    assert rule.effective_jwks_uri == "https://k"


@pytest.mark.parametrize("rule,field", [
    ({"issuer": "i", "fromHeaders": [{"prefix": "x"}]}, "spec.jwtRules[0].fromHeaders[0].name"),
    ({"issuer": "i", "audiences": [""]}, "spec.jwtRules[0].audiences[0]"),
    ({"issuer": "i", "outputClaimToHeaders": [{"claim": "a", "header": ":authority"}]}, "spec.jwtRules[0].outputClaimToHeaders[0].header"),
    ({"issuer": "i", "presence": "MANDATORY"}, "spec.jwtRules[0].presence"),
    ({"issuer": "i", "timeout": "apple"}, "spec.jwtRules[0].timeout"),
])
def test_jwt_rule_schema_errors_name_the_field(rule: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load("RequestAuthentication", {"jwtRules": [rule]})
    assert info.value.field_path == field
