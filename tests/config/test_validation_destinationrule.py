"""DestinationRule validation: Istio's webhook rules for hosts, subsets and traffic policies."""

from __future__ import annotations

import pytest

from pilotfish.config.errors import Verdict
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate
from pilotfish.config.validation.traffic_policy import is_prime, locality_errors


def check(spec: dict, namespace: str = "default") -> Verdict:
    doc = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "r", "namespace": namespace}, "spec": spec}
    return validate(to_resource(Document(doc, "dr.yaml", 1)))


def policy(**fields) -> dict:
    return {"host": "reviews", "trafficPolicy": fields}


def test_simple_rule_is_valid() -> None:
    v = check({"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]})
    assert v.valid and not v.warnings


def test_host_and_subset_names() -> None:
    assert "empty domain name not allowed" in check({"host": ""}).errors
    assert "duplicate subset names: foo" in check({"host": "r", "subsets": [{"name": "foo"}, {"name": "foo"}]}).errors
    assert "subset name cannot be empty" in check({"host": "r", "subsets": [{"name": ""}]}).errors
    assert check({"host": "*.example.com"}).valid


def test_empty_policies_are_rejected() -> None:
    assert check(policy()).errors == ["traffic policy must have at least one field"]
    assert check(policy(connectionPool={})).errors == ["connection pool must have at least one field"]
    assert "port traffic policy must have at least one field" in check(policy(portLevelSettings=[{"port": {"number": 80}}])).errors
    assert "portTrafficPolicy must have valid port" in check(policy(portLevelSettings=[{"tls": {"mode": "SIMPLE"}}])).errors


def test_tunnel_and_proxy_protocol_exclude_each_other() -> None:
    v = check(policy(tunnel={"targetHost": "a.example", "targetPort": 80}, proxyProtocol={"version": "V2"}))
    assert v.errors == ["tunnel and proxyProtocol must not be set together"]
    assert 'tunnel protocol must be "CONNECT" or "POST"' in check(policy(tunnel={"protocol": "GET", "targetHost": "1.2.3.4", "targetPort": 80})).errors


def test_connection_pool_limits() -> None:
    assert "max connections must be non-negative" in check(policy(connectionPool={"tcp": {"maxConnections": -1}})).errors
    assert check(policy(connectionPool={"tcp": {"idleTimeout": "0s"}})).valid
    both = {"http": {"h2UpgradePolicy": "UPGRADE", "useClientProtocol": True}}
    assert "use client protocol must not be true when H2UpgradePolicy is UPGRADE" in check(policy(connectionPool=both)).errors
    assert not check(policy(connectionPool={"http": {"http2KeepAlive": {"timeout": "5s"}}})).valid


def test_outlier_detection() -> None:
    v = check(policy(outlierDetection={"consecutiveErrors": 5}))
    assert v.valid and v.warnings
    assert "percentage -1 is not in range 0..100" in check(policy(outlierDetection={"minHealthPercent": -1})).errors
    local = {"consecutiveLocalOriginFailures": 3}
    assert not check(policy(outlierDetection=local)).valid
    assert check(policy(outlierDetection={**local, "splitExternalLocalOriginErrors": True})).valid


def test_consistent_hash() -> None:
    v = check(policy(loadBalancer={"consistentHash": {"httpCookie": {"name": "u"}, "minimumRingSize": 1024}}))
    assert v.valid and v.warnings
    assert "tableSize must be a prime number for maglev" in check(policy(loadBalancer={"consistentHash": {"useSourceIp": True, "maglev": {"tableSize": 1000}}})).errors
    attrs = [{"name": "Secure"}, {"name": "Secure"}]
    assert not check(policy(loadBalancer={"consistentHash": {"httpCookie": {"name": "u", "attributes": attrs}}})).valid


def test_warmup() -> None:
    assert check(policy(loadBalancer={"warmup": {"duration": "300s", "minimumPercent": 5, "aggression": 5}})).valid
    assert "aggression should be greater than or equal to 1" in check(policy(loadBalancer={"warmup": {"duration": "3s", "aggression": 0.5}})).errors


def test_locality_failover_needs_outlier_detection_warning() -> None:
    lb = {"localityLbSetting": {"failover": [{"from": "us-east", "to": "eu-west"}]}}
    v = check(policy(loadBalancer=lb))
    assert v.valid and v.warnings == ["outlier detection policy must be provided for failover"]
    assert check(policy(loadBalancer=lb, outlierDetection={"interval": "1s"})).warnings == []


def test_locality_distribution_weights() -> None:
    lb = {"localityLbSetting": {"distribute": [{"from": "us-east/*", "to": {"us-east/*": 80, "us-west/*": 10}}]}}
    assert "total locality weight 90 != 100" in check(policy(loadBalancer=lb)).errors
    assert locality_errors(["region/*", "region/zone"]) == ["locality region/zone overlap with previous specified ones"]
    assert locality_errors(["a/*/c"]) == ["locality a/*/c wildcard '*' number can not exceed 1 and must be in the end"]


def test_client_tls() -> None:
    assert check(policy(tls={"mode": "SIMPLE", "caCertificates": "ca", "subjectAltNames": ["a"]})).valid
    assert not check(policy(tls={"mode": "SIMPLE", "caCertificates": "ca", "insecureSkipVerify": True})).valid
    assert check(policy(tls={"mode": "MUTUAL", "credentialName": "c", "insecureSkipVerify": True})).valid
    mutual = check(policy(tls={"mode": "MUTUAL"}))
    assert mutual.errors == ["client certificate required for mutual tls", "private key required for mutual tls"]


def test_configmap_credential_must_be_in_the_rule_namespace() -> None:
    assert check(policy(tls={"mode": "SIMPLE", "credentialName": "configmap://ca-bundle"})).valid
    other = check(policy(tls={"mode": "SIMPLE", "credentialName": "configmap://other/ca-bundle"}))
    assert other.errors == ['invalid configmap:// credentialName: namespace must match the configuration namespace "default"']


def test_workload_selector() -> None:
    v = check({"host": "r", "workloadSelector": {}})
    assert v.valid and v.warnings == ["workload selector specified without labels"]
    assert not check({"host": "r", "workloadSelector": {"matchLabels": {"app": "*"}}}).valid
    assert check({"host": "r", "workloadSelector": {"matchLabels": {"app": "a"}}, "exportTo": ["."]}).valid
    assert "destination rule with workload selector cannot have exportTo beyond current namespace" in check(
        {"host": "r", "workloadSelector": {"matchLabels": {"app": "a"}}, "exportTo": ["other"]}
    ).errors


@pytest.mark.parametrize(("n", "prime"), [(0, False), (2, True), (65537, True), (1000, False), (5000011, True)])
def test_is_prime_matches_envoy(n: int, prime: bool) -> None:
    assert is_prime(n) is prime
