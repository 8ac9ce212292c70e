"""Security analyzers: AuthorizationPolicy workloads and namespaces, JWKS fetch restrictions."""

from __future__ import annotations

import pytest

from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.security import namespace_matches
from pilotfish.config.analysis.testing import findings, load_yaml

WORKLOADS = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: cart-1, namespace: shop, labels: {app: cart}}
spec: {containers: [{name: cart, image: cart}]}
---
apiVersion: v1
kind: Pod
metadata: {name: outside, namespace: plain, labels: {app: outside}}
spec: {containers: [{name: o, image: o}]}
---"""


def policy(name: str, ns: str, body: str = "") -> str:
    return f"""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: {name}, namespace: {ns}}}
spec: {{{body}}}
---"""


def run(text: str, name: str) -> list[tuple[str, str]]:
    return findings(analyze(load_yaml(text), analyzers=[name]))


def test_policies_must_select_in_mesh_workloads() -> None:
    text = WORKLOADS + "".join(
        [
            policy("good", "shop", "selector: {matchLabels: {app: cart}}"),
            policy("nomatch", "shop", "selector: {matchLabels: {app: ghost}}"),
            policy("notinmesh", "plain", "selector: {matchLabels: {app: outside}}"),
            policy("nsempty", "empty"),
            policy("meshwide", "istio-system"),
            policy("meshwide-sel", "istio-system", "selector: {matchLabels: {app: cart}}"),
            policy("meshwide-bad", "istio-system", "selector: {matchLabels: {app: ghost}}"),
        ]
    )
    assert run(text, "auth.AuthorizationPoliciesAnalyzer") == [
        ("IST0127", "AuthorizationPolicy empty/nsempty"),
        ("IST0127", "AuthorizationPolicy istio-system/meshwide-bad"),
        ("IST0127", "AuthorizationPolicy plain/notinmesh"),
        ("IST0127", "AuthorizationPolicy shop/nomatch"),
    ]


def test_source_namespaces_must_exist() -> None:
    rules = "selector: {matchLabels: {app: cart}}, rules: [{from: [{source: {namespaces: [shop, 'sh*', ghost], notNamespaces: ['*-x']}}]}]"
    assert run(WORKLOADS + policy("p", "shop", rules), "authz.AuthorizationPoliciesAnalyzer") == [
        ("IST0101", "AuthorizationPolicy shop/p"),
        ("IST0101", "AuthorizationPolicy shop/p"),
    ]


@pytest.mark.parametrize(
    ("ns", "expr", "matches"),
    [("prod-a", "prod-*", True), ("a-test", "*-test", True), ("Foo", "foo", True), ("x", "*", True), ("x", "y*", False)],
)
def test_namespace_expressions(ns: str, expr: str, matches: bool) -> None:
    assert namespace_matches(ns, expr) is matches


ISTIOD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: istiod, namespace: istio-system, labels: {app: istiod}}
spec:
  template:
    spec:
      containers:
      - name: discovery
        env: [{name: %s, value: "10.0.0.0/8"}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec: {jwtRules: [{issuer: me, jwksUri: "https://example.com/jwks"}]}
"""


def test_request_authentication_needs_blocked_cidrs_on_istiod() -> None:
    msgs = analyze(load_yaml(ISTIOD % "OTHER"), analyzers=["authn.BlockedCIDRsAnalyzer"])
    assert findings(msgs) == [("IST0175", "Deployment istio-system/istiod")]
    assert "1 RequestAuthentication resource(s) exist (default/jwt)" in msgs[0].text
    assert analyze(load_yaml(ISTIOD % "BLOCKED_CIDRS_IN_JWKS_URIS"), analyzers=["authn.BlockedCIDRsAnalyzer"]) == []
