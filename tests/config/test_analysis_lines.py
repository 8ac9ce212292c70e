"""Analyzer messages point at the line of the field they are about, as Istio's ``util.ErrorLine``."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pilotfish.cli.main import cli
from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.testing import load_yaml

BUNDLE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  gateways:
  - mesh
  - nowhere-gateway
  http:
  - route:
    - destination:
        host: reviews
        subset: v9
    mirror:
      host: ghost
      subset: v1
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports:
  - name: http
    port: 9080
  - name: bogus
    port: 9090
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: default}
spec:
  rules:
  - from:
    - source:
        namespaces: [default]
        notNamespaces:
        - nowhere
---
apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ef, namespace: default}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    patch:
      operation: MERGE
      value: {}
  - applyTo: ROUTE_CONFIGURATION
    patch:
      operation: ADD
      value: {name: x}
"""


def _lines(messages: list) -> dict[tuple[str, str], int]:
    return {(m.code, m.text): m.position.line for m in messages}


def test_messages_point_at_their_fields() -> None:
    found = _lines(analyze(load_yaml(BUNDLE, "b.yaml")))
    assert found[("IST0101", 'Referenced gateway not found: "nowhere-gateway"')] == 8
    assert found[("IST0101", 'Referenced host+subset in destinationrule not found: "reviews+v9"')] == 12
    assert found[("IST0101", 'Referenced mirror host not found: "ghost"')] == 15
    assert found[("IST0101", 'Referenced namespace not found: "nowhere"')] == 38
    port = next(line for (code, text), line in found.items() if code == "IST0118")
    assert port == 27  # the Service's second port, whose name breaks the convention
    assert found[("IST0153", "The ADD operation will be ignored when applyTo is set to ROUTE_CONFIGURATION, "
                             "or HTTP_ROUTE.")] == 56  # the second patch's value


def test_a_message_without_a_field_points_at_its_resource() -> None:
    text = BUNDLE.split("---\n")[0] + "---\n" + BUNDLE.split("---\n")[0].replace("name: reviews,", "name: other,")
    (first, second) = [m for m in analyze(load_yaml(text, "b.yaml")) if m.code == "IST0109"]
    assert {first.position.line, second.position.line} == {1, 18}  # each document's first line


def test_analyze_prints_the_fields_line(tmp_path: Path) -> None:
    (tmp_path / "vs.yaml").write_text(BUNDLE.split("---\n")[0])
    result = CliRunner().invoke(cli, ["analyze", "-f", str(tmp_path / "vs.yaml")])
    assert f'(VirtualService default/reviews) Referenced gateway not found: "nowhere-gateway" [{tmp_path / "vs.yaml"}:8]' in result.output


def test_gateway_messages_point_at_the_server() -> None:
    gateway = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: %s, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: shared-cert}
"""
    text = gateway % "a" + "---\n" + gateway % "b"
    lines = {m.position.line for m in analyze(load_yaml(text, "gw.yaml"), analyzers=["gateway.CertificateAnalyzer"])}
    assert lines == {11, 23}  # each gateway's second server's tls
