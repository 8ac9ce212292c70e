"""VirtualService models: every served version loads, oneof groups and CRD types are enforced."""

from __future__ import annotations

import pytest

from pilotfish.config.duration import Duration
from pilotfish.config.errors import ConfigError
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.models.virtualservice import VirtualService


def load(spec: dict, version: str = "v1"):
    doc = {"apiVersion": f"networking.istio.io/{version}", "kind": "VirtualService", "metadata": {"name": "r", "namespace": "ns"}, "spec": spec}
    return to_resource(Document(doc, "vs.yaml", 1))


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_every_served_version_loads(version: str) -> None:
    res = load({"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}, version)
    assert isinstance(res.spec, VirtualService)
    assert res.spec.http[0].route[0].destination.subset == "v1"


def test_full_http_route_round_trips_camel_case() -> None:
    spec = {
        "hosts": ["reviews"],
        "http": [
            {
                "name": "r1",
                "match": [{"uri": {"prefix": "/api"}, "headers": {"x-user": {"exact": "jason"}}, "ignoreUriCase": True, "queryParams": {"q": {"regex": "a.*"}}}],
                "route": [{"destination": {"host": "reviews", "port": {"number": 9080}}, "weight": 100}],
                "timeout": "1.5s",
                "retries": {"attempts": 3, "perTryTimeout": "500ms", "retryOn": "5xx", "retryRemoteLocalities": False},
                "fault": {"delay": {"fixedDelay": "7s", "percentage": {"value": 10}}, "abort": {"httpStatus": 503}},
                "mirrors": [{"destination": {"host": "shadow"}, "percentage": {"value": 5}}],
                "corsPolicy": {"allowOrigins": [{"exact": "https://a.example"}], "maxAge": "24h", "unmatchedPreflights": "IGNORE"},
                "headers": {"request": {"set": {"x-a": "1"}, "remove": ["x-b"]}},
            }
        ],
    }
    res = load(spec)
    route = res.spec.http[0]
    assert route.timeout == Duration(1_500_000_000)
    assert route.retries.per_try_timeout == Duration.of(ms=500)
    assert route.match[0].uri.kind == "prefix"
    assert res.spec.dump()["http"][0]["corsPolicy"]["unmatchedPreflights"] == "IGNORE"


def test_both_mirror_percent_spellings_are_accepted() -> None:
    legacy = load({"hosts": ["a"], "http": [{"mirror_percent": 5, "route": [{"destination": {"host": "a"}}]}]})
    camel = load({"hosts": ["a"], "http": [{"mirrorPercent": 7, "route": [{"destination": {"host": "a"}}]}]})
    assert legacy.spec.http[0].effective_mirror_percent == 5
    assert camel.spec.http[0].effective_mirror_percent == 7


@pytest.mark.parametrize(
    "http",
    [
        {"match": [{"uri": {"exact": "/a", "prefix": "/b"}}], "route": [{"destination": {"host": "a"}}]},
        {"redirect": {"port": 8080, "derivePort": "FROM_REQUEST_PORT"}},
        {"fault": {"abort": {"httpStatus": 503, "grpcStatus": "UNAVAILABLE"}}, "route": [{"destination": {"host": "a"}}]},
        {"directResponse": {"status": 200, "body": {"string": "a", "bytes": "YQ=="}}},
    ],
)
def test_oneof_members_are_exclusive(http: dict) -> None:
    with pytest.raises(ConfigError, match="only one of"):
        load({"hosts": ["a"], "http": [http]})


def test_unknown_field_is_rejected_with_its_path() -> None:
    with pytest.raises(ConfigError) as exc:
        load({"hosts": ["a"], "http": [{"websocketUpgrade": True, "route": [{"destination": {"host": "a"}}]}]})
    assert "websocketUpgrade" in str(exc.value)
    assert exc.value.field_path == "spec.http[0].websocketUpgrade"


def test_uint32_port_rejects_negative_values() -> None:
    with pytest.raises(ConfigError):
        load({"hosts": ["a"], "tcp": [{"match": [{"port": -1}], "route": [{"destination": {"host": "a"}}]}]})


def test_tls_route_requires_sni_hosts() -> None:
    with pytest.raises(ConfigError, match="sniHosts"):
        load({"hosts": ["a"], "tls": [{"match": [{"port": 443}], "route": [{"destination": {"host": "a"}}]}]})


def test_route_without_destination_still_loads_for_analysis() -> None:
    res = load({"hosts": ["a"], "http": [{"route": [{}]}]})
    assert res.spec.http[0].route[0].destination is None
