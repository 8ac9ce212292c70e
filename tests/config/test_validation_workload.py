"""WorkloadEntry and WorkloadGroup validation."""

from __future__ import annotations

from typing import Any

from pilotfish.config.errors import Verdict
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate


def check(kind: str, spec: Any, api_version: str = "networking.istio.io/v1") -> Verdict:
    doc = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "ns"}, "spec": spec}
    return validate(to_resource(Document(doc, "test.yaml", 1)))


# ---------------------------------------------------------------- WorkloadEntry


def test_workload_entry_addresses() -> None:
    assert check("WorkloadEntry", {"address": "1.2.3.4", "ports": {"http": 8080}}).valid
    assert check("WorkloadEntry", {"address": "vm.example.com"}).valid
    assert check("WorkloadEntry", {"address": "unix:///var/run/s.sock"}).valid
    assert "address is required" in check("WorkloadEntry", {}).errors
    v = check("WorkloadEntry", {"network": "net1"})
    assert v.valid and v.warnings == ['address is unset with network "net1"']


def test_workload_entry_rejects_bad_addresses_and_ports() -> None:
    assert 'endpoint address "host.com:9443" is not a valid FQDN or an IP address' in check("WorkloadEntry", {"address": "host.com:9443"}).errors
    errors = check("WorkloadEntry", {"address": "unix:///s.sock", "ports": {"http": 80}}).errors
    assert "unix endpoint unix:///s.sock must not include ports" in errors
    assert 'spec: Invalid value: "object": UDS may not include ports' in errors
    errors = check("WorkloadEntry", {"address": "1.1.1.1", "ports": {"bad_name": 70000}}).errors
    assert "invalid port name: bad_name" in errors and "port number 70000 must be in the range 1..65535" in errors


def test_workload_entry_labels() -> None:
    assert "invalid tag key: \"-bad\"" in check("WorkloadEntry", {"address": "1.1.1.1", "labels": {"-bad": "v"}}).errors


# ---------------------------------------------------------------- WorkloadGroup


def test_workload_group_needs_a_template() -> None:
    assert "template is required" in check("WorkloadGroup", {}).errors
    assert check("WorkloadGroup", {"template": {"serviceAccount": "sa"}, "metadata": {"labels": {"app": "a"}}}).valid


def test_workload_group_labels() -> None:
    errors = check("WorkloadGroup", {"template": {}, "metadata": {"labels": {".": "~"}}}).errors
    assert any(e.startswith("invalid labels:") for e in errors)


def test_workload_group_probes() -> None:
    assert check("WorkloadGroup", {"template": {}, "probe": {"tcpSocket": {"port": 8080}}}).valid
    assert check("WorkloadGroup", {"template": {}, "probe": {"exec": {"command": ["true"]}}}).valid
    assert "unknown health check method <nil>" in check("WorkloadGroup", {"template": {}, "probe": {}}).errors
    errors = check("WorkloadGroup", {"template": {}, "probe": {"httpGet": {"port": 80, "scheme": "FTP", "httpHeaders": [{"name": "x_y"}]}}}).errors
    assert 'httpGet.scheme must be one of "HTTPS", "HTTP"' in errors
    assert "header name x_y is not a valid header name" in errors
    assert "port number 0 must be in the range 1..65535" in check("WorkloadGroup", {"template": {}, "probe": {"tcpSocket": {}}}).errors
    assert "exec.command is required" in check("WorkloadGroup", {"template": {}, "probe": {"exec": {"command": []}}}).errors
