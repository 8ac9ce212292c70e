"""Sidecar validation: Istio's ValidateSidecar and the CRD's CEL rules."""

from __future__ import annotations

from typing import Any

import pytest

from pilotfish.config.errors import Verdict
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate
from pilotfish.config.validation.sidecar import split_host_port, validate_default_endpoint

EVERYTHING = {"hosts": ["*/*"]}


def check(spec: Any) -> Verdict:
    doc = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "sc", "namespace": "bar"}, "spec": spec}
    return validate(to_resource(Document(doc, "test.yaml", 1)))


def ingress(**extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"port": {"number": 9080, "protocol": "HTTP", "name": "http"}}
    out.update(extra)
    return out


def test_default_sidecar_is_valid() -> None:
    v = check({"egress": [EVERYTHING]})
    assert v.valid and not v.warnings


def test_empty_sidecar_is_rejected() -> None:
    assert check({}).errors == ["sidecar: empty configuration provided"]


def test_selector_without_labels_warns() -> None:
    v = check({"egress": [EVERYTHING], "workloadSelector": {}})
    assert v.valid and v.warnings == ["sidecar: workload selector specified without labels, will be applied to all services in namespace"]


@pytest.mark.parametrize("host", ["./*", "~/*", "ns1/foo.com", "*/foo.com", "./*.example.com"])
def test_egress_hosts_accepted(host: str) -> None:
    assert check({"egress": [{"hosts": [host]}]}).valid


@pytest.mark.parametrize(
    ("host", "error"),
    [
        ("foo.com", "host must be of form namespace/dnsName"),
        ("/", "config namespace and dnsName in host entry cannot be empty"),
        ("Bad_NS/foo.com", 'invalid namespace value "Bad_NS" in sidecar'),
        ("ns/foo", "short names (non FQDN) are not allowed"),
        ("ns/*a.com", 'partial wildcard "*a.com" not allowed'),
    ],
)
def test_egress_hosts_rejected(host: str, error: str) -> None:
    assert error in check({"egress": [{"hosts": [host]}]}).errors


def test_overlapping_egress_hosts_warn() -> None:
    assert "duplicated egress host: test/a.com" in check({"egress": [{"hosts": ["test/*", "test/a.com"]}]}).warnings
    assert "duplicated egress host: bar/a.com" in check({"egress": [{"hosts": ["./*", "bar/a.com"]}]}).warnings
    assert any(w.startswith("`*/*` host select all resources") for w in check({"egress": [{"hosts": ["*/*", "ns/a.com"]}]}).warnings)
    assert not check({"egress": [{"hosts": ["*/*", "~/a.com"]}]}).warnings


def test_catch_all_egress_listener_must_be_last() -> None:
    spec = {"egress": [EVERYTHING, {"port": {"number": 8080, "protocol": "HTTP", "name": "h"}, "hosts": ["ns/a.com"]}]}
    assert "sidecar: the egress listener with empty port should be the last listener in the list" in check(spec).errors


def test_egress_ports_and_unix_sockets() -> None:
    uds = {"port": {"number": 0, "protocol": "HTTP", "name": "uds"}, "hosts": ["ns/a.com"], "bind": "unix:///var/run/s"}
    assert check({"egress": [uds]}).valid
    assert "sidecar: unix domain socket values for listeners must be unique" in check({"egress": [uds, uds]}).errors
    bad_bind = dict(uds, bind="127.0.0.1")
    assert "sidecar: ports with 0 value must have a unix domain socket bind address" in check({"egress": [bad_bind]}).errors
    capture = dict(uds, captureMode="IPTABLES")
    assert "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners" in check({"egress": [capture]}).errors
    dup = {"port": {"number": 90, "protocol": "HTTP", "name": "a"}, "hosts": ["ns/a.com"]}
    assert "sidecar: ports on IP bound listeners must be unique" in check({"egress": [dup, dup]}).errors


def test_ingress_port_is_required() -> None:
    errors = check({"ingress": [{"defaultEndpoint": "127.0.0.1:80"}]}).errors
    assert "sidecar: port is required for ingress listeners" in errors


@pytest.mark.parametrize("endpoint", ["127.0.0.1:9999", "0.0.0.0:80", "[::1]:80", "[::]:80", ":8080", "unix:///var/run/app.sock"])
def test_default_endpoint_accepted(endpoint: str) -> None:
    assert validate_default_endpoint(endpoint) == []
    assert check({"ingress": [ingress(defaultEndpoint=endpoint)]}).valid


@pytest.mark.parametrize("endpoint", ["1.1.1.1:90", "[1:1:1:1:1:1:1:1]:90", "unix:///", "127.0.0.1:hi", "127.0.0.1", "127.0.0.1:0"])
def test_default_endpoint_rejected(endpoint: str) -> None:
    assert validate_default_endpoint(endpoint)


def test_split_host_port_matches_go() -> None:
    assert split_host_port("[::1]:80") == ("::1", "80", None)
    assert split_host_port("::1:80")[2] == "address ::1:80: too many colons in address"
    assert split_host_port("host")[2] == "address host: missing port in address"


def test_ingress_tls_rules() -> None:
    https = {"number": 8443, "protocol": "HTTPS", "name": "https"}
    ok = {"port": https, "tls": {"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k"}}
    assert check({"ingress": [ok]}).valid
    errors = check({"ingress": [ingress(tls={"mode": "SIMPLE", "credentialName": "x", "httpsRedirect": True})]}).errors
    assert "sidecar: credentialName is not currently supported" in errors
    assert "sidecar: httpsRedirect is not supported" in errors
    assert "server cannot have TLS settings for non HTTPS/TLS ports" in errors
    mutual = check({"ingress": [{"port": https, "tls": {"mode": "ISTIO_MUTUAL"}}]}).errors
    assert "configuration is invalid: cannot set mode to ISTIO_MUTUAL in sidecar ingress tls" in mutual


def test_connection_pools() -> None:
    pool = {"http": {"http1MaxPendingRequests": 1024}}
    assert check({"inboundConnectionPool": pool}).valid
    assert "connection pool must have at least one field" in check({"inboundConnectionPool": {}}).errors
    tcp_port = {"number": 90, "protocol": "TCP", "name": "tcp"}
    v = check({"ingress": [{"port": tcp_port, "connectionPool": pool}]})
    assert v.valid and any("only TCP settings will apply" in w for w in v.warnings)


def test_egress_proxy_needs_allow_any_and_a_port() -> None:
    proxy = {"host": "egress.example.com", "subset": "v1", "port": {"number": 5000}}
    assert check({"outboundTrafficPolicy": {"mode": "ALLOW_ANY", "egressProxy": proxy}}).valid
    errors = check({"outboundTrafficPolicy": {"egressProxy": proxy}}).errors
    assert "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode" in errors
    no_port = {"host": "egress.example.com"}
    assert "sidecar: egress_proxy port must be non-nil" in check({"outboundTrafficPolicy": {"mode": "ALLOW_ANY", "egressProxy": no_port}}).errors
