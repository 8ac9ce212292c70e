"""AuthorizationPolicy, PeerAuthentication and RequestAuthentication messages name their field
from the root (and the CLI points at its line), Istio's texts unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pilotfish.cli.main import cli
from pilotfish.config.errors import field_path, format_path
from pilotfish.config.loader import Document, documents_from_text, to_resource
from pilotfish.config.models.security import PeerAuthentication
from pilotfish.config.validation import validate
from pilotfish.config.validation.security import peer_authentication_errors

HEAD = "apiVersion: security.istio.io/v1\nkind: {kind}\nmetadata:\n  name: p\n  namespace: ns\n"


def placed(messages: list[str]) -> list[tuple[str, str]]:
    return [(format_path(field_path(m)), str(m)) for m in messages]


def verdict_of(kind: str, body: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    doc = next(documents_from_text(HEAD.format(kind=kind) + body, "t.yaml"))
    assert isinstance(doc, Document)
    v = validate(to_resource(doc))
    return placed(v.errors), placed(v.warnings)


AP_RULES = """\
spec:
  action: DENY
  rules:
  - from:
    - {}
    - source: {}
    - source: {ipBlocks: [10.0.0.1, 300.1.1.1], principals: [a, ""]}
    - source: {notRemoteIpBlocks: [1.2.3.4/40], notServiceAccounts: [ok, "a/b/c"]}
    to:
    - operation: {notPorts: ["80", "x"], paths: ["/a/{**}/{*}"], notMethods: [GET, ""]}
    - operation: {}
    when:
    - {key: "", values: [a]}
    - {key: source.ip}
    - {key: destination.port, values: ["80", "99999"]}
    - {key: bogus, notValues: [a]}
  - to: []
    from:
    - source: {requestPrincipals: [a]}
"""
P = "invalid policy p.ns: "
R0 = "spec.rules[0]"


@pytest.mark.parametrize("kind,body,errors,warnings", [
    ("AuthorizationPolicy", AP_RULES, [
        (f"{R0}.from[0]", P + "`from.source` must not be nil, found at rule 0"),
        (f"{R0}.from[1].source", P + "`from.source` must not be empty, found at rule 0"),
        (f"{R0}.from[2].source.ipBlocks[1]", P + "bad IP address (300.1.1.1)"),
        (f"{R0}.from[2].source.principals[1]", P + "empty value not allowed, found in Principals"),
        (f"{R0}.from[3].source.notRemoteIpBlocks[0]",
         P + 'bad CIDR range (1.2.3.4/40): netip.ParsePrefix("1.2.3.4/40"): invalid prefix'),
        (f"{R0}.from[3].source.notServiceAccounts[1]",
         P + "expected format 'serviceAccount' or 'namespace/serviceAccount', found \"a/b/c\" in NotServiceAccounts"),
        (f"{R0}.to[0].operation.notPorts[1]", P + 'bad port (x): strconv.ParseUint: parsing "x": invalid syntax'),
        (f"{R0}.to[0].operation.notMethods[1]", P + "empty value not allowed, found in NotMethods"),
        (f"{R0}.to[0].operation.paths[0]",
         P + "invalid or unsupported path a/{**}/{*}, found in Paths. {**} is not the last operator"),
        (f"{R0}.to[1].operation", P + "`to.operation` must not be empty, found at rule 0"),
        (f"{R0}.when[0].key", P + "`key` must not be empty"),
        (f"{R0}.when[1]", P + "at least one of `values` or `notValues` must be set for key source.ip"),
        (f"{R0}.when[2].values[1]", P + "invalid `value` for `key` destination.port: bad port (99999): <nil>"),
        (f"{R0}.when[3].key", P + "invalid `value` for `key` bogus: unknown attribute: bogus"),
        (f"{R0}.when[3].key", P + "invalid `notValue` for `key` bogus: unknown attribute: bogus"),
        ("spec.rules[1].to", P + "`to` must not be empty, found at rule 1"),
    ], [
        ("spec.rules[1]", "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use "
                          "of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port"),
    ]),
    ("AuthorizationPolicy", """\
spec:
  action: CUSTOM
  provider: {}
  rules:
  - from:
    - source: {notRequestPrincipals: [a]}
    when:
    - {key: "request.auth.claims[iss]", values: [a]}
""", [
        ("spec.provider.name", P + "`provider.name` must not be empty"),
        (f"{R0}.from[0].source.notRequestPrincipals", P + "From.NotRequestPrincipals is currently not supported with CUSTOM action"),
        (f"{R0}.when[0].key", P + "request.auth.claims[iss] is currently not supported with CUSTOM action"),
    ], []),
    ("AuthorizationPolicy", "spec:\n  action: AUDIT\n  provider: {name: x}\n",
     [("spec.provider", P + "`provider` must not be with non CUSTOM action, found AUDIT")], []),
    ("AuthorizationPolicy", "spec:\n  action: DENY\n", [
        ("spec.action", P + "DENY action without `rules` is meaningless as it will never be triggered, "
                            "add an empty rule `{}` if you want it be triggered for every request"),
    ], []),
    ("RequestAuthentication", """\
spec:
  selector: {matchLabels: {app: a}}
  jwtRules:
  - issuer: a
    outputClaimToHeaders: [{header: ok, claim: c}, {header: a_b, claim: c}]
    timeout: 1.5ms
  - issuer: b
    jwks: '{"keys": [{"kty": "oct", "k": "AAAA"}]}'
  - issuer: c
    jwks: '[]'
