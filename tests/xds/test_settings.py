"""The bootstrap's dynamic_resources resolved into AdsSettings; the unsupported forms named."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2
from google.protobuf import json_format

from pilotfish.xds.errors import XdsConfigError
from pilotfish.xds.settings import ads_settings


def _bootstrap(**dynamic: Any) -> Any:
    doc = {"node": {"id": "n"}, "static_resources": {"clusters": [{
        "name": "xds-grpc", "type": "STATIC", "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [
            {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": "127.0.0.1", "port_value": 15010}}}}]}]}}]},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
            "lds_config": {"ads": {}}, "cds_config": {"ads": {}, "initial_fetch_timeout": "2.5s"}, **dynamic}}
    return json_format.ParseDict(doc, bootstrap_pb2.Bootstrap())


def test_envoy_grpc_names_a_static_cluster() -> None:
    s = ads_settings(_bootstrap())
    assert s is not None and s.target == "127.0.0.1:15010" and s.authority == "xds-grpc"
    assert s.lds and s.cds and s.initial_fetch_timeout == 2.5


def test_no_dynamic_resources_is_none() -> None:
    b = _bootstrap()
    b.ClearField("dynamic_resources")
    assert ads_settings(b) is None


def test_a_pipe_address_is_a_unix_target() -> None:
    b = _bootstrap()
    address = b.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address
    address.pipe.path = "./etc/istio/proxy/XDS"
    assert ads_settings(b).target == "unix:./etc/istio/proxy/XDS"  # type: ignore[union-attr]
    address.pipe.path = "@xds"
    assert ads_settings(b).target == "unix-abstract:xds"  # type: ignore[union-attr]


def test_unsupported_forms_are_errors_naming_the_field() -> None:
    b = _bootstrap()
    b.dynamic_resources.ads_config.api_type = 1  # REST
    with pytest.raises(XdsConfigError) as info:
        ads_settings(b)
    assert info.value.field_path == "dynamic_resources.ads_config.api_type"
    b = _bootstrap()
    b.dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name = "nope"
    with pytest.raises(XdsConfigError, match="no static cluster named 'nope'"):
        ads_settings(b)
