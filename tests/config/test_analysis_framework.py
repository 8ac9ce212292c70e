"""The analysis framework: message catalog and rendering, selection, suppression, snapshot lookups."""

from __future__ import annotations

import pytest

from pilotfish.config.analysis import BY_CODE, CATALOG, Level, analyze, analyzer_names
from pilotfish.config.analysis.context import Snapshot
from pilotfish.config.analysis.messages import go_format
from pilotfish.config.analysis.testing import findings, load_yaml
from pilotfish.config.loader import load_resources
from tests.corpus import corpus_path

VS_BAD_HOST = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: nowhere}
"""


def test_catalog_has_istio_codes_levels_and_texts() -> None:
    t = CATALOG["ReferencedResourceNotFound"]
    assert (t.code, t.level) == ("IST0101", Level.ERROR)
    assert t.render("host", "reviews") == 'Referenced host not found: "reviews"'
    assert BY_CODE["IST0131"].level is Level.INFO
    assert BY_CODE["IST0145"].name == "ConflictingGateways"
    assert len({m.code for m in CATALOG.values()}) == len(CATALOG)


@pytest.mark.parametrize(
    ("template", "args", "out"),
    [
        ("%s and %v", ("a", ["x", "y"]), "a and [x y]"),
        ("%q", ('say "hi"',), '"say \\"hi\\""'),
        ("%d%%", (5,), "5%"),
        ("%t", (True,), "true"),
        ("%s %s", ("one",), "one %!s(MISSING)"),
    ],
)
def test_go_format(template: str, args: tuple, out: str) -> None:
    assert go_format(template, args) == out


def test_message_names_the_resource_as_written_and_the_line_of_its_field() -> None:
    (msg,) = analyze(load_yaml(VS_BAD_HOST, "vs.yaml"), analyzers=["virtualservice.DestinationHostAnalyzer"])
    assert msg.code == "IST0101" and msg.level is Level.ERROR
    assert str(msg.resource) == "VirtualService reviews"  # no namespace in the input, none in the message
    assert (msg.position.file, msg.position.line) == ("vs.yaml", 9)  # destination.host's line, as Istio's ErrorLine
    assert str(msg) == 'Error [IST0101] (VirtualService reviews vs.yaml:9) Referenced host not found: "nowhere"'
    assert msg.analyzer == "virtualservice.DestinationHostAnalyzer"
    assert msg.to_dict()["documentationUrl"].endswith("/ist0101/")


def test_unknown_analyzer_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        analyze([], analyzers=["nope.Analyzer"])


def test_analyzers_have_unique_istio_names() -> None:
    names = analyzer_names()
    assert len(names) == len(set(names))
    assert "gateway.ConflictingGatewayAnalyzer" in names
    assert "schema.ValidationAnalyzer.VirtualService" in names


def test_go_type_names_select_the_same_analyzer() -> None:
    res = load_yaml(VS_BAD_HOST)
    a = analyze(res, analyzers=["authz.AuthorizationPoliciesAnalyzer"])
    b = analyze(res, analyzers=["auth.AuthorizationPoliciesAnalyzer"])
    assert a == b == []


def test_suppression_annotation_drops_codes() -> None:
    text = VS_BAD_HOST.replace("metadata: {name: reviews}", "metadata: {name: reviews, annotations: {galley.istio.io/analyze-suppress: IST0101}}")
    assert analyze(load_yaml(text), analyzers=["virtualservice.DestinationHostAnalyzer"]) == []
    text = VS_BAD_HOST.replace("metadata: {name: reviews}", "metadata: {name: reviews, annotations: {galley.istio.io/analyze-suppress: '*'}}")
    assert analyze(load_yaml(text)) == []


def test_messages_are_sorted_errors_first_and_deduplicated() -> None:
    res = load_yaml(VS_BAD_HOST + "---\n" + VS_BAD_HOST.replace("name: reviews}", "name: other}"))
    msgs = analyze(res)
    assert [m.level.sort_order for m in msgs] == sorted(m.level.sort_order for m in msgs)
    assert len({str(m) for m in msgs}) == len(msgs)


def test_every_analyzer_runs_on_bookinfo_and_finds_its_routes_sound() -> None:
    kube = corpus_path("bookinfo", "samples", "bookinfo", "platform", "kube", "bookinfo.yaml")
    networking = corpus_path("bookinfo", "samples", "bookinfo", "networking")
    files = [kube, networking / "bookinfo-gateway.yaml", networking / "destination-rule-all.yaml", networking / "virtual-service-all-v1.yaml"]
    resources, errors = load_resources([str(f) for f in files])
    assert errors == []
    # Files hold Deployments, not Pods, so (as with istioctl) subsets select no pod yet; nothing else is wrong.
    errors_found = {m.code for m in analyze(resources) if m.level is Level.ERROR}
    assert errors_found == {"IST0173"}
    assert ("IST0101", "VirtualService default/reviews") in findings(analyze(resources + load_yaml(VS_BAD_HOST.replace("reviews}", "reviews, namespace: default}"))))


def test_snapshot_defaults_namespace_and_adds_the_default_ingress_gateway() -> None:
    snap = Snapshot.build(load_yaml(VS_BAD_HOST))
    (vs,) = snap.each(("networking.istio.io", "VirtualService"))
    assert vs.namespace == "default" and vs.resource.namespace == ""
    ingress = snap.pods_matching({"istio": "ingressgateway"})
    assert [p.full_name for p in ingress] == ["istio-system/istio-ingressgateway-dummypod"]
    assert snap.find(("", "Service"), "istio-system", "istio-ingressgateway") is not None


def test_snapshot_ignores_kube_system_and_looks_up_service_hosts() -> None:
    res = load_yaml(
        """
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: kube-system}
spec: {ports: [{port: 53}]}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo, annotations: {networking.istio.io/exportTo: "."}}
spec: {ports: [{port: 9080, name: http}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: bookinfo}
spec: {hosts: ["*.example.com"], ports: [{number: 443, name: https, protocol: HTTPS}]}
"""
    )
    snap = Snapshot.build(res)
    assert snap.find(("", "Service"), "kube-system", "dns") is None
    assert snap.destination_host("bookinfo", None, "reviews") is not None
    assert snap.destination_host("other", None, "reviews.bookinfo.svc.cluster.local") is None
    assert snap.destination_host("other", None, "api.example.com") is not None


def test_a_failing_analyzer_reports_an_internal_error_instead_of_crashing() -> None:
    from pilotfish.config.analysis.framework import Analyzer

    def broken(snap):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")
        yield  # pragma: no cover

    (msg,) = analyze([], analyzers=[Analyzer("test.Broken", "fails", broken)])
    assert msg.code == "IST0001" and "boom" in msg.text and msg.resource is None
