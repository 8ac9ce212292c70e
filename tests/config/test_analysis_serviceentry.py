"""ServiceEntry analyzers: TCP ports need addresses; one host:port cannot carry two protocols."""

from __future__ import annotations

from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.testing import findings, load_yaml
from pilotfish.config.models.kube import mesh_config_from_yaml


def se(name: str, body: str, ns: str = "default", status: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {ns}}}
spec:
{body}
{status}
---"""


TCP = "  hosts: [db.example.com]\n  ports: [{number: 5432, name: pg, protocol: %s}]\n  resolution: DNS"


def test_tcp_ports_need_addresses_unless_allocated() -> None:
    text = (
        se("tcp", TCP % "TCP")
        + se("lower", TCP % "tcp")
        + se("http", TCP % "HTTP")
        + se("addressed", TCP % "TCP" + "\n  addresses: [10.1.1.1]")
        + se("allocated", TCP % "TCP", status="status: {addresses: [{host: db.example.com, value: 240.240.0.1}]}")
    )
    res = load_yaml(text)
    assert findings(analyze(res, analyzers=["serviceentry.ProtocolAddressesAnalyzer"])) == [
        ("IST0134", "ServiceEntry default/lower"),
        ("IST0134", "ServiceEntry default/tcp"),
    ]
    mesh = mesh_config_from_yaml("defaultConfig: {proxyMetadata: {ISTIO_META_DNS_CAPTURE: 'true', ISTIO_META_DNS_AUTO_ALLOCATE: 'true'}}")
    assert analyze(res, mesh_config=mesh, analyzers=["serviceentry.Analyzer"]) == []


def test_conflicting_protocols_only_where_both_are_visible() -> None:
    http = "  hosts: [api.example.com]\n  ports: [{number: 443, name: p, protocol: %s}]\n  resolution: DNS"
    text = se("a", http % "HTTP") + se("b", http % "TLS") + se("c", http % "HTTPS" + "\n  exportTo: ['.']", ns="x")
    msgs = analyze(load_yaml(text), analyzers=["serviceentry.ConflictingServiceEntryProtocolAnalyzer"])
    assert findings(msgs) == [
        ("IST0177", "ServiceEntry default/a"),
        ("IST0177", "ServiceEntry default/b"),
        ("IST0177", "ServiceEntry x/c"),
    ]
    local = se("a", http % "HTTP" + "\n  exportTo: ['.']", ns="p") + se("b", http % "TLS" + "\n  exportTo: ['.']", ns="q")
    assert analyze(load_yaml(local), analyzers=["serviceentry.ConflictingServiceEntryProtocolAnalyzer"]) == []
