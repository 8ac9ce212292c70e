"""Analyzing files alone, as ``istioctl analyze --use-kube=false`` does (``analyze(files_only=True)``).

Istio's rule (pkg/config/analysis/local/istiod_analyze.go, kuberesource.DefaultExcludedSchemas,
CombinedAnalyzer.RemoveSkipped): files never supply Services, Namespaces, Nodes, Pods or Secrets,
and every analyzer whose declared inputs include one of them is skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pilotfish.config.analysis import all_analyzers, analyze, load_error_messages, skipped_analyzers
from pilotfish.config.analysis.context import NAMESPACE, NODE, POD, RUNTIME_KINDS, SECRET, SERVICE, Snapshot
from pilotfish.config.analysis.testing import findings, load_yaml
from pilotfish.config.loader import load_resources
from tests.corpus import corpus_path

# Istio's analyzers at the corpus commit whose Metadata().Inputs name a runtime kind, by pilotfish's names.
SKIPPED_BY_ISTIOCTL = {
    "auth.AuthorizationPoliciesAnalyzer",
    "conditions.ConditionAnalyzer",
    "destinationrule.SubsetSelectPodAnalyzer",
    "gateway.IngressGatewayPortAnalyzer",
    "gateway.SecretAnalyzer",
    "gateway.ConflictingGatewayAnalyzer",
    "k8sgateway.SelectorAnalyzer",
    "sidecar.SelectorAnalyzer",
    "sidecar.DefaultSelectorAnalyzer",  # folded into sidecar.SelectorAnalyzer upstream
    "telemetry.SelectorAnalyzer",
    "virtualservice.DestinationHostAnalyzer",
    "virtualservice.JWTClaimRouteAnalyzer",
    "deployment.MultiServiceAnalyzer",
    "applicationUID.Analyzer",
    "service.PortNameAnalyzer",
    "meshnetworks.MeshNetworksAnalyzer",
}

APP = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: shop}
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec: {containers: [{name: cart, image: cart}]}
---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: shop}
spec: {selector: {app: cart}, ports: [{name: http, port: 80}]}
---"""


def run(text: str, *, files_only: bool) -> list[tuple[str, str]]:
    return findings(analyze(load_yaml(text), files_only=files_only))


def test_skipped_analyzers_are_those_reading_a_runtime_kind() -> None:
    assert set(skipped_analyzers(files_only=True)) == SKIPPED_BY_ISTIOCTL
    assert skipped_analyzers() == []
    for a in all_analyzers():
        assert a.inputs, f"{a.name} declares no inputs"
        assert (a.name in SKIPPED_BY_ISTIOCTL) == bool(RUNTIME_KINDS & set(a.inputs))


def test_runtime_kinds_in_files_are_ignored_and_so_is_the_stand_in_gateway() -> None:
    text = APP + """
apiVersion: v1
kind: Pod
metadata: {name: cart-1, namespace: shop, labels: {app: cart}}
spec: {containers: [{name: cart, image: cart}]}
---
apiVersion: v1
kind: Secret
metadata: {name: cert, namespace: shop}
---
apiVersion: v1
kind: Node
metadata: {name: node-1}
"""
    snap = Snapshot.build(load_yaml(text), files_only=True)
    assert snap.missing_kinds == RUNTIME_KINDS
    assert all(not snap.each(k) for k in (SERVICE, NAMESPACE, NODE, POD, SECRET))
    assert [e.name for e in snap.entries] == ["cart"]  # the Deployment
    full = Snapshot.build(load_yaml(text))
    assert full.missing_kinds == frozenset() and len(full.each(POD)) == 2  # cart-1 and the stand-in gateway


POLICY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: cart, namespace: shop}
spec: {selector: {matchLabels: {app: cart}}}
"""


def test_policy_on_a_deployment_is_not_ist0127_in_files() -> None:
    # Istio never matches selectors against pod templates: with files alone the whole
    # AuthorizationPolicy analyzer is skipped; with runtime state and no Pod, it reports.
    assert run(APP + POLICY, files_only=True) == []
    assert run(APP + POLICY, files_only=False) == [("IST0127", "AuthorizationPolicy shop/cart")]


ISTIOD = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: xds, namespace: shop}
spec:
  hosts: [xds.example.com]
  tcp: [{route: [{destination: {host: istiod.istio-system.svc.cluster.local, port: {number: 15012}}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: istiod, namespace: shop}
spec: {host: istiod.istio-system.svc.cluster.local}
"""


def test_hosts_a_cluster_would_have_are_not_checked_in_files() -> None:
    assert run(ISTIOD, files_only=True) == []
    assert run(ISTIOD, files_only=False) == [("IST0101", "VirtualService shop/xds"), ("IST0174", "DestinationRule shop/istiod")]


