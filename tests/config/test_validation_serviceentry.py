"""ServiceEntry validation: Istio's ValidateServiceEntry and the CRD's CEL rules."""

from __future__ import annotations

from typing import Any

from pilotfish.config.errors import Verdict
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate

HTTP = {"number": 80, "name": "http", "protocol": "HTTP"}


def check(spec: Any = None, labels: dict[str, str] | None = None, raw_spec: bool = True) -> Verdict:
    meta: dict[str, Any] = {"name": "se", "namespace": "ns"}
    if labels:
        meta["labels"] = labels
    doc: dict[str, Any] = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": meta}
    if raw_spec:
        doc["spec"] = spec
    return validate(to_resource(Document(doc, "test.yaml", 1)))


def test_dns_service_entry_is_valid() -> None:
    v = check({"hosts": ["api.example.com"], "ports": [HTTP], "resolution": "DNS", "location": "MESH_EXTERNAL"})
    assert v.valid and not v.warnings


def test_spec_and_hosts_are_required() -> None:
    assert "spec: Required value" in check(raw_spec=False).errors
    errors = check({"ports": [HTTP]}).errors
    assert "service entry must have at least one host" in errors and "spec.hosts: Required value" in errors


def test_full_wildcard_host_is_rejected_partial_is_a_warning() -> None:
    errors = check({"hosts": ["*"], "ports": [HTTP]}).errors
    assert "invalid host *" in errors
    v = check({"hosts": ["*foo.com"], "ports": [HTTP]})
    assert v.valid and 'partial wildcard "*foo.com" not allowed' in v.warnings


def test_dns_hosts_must_be_fqdns_without_endpoints() -> None:
    errors = check({"hosts": ["*.google.com"], "ports": [HTTP], "resolution": "DNS"}).errors
    assert "hosts must be FQDN if no endpoints are provided for resolution mode DNS" in errors


def test_cidr_addresses_only_for_none_and_static() -> None:
    assert check({"hosts": ["a.com"], "addresses": ["10.0.0.0/8"], "ports": [HTTP]}).valid
    errors = check({"hosts": ["a.com"], "addresses": ["10.0.0.0/8"], "ports": [HTTP], "resolution": "DNS"}).errors
    assert "CIDR addresses are allowed only for NONE/STATIC resolution types" in errors
    assert "10.0.0.0/99 is not a valid CIDR block" in check({"hosts": ["a.com"], "addresses": ["10.0.0.0/99"]}).errors


def test_duplicate_ports() -> None:
    errors = check({"hosts": ["a.com"], "ports": [HTTP, {"number": 80, "name": "http2", "protocol": "HTTP"}]}).errors
    assert "service entry port 80 already defined" in errors
    assert 'spec.ports: Invalid value: "array": port number cannot be duplicated' in errors
    errors = check({"hosts": ["a.com"], "ports": [HTTP, {"number": 81, "name": "http", "protocol": "HTTP"}]}).errors
    assert 'service entry port name "http" already defined' in errors


def test_port_name_protocol_and_target_port() -> None:
    errors = check({"hosts": ["a.com"], "ports": [{"number": 80, "name": "Bad_Name", "protocol": "kafka", "targetPort": 70000}]}).errors
    assert "invalid port name: Bad_Name" in errors
    assert "unsupported protocol: kafka" in errors
    assert "port number 70000 must be in the range 1..65535" in errors


def test_tcp_port_without_addresses_warns_unless_ip_is_allocated() -> None:
    tcp = {"number": 3306, "name": "tcp", "protocol": "TCP"}
    v = check({"hosts": ["db.example.com"], "ports": [tcp]})  # resolution NONE: no automatic address
    assert v.valid and any(w.startswith("addresses are required for ports serving TCP") for w in v.warnings)
    assert not check({"hosts": ["db.example.com"], "ports": [tcp], "resolution": "DNS"}).warnings
    opted_out = check({"hosts": ["db.example.com"], "ports": [tcp], "resolution": "DNS"}, labels={"networking.istio.io/enable-autoallocate-ip": "false"})
    assert opted_out.warnings


def test_static_endpoints_must_be_ips_on_declared_ports() -> None:
    spec = {"hosts": ["a.com"], "ports": [HTTP], "resolution": "STATIC", "endpoints": [{"address": "a.b.com", "ports": {"other": 8080}}]}
    errors = check(spec).errors
    assert 'endpoint address "a.b.com" is not a valid IP address' in errors
    assert "endpoint port 8080 is not defined by the service entry" in errors


def test_unix_socket_endpoints() -> None:
    grpc = {"number": 6553, "name": "grpc", "protocol": "GRPC"}
    assert check({"hosts": ["uds.local"], "ports": [grpc], "resolution": "STATIC", "endpoints": [{"address": "unix:///var/s.sock"}]}).valid
    errors = check({"hosts": ["uds.local"], "ports": [grpc], "resolution": "STATIC", "endpoints": [{"address": "unix://rel/s.sock"}]}).errors
    assert "rel/s.sock is not an absolute path to a file" in errors


def test_none_resolution_takes_no_endpoints() -> None:
    errors = check({"hosts": ["a.com"], "ports": [HTTP], "endpoints": [{"address": "1.1.1.1"}]}).errors
    assert "no endpoints should be provided for resolution type none" in errors
    assert 'spec: Invalid value: "object": NONE mode cannot set endpoints' in errors


def test_dns_round_robin_takes_one_endpoint() -> None:
    spec = {"hosts": ["a.com"], "ports": [HTTP], "resolution": "DNS_ROUND_ROBIN", "endpoints": [{"address": "b.com"}, {"address": "c.com"}]}
    assert "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN" in check(spec).errors


def test_selector_and_endpoints_are_exclusive() -> None:
    spec = {"hosts": ["a.com"], "ports": [HTTP], "workloadSelector": {"labels": {"app": "a"}}, "endpoints": [{"address": "1.1.1.1"}]}
    assert "only one of WorkloadSelector or Endpoints is allowed in Service Entry" in check(spec).errors


def test_selector_warnings() -> None:
    empty = check({"hosts": ["a.com"], "ports": [HTTP], "workloadSelector": {}})
    assert empty.valid and "service entry: workload selector specified without labels, will be applied to all services in namespace" in empty.warnings
    assert 'wildcard is not supported in selector: "app=*"' in check({"hosts": ["a.com"], "workloadSelector": {"labels": {"app": "*"}}}).errors


def test_multiple_hosts_need_http_or_tls_ports() -> None:
    tcp = {"number": 3306, "name": "tcp", "protocol": "TCP"}
    errors = check({"hosts": ["a.com", "b.com"], "ports": [tcp], "resolution": "DNS"}).errors
    assert "multiple hosts provided with non-HTTP, non-TLS ports" in errors


def test_dynamic_dns() -> None:
    assert check({"hosts": ["*.example.com"], "ports": [HTTP], "resolution": "DYNAMIC_DNS"}).valid
    tcp = {"number": 81, "name": "tcp", "protocol": "TCP"}
    assert not check({"hosts": ["*.example.com"], "ports": [tcp], "resolution": "DYNAMIC_DNS"}).valid
    assert not check({"hosts": ["*.example.com"], "ports": [HTTP], "resolution": "DYNAMIC_DNS", "endpoints": [{"address": "a.com"}]}).valid


def test_export_to() -> None:
    assert check({"hosts": ["a.com"], "ports": [HTTP], "exportTo": ["~"]}).valid
    assert "cannot export service entry to no one (~) and someone" in check({"hosts": ["a.com"], "exportTo": ["~", "ns2"]}).errors
