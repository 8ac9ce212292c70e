"""Networking models (Gateway, ServiceEntry, Sidecar, WorkloadEntry/Group, ProxyConfig, EnvoyFilter)."""

from __future__ import annotations

from typing import Any

import pytest

from pilotfish.config import kinds
from pilotfish.config.errors import ConfigError
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.models.envoyfilter import ApplyTo, EnvoyFilter, Operation
from pilotfish.config.models.gateway import Gateway, TLSMode
from pilotfish.config.models.serviceentry import Resolution, ServiceEntry
from pilotfish.config.models.sidecar import Sidecar
from pilotfish.config.models.workload import WorkloadGroup


def load(kind: str, spec: Any, api_version: str = "networking.istio.io/v1") -> Any:
    doc = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "ns"}, "spec": spec}
    return to_resource(Document(doc, "test.yaml", 1)).spec


@pytest.mark.parametrize(
    ("kind", "versions"),
    [
        ("Gateway", ("v1", "v1alpha3", "v1beta1")),
        ("ServiceEntry", ("v1", "v1alpha3", "v1beta1")),
        ("Sidecar", ("v1", "v1alpha3", "v1beta1")),
        ("WorkloadEntry", ("v1", "v1alpha3", "v1beta1")),
        ("WorkloadGroup", ("v1", "v1alpha3", "v1beta1")),
        ("ProxyConfig", ("v1beta1",)),
        ("EnvoyFilter", ("v1alpha3",)),
    ],
)
def test_every_served_version_is_registered(kind: str, versions: tuple[str, ...]) -> None:
    for version in versions:
        assert kinds.lookup(f"networking.istio.io/{version}", kind) is not None


def test_gateway_reads_servers_and_tls() -> None:
    spec = load(
        "Gateway",
        {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {
                    "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                    "hosts": ["ns/bookinfo.example.com"],
                    "tls": {"mode": "SIMPLE", "credentialName": "cert", "minProtocolVersion": "TLSV1_2"},
                }
            ],
        },
    )
    assert isinstance(spec, Gateway)
    server = spec.servers[0]
    assert server.port.number == 443 and server.tls.mode is TLSMode.SIMPLE
    assert server.tls.credential_name == "cert"
    assert spec.dump()["servers"][0]["tls"]["minProtocolVersion"] == "TLSV1_2"


def test_unknown_tls_field_is_rejected_with_its_path() -> None:
    with pytest.raises(ConfigError) as err:
        load("Gateway", {"servers": [{"port": {"number": 80, "name": "h", "protocol": "HTTP"}, "hosts": ["*"], "tls": {"mod": "SIMPLE"}}]})
    assert "mod" in str(err.value) and "spec.servers[0].tls" in str(err.value)


def test_enum_values_come_from_the_crd() -> None:
    with pytest.raises(ConfigError):
        load("Gateway", {"servers": [{"port": {"number": 1, "name": "h", "protocol": "HTTP"}, "hosts": ["*"], "tls": {"mode": "STRICT"}}]})


def test_service_entry_endpoints_are_workload_entries() -> None:
    spec = load(
        "ServiceEntry",
        {
            "hosts": ["api.example.com"],
            "ports": [{"number": 443, "name": "https", "protocol": "TLS", "targetPort": 8443}],
            "resolution": "STATIC",
            "endpoints": [{"address": "10.0.0.1", "ports": {"https": 9443}, "labels": {"v": "1"}, "weight": 2}],
            "workloadSelector": {"labels": {"app": "x"}},
        },
    )
    assert isinstance(spec, ServiceEntry)
    assert spec.resolution is Resolution.STATIC
    assert spec.endpoints[0].ports == {"https": 9443}
    assert spec.workload_selector.labels == {"app": "x"}


def test_service_entry_port_numbers_are_uint32() -> None:
    with pytest.raises(ConfigError):
        load("ServiceEntry", {"hosts": ["a.com"], "ports": [{"number": -1, "name": "p"}]})


def test_sidecar_reuses_destination_rule_connection_pool() -> None:
    spec = load(
        "Sidecar",
        {
            "ingress": [
                {
                    "port": {"number": 9080, "protocol": "HTTP", "name": "http"},
                    "connectionPool": {"tcp": {"connectTimeout": "1.5s"}},
                }
            ],
            "outboundTrafficPolicy": {"mode": "ALLOW_ANY", "egressProxy": {"host": "egress.example.com", "port": {"number": 80}}},
        },
    )
    assert isinstance(spec, Sidecar)
    assert spec.ingress[0].connection_pool.tcp.connect_timeout.nanos == 1_500_000_000
    assert spec.outbound_traffic_policy.egress_proxy.port.number == 80


def test_workload_group_probe_allows_one_method() -> None:
    spec = load("WorkloadGroup", {"template": {"serviceAccount": "sa"}, "probe": {"httpGet": {"port": 8080, "path": "/ready"}, "periodSeconds": 5}})
    assert isinstance(spec, WorkloadGroup) and spec.probe.http_get.port == 8080
    with pytest.raises(ConfigError):
        load("WorkloadGroup", {"template": {}, "probe": {"httpGet": {"port": 1}, "tcpSocket": {"port": 1}}})


def test_proxy_config_uses_match_labels() -> None:
    spec = load("ProxyConfig", {"selector": {"matchLabels": {"app": "a"}}, "concurrency": 2, "image": {"imageType": "distroless"}}, "networking.istio.io/v1beta1")
    assert spec.selector.match_labels == {"app": "a"} and spec.image.image_type == "distroless"


def test_envoy_filter_patch_value_stays_opaque() -> None:
    value = {"name": "envoy.lua", "typed_config": {"@type": "type.googleapis.com/x.Y", "inlineCode": "x"}}
    spec = load(
        "EnvoyFilter",
        {
            "workloadSelector": {"labels": {"app": "r"}},
            "configPatches": [
                {
                    "applyTo": "HTTP_FILTER",
                    "match": {"context": "SIDECAR_INBOUND", "listener": {"filterChain": {"filter": {"name": "envoy.filters.network.http_connection_manager"}}}},
                    "patch": {"operation": "INSERT_BEFORE", "value": value},
                }
            ],
            "priority": -1,
        },
        "networking.istio.io/v1alpha3",
    )
    assert isinstance(spec, EnvoyFilter)
    patch = spec.config_patches[0]
    assert patch.apply_to is ApplyTo.HTTP_FILTER and patch.patch.operation is Operation.INSERT_BEFORE
    assert patch.patch.value == value


def test_envoy_filter_match_names_one_object_kind() -> None:
    with pytest.raises(ConfigError):
        load(
            "EnvoyFilter",
            {"configPatches": [{"applyTo": "CLUSTER", "match": {"cluster": {}, "listener": {}}, "patch": {"operation": "REMOVE"}}]},
            "networking.istio.io/v1alpha3",
        )