GATEWAYS = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: SIMPLE, credentialName: shop-cert}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: own, namespace: shop}
spec:
  selector: {istio: shop-gateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [own.example.com]}]
"""


def test_gateway_credentials_and_selectors_are_not_checked_in_files() -> None:
    assert run(GATEWAYS, files_only=True) == []
    full = analyze(load_yaml(GATEWAYS))
    assert sorted(m.text for m in full if m.code == "IST0101") == [
        'Referenced credentialName not found: "shop-cert"',
        'Referenced selector not found: "istio=shop-gateway"',
    ]


def test_istioctl_skip_pods_in_files_case() -> None:
    # istioctl/pkg/analyze TestSkipPodsInFiles: a Gateway whose pods are not in the file.
    resources, errors = load_resources([str(corpus_path("testdata", "istioctl", "pkg", "analyze", "testdata", "analyze-file", "public-gateway.yaml"))])
    assert not errors
    assert [m for m in analyze(resources, files_only=True) if m.level.value == "Error"] == []


def test_istioctl_file_only_integration_cases() -> None:
    # tests/integration/pilot/analyze_test.go TestFileOnly and TestDirectory (--use-kube=false).
    root = corpus_path("testdata", "tests", "integration", "pilot", "testdata")

    def codes(*files: str) -> list[str]:
        resources, errors = load_resources([str(root / f) for f in files])
        return [m.code for m in analyze(resources, files_only=True)] + ["IST0106"] * len(errors)

    assert codes("virtualservice.yaml") == ["IST0101"]  # the subset, not the host: its Service is skipped
    assert codes("destinationrule.yaml") == []
    assert codes("some-dir/missing-gateway.yaml") == ["IST0106"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # virtualservice.DestinationRuleAnalyzer reads only VirtualServices and DestinationRules
            """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec: {hosts: [cart], http: [{route: [{destination: {host: cart, subset: v9}}]}]}
""",
            [("IST0101", "VirtualService shop/cart")],
        ),
        (  # virtualservice.GatewayAnalyzer reads only Gateways and VirtualServices
            """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec: {hosts: [cart], gateways: [nowhere], http: [{route: [{destination: {host: cart}}]}]}
""",
            [("IST0101", "VirtualService shop/cart"), ("IST0132", "VirtualService shop/cart")],
        ),
        (  # destinationrule.CaCertificateAnalyzer
            """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ext, namespace: shop}
spec: {host: api.example.com, trafficPolicy: {tls: {mode: SIMPLE}}}
""",
            [("IST0128", "DestinationRule shop/ext")],
        ),
        (  # authn.BlockedCIDRsAnalyzer reads Deployments, which files do supply
            """
apiVersion: apps/v1
kind: Deployment
metadata: {name: istiod, namespace: istio-system, labels: {app: istiod}}
spec:
  selector: {matchLabels: {app: istiod}}
  template: {metadata: {labels: {app: istiod}}, spec: {containers: [{name: discovery, image: pilot}]}}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: shop}
spec: {jwtRules: [{issuer: https://issuer.example.com, jwksUri: https://issuer.example.com/jwks}]}
""",
            [("IST0175", "Deployment istio-system/istiod")],
        ),
    ],
)
def test_checks_that_need_no_cluster_still_run_in_files(text: str, expected: list[tuple[str, str]]) -> None:
    assert run(text, files_only=True) == expected


def test_a_chosen_analyzer_that_needs_a_cluster_is_skipped_in_files() -> None:
    text = ISTIOD
    assert analyze(load_yaml(text), files_only=True, analyzers=["virtualservice.DestinationHostAnalyzer"]) == []
    assert skipped_analyzers(files_only=True, analyzers=["virtualservice.DestinationHostAnalyzer"]) == ["virtualservice.DestinationHostAnalyzer"]


def test_bookinfo_application_bundle_is_clean_in_files() -> None:
    bookinfo = corpus_path("bookinfo", "samples", "bookinfo")
    files = [bookinfo / "platform" / "kube" / "bookinfo.yaml"]
    files += [bookinfo / "networking" / f for f in ("bookinfo-gateway.yaml", "destination-rule-all.yaml", "virtual-service-all-v1.yaml")]
    resources, errors = load_resources([str(f) for f in files])
    assert not errors
    assert analyze(resources, files_only=True) == []


def test_load_errors_of_runtime_kinds_are_not_reported_in_files(tmp_path: Path) -> None:
    # istioctl does not read a Service from files at all, so a broken one is no IST0106 there.
    path = tmp_path / "broken.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: 5}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\nspec: {hosts: 5}\n"
    )
    _, errors = load_resources([str(path)])
    assert sorted(e.kind for e in errors) == ["Service", "VirtualService"]
    assert [str(m.resource) for m in load_error_messages(errors, files_only=True)] == ["VirtualService web"]
    assert len(load_error_messages(errors)) == 2