""", [
        ("spec.jwtRules[0].outputClaimToHeaders[1].header", "header name a_b is not a valid header name"),
        ("spec.jwtRules[0].timeout", "only durations to ms precision are supported"),
        ("spec.jwtRules[2].jwks", "jwks parse error: failed to unmarshal JSON into key set: expected a JSON object"),
    ], [
        ("spec.jwtRules[1].jwks", "jwks key 0 contains symmetric key material; only public keys are needed to verify tokens"),
    ]),
    ("PeerAuthentication", "spec:\n  selector: {}\n", [], [("spec.selector", "workload selector specified without labels")]),
], ids=["rules", "custom", "provider", "action", "jwt-rules", "selector"])
def test_webhook_messages_name_their_field(kind: str, body: str, errors: list, warnings: list) -> None:
    assert verdict_of(kind, body) == (errors, warnings)


@pytest.mark.parametrize("kind,body,error", [
    ("AuthorizationPolicy", "spec:\n  rules:\n  - from:\n    - source: {namespaces: [a], serviceAccounts: [b]}\n",
     ("spec.rules[0].from[0].source",
      'spec.rules[0].from[0].source: Invalid value: "object": Cannot set serviceAccounts with namespaces or principals')),
    ("PeerAuthentication", "spec:\n  selector: {matchLabels: {app: a}}\n  portLevelMtls: {'0': {mode: STRICT}}\n",
     ("spec.portLevelMtls", 'spec.portLevelMtls: Invalid value: "object": port must be between 1-65535')),
    ("PeerAuthentication", "spec:\n  portLevelMtls: {'80': {mode: STRICT}}\n",
     ("spec", 'spec: Invalid value: "object": portLevelMtls requires selector')),
    ("PeerAuthentication", "spec:\n  selector: {matchLabels: {app: 'a*'}}\n",
     ("spec.selector", 'spec.selector.matchLabels.app: Invalid value: "string": wildcard not allowed in label value match')),
    ("RequestAuthentication", "spec:\n  jwtRules:\n  - {issuer: a, jwksUri: 'https://a', jwks: '{}'}\n",
     ("spec.jwtRules[0]", 'spec.jwtRules[0]: Invalid value: "object": only one of jwks or jwksUri can be set')),
    ("RequestAuthentication", "spec:\n  jwtRules:\n  - {issuer: a, jwks_uri: 'ftp://a'}\n",
     ("spec.jwtRules[0].jwks_uri", 'spec.jwtRules[0].jwks_uri: Invalid value: "string": url must have scheme http:// or https://')),
    ("RequestAuthentication", "spec:\n  jwtRules:\n  - {issuer: a, timeout: 0.5ms}\n",
     ("spec.jwtRules[0].timeout", 'spec.jwtRules[0].timeout: Invalid value: "string": must be a valid duration greater than 1ms')),
], ids=["source", "port-level-mtls", "spec", "selector", "jwt-rule", "jwks-uri", "timeout"])
def test_crd_messages_carry_the_field_they_name(kind: str, body: str, error: tuple[str, str]) -> None:
    assert verdict_of(kind, body) == ([error], [])


def test_port_level_mtls_errors_name_the_port() -> None:
    spec = PeerAuthentication.model_validate({"portLevelMtls": {"8080": {"mode": "STRICT"}, "0": {"mode": "STRICT"}}})
    assert placed(peer_authentication_errors(spec)[0]) == [
        ("spec.portLevelMtls", "mesh/namespace peer authentication cannot have port level mTLS"),
        ("spec.portLevelMtls.0", "port must be in range 1..65535")]


def run_validate(tmp_path: Path, kind: str, body: str) -> tuple[int, list[str]]:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD.format(kind=kind) + body)
    result = CliRunner().invoke(cli, ["validate", "-f", str(path)])
    return result.exit_code, result.output.replace(str(path), "p.yaml").splitlines()


@pytest.mark.parametrize("kind,body,lines", [
    ("AuthorizationPolicy", """\
spec:
  rules:
  - to:
    - operation:
        methods:
        - GET
        - ""
""", ["p.yaml:12: AuthorizationPolicy ns/p: invalid",
      "  error: spec.rules[0].to[0].operation.methods[1]: invalid policy p.ns: empty value not allowed, found in Methods"]),
    ("PeerAuthentication", """\
spec:
  selector:
    matchLabels: {app: a}
  portLevelMtls:
    '0': {mode: STRICT}
""", ["p.yaml:9: PeerAuthentication ns/p: invalid",
      '  error: spec.portLevelMtls: Invalid value: "object": port must be between 1-65535']),
], ids=["list-value", "crd-message"])
def test_cli_points_at_the_field(tmp_path: Path, kind: str, body: str, lines: list[str]) -> None:
    code, out = run_validate(tmp_path, kind, body)
    assert code == 1 and out[:2] == lines


@pytest.mark.parametrize("annotation,error", [
    ("istio.io/dry-run: maybe", 'ns/p has annotation istio.io/dry-run with invalid value (maybe): '
                                'strconv.ParseBool: parsing "maybe": invalid syntax'),
    ("internal.istio.io/webhook-always-reject: 'x'",
     '"internal.istio.io/webhook-always-reject" annotation found, rejecting'),
], ids=["dry-run", "reserved"])
def test_annotation_errors_point_at_the_annotation(tmp_path: Path, annotation: str, error: str) -> None:
    key = annotation.partition(":")[0]
    code, out = run_validate(tmp_path, "AuthorizationPolicy", f"  annotations:\n    other: x\n    {annotation}\nspec: {{}}\n")
    assert code == 1 and out[:2] == ["p.yaml:8: AuthorizationPolicy ns/p: invalid",
                                     f"  error: metadata.annotations.{key}: {error}"]
