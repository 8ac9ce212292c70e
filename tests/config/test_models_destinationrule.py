"""DestinationRule models: traffic policy shapes, oneofs, durations and CRD bounds."""

from __future__ import annotations

import pytest

from pilotfish.config.duration import Duration
from pilotfish.config.errors import ConfigError
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.models.destinationrule import DestinationRule, SimpleLB, TLSmode


def load(spec: dict, version: str = "v1"):
    doc = {"apiVersion": f"networking.istio.io/{version}", "kind": "DestinationRule", "metadata": {"name": "r", "namespace": "ns"}, "spec": spec}
    return to_resource(Document(doc, "dr.yaml", 1))


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_every_served_version_loads(version: str) -> None:
    res = load({"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}, version)
    assert isinstance(res.spec, DestinationRule)
    assert res.spec.subsets[0].labels == {"version": "v1"}


def test_traffic_policy_fields() -> None:
    res = load(
        {
            "host": "reviews",
            "trafficPolicy": {
                "loadBalancer": {"simple": "LEAST_REQUEST", "localityLbSetting": {"failover": [{"from": "us-east", "to": "us-west"}]}},
                "connectionPool": {"tcp": {"maxConnections": 100, "connectTimeout": "30ms", "tcpKeepalive": {"time": "7200s"}},
                                   "http": {"http2MaxRequests": 1000, "h2UpgradePolicy": "UPGRADE", "http2KeepAlive": {"interval": "15s", "timeout": "5s"}}},
                "outlierDetection": {"consecutive5xxErrors": 7, "interval": "5m", "baseEjectionTime": "15m"},
                "tls": {"mode": "ISTIO_MUTUAL", "sni": "reviews.example"},
                "portLevelSettings": [{"port": {"number": 80}, "loadBalancer": {"consistentHash": {"httpCookie": {"name": "u", "ttl": "0s"}}}}],
                "tunnel": {"protocol": "CONNECT", "targetHost": "proxy.example", "targetPort": 8080},
            },
            "workloadSelector": {"matchLabels": {"app": "reviews"}},
        }
    )
    tp = res.spec.traffic_policy
    assert tp.load_balancer.simple is SimpleLB.LEAST_REQUEST
    assert tp.load_balancer.locality_lb_setting.failover[0].from_ == "us-east"
    assert tp.outlier_detection.consecutive_5xx_errors == 7
    assert tp.connection_pool.tcp.connect_timeout == Duration.of(ms=30)
    assert tp.tls.mode is TLSmode.ISTIO_MUTUAL
    assert res.spec.dump()["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"] == 7


def test_load_balancer_policies_are_exclusive() -> None:
    with pytest.raises(ConfigError, match="only one of"):
        load({"host": "a", "trafficPolicy": {"loadBalancer": {"simple": "RANDOM", "consistentHash": {"useSourceIp": True}}}})


def test_consistent_hash_keys_are_exclusive() -> None:
    with pytest.raises(ConfigError, match="only one of"):
        load({"host": "a", "trafficPolicy": {"loadBalancer": {"consistentHash": {"useSourceIp": True, "httpHeaderName": "x"}}}})


def test_unknown_enum_value_is_rejected() -> None:
    with pytest.raises(ConfigError):
        load({"host": "a", "trafficPolicy": {"tls": {"mode": "PERMISSIVE"}}})


def test_warmup_requires_duration() -> None:
    with pytest.raises(ConfigError, match="duration"):
        load({"host": "a", "trafficPolicy": {"loadBalancer": {"warmup": {"minimumPercent": 5}}}})


def test_host_is_required() -> None:
    with pytest.raises(ConfigError, match="host"):
        load({"subsets": [{"name": "v1"}]})


def test_bad_duration_names_the_field() -> None:
    with pytest.raises(ConfigError) as exc:
        load({"host": "a", "trafficPolicy": {"connectionPool": {"tcp": {"connectTimeout": "soon"}}}})
    assert exc.value.field_path == "spec.trafficPolicy.connectionPool.tcp.connectTimeout"
