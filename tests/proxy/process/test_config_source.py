"""The ADS config source as the proxy sees it: checked when the bootstrap is loaded, its
pilotfish.xds errors reported as the proxy's ProxyConfigError with the field path."""

from __future__ import annotations

import pytest

from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.xds.settings import ads_settings

from ..conftest import cluster


def _ads_doc(**dynamic: object) -> dict:
    doc = {"node": {"id": "n"}, "static_resources": {"clusters": [cluster("xds-grpc", 15010)]},
           "dynamic_resources": {
               "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                              "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
               "lds_config": {"ads": {}}, "cds_config": {"ads": {}}, **dynamic}}
    return doc


def test_ads_settings_from_envoy_grpc_cluster() -> None:
    s = ads_settings(parse_bootstrap(_ads_doc()).message)
    assert s is not None and s.target == "127.0.0.1:15010" and s.lds and s.cds
    assert s.initial_fetch_timeout == 15.0


def test_ads_settings_from_google_grpc() -> None:
    doc = _ads_doc()
    doc["dynamic_resources"]["ads_config"]["grpc_services"] = [{"google_grpc": {
        "target_uri": "localhost:15012", "stat_prefix": "ads"}}]
    s = ads_settings(parse_bootstrap(doc).message)
    assert s is not None and s.target == "localhost:15012"


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda d: d["dynamic_resources"]["ads_config"].update(api_type="REST"),
     "dynamic_resources.ads_config.api_type"),
    (lambda d: d["dynamic_resources"].update(lds_config={"api_config_source": {"api_type": "GRPC"}}),
     "dynamic_resources.lds_config.api_config_source"),
    (lambda d: d["dynamic_resources"]["ads_config"]["grpc_services"][0]["envoy_grpc"].update(cluster_name="nope"),
     "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name"),
    (lambda d: d["dynamic_resources"].pop("ads_config"), "dynamic_resources.ads_config"),
])
def test_non_ads_forms_are_errors(mutate: object, path: str) -> None:
    doc = _ads_doc()
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(ProxyConfigError) as info:
        parse_bootstrap(doc)
    assert info.value.field_path == path


def test_rds_without_ads_is_an_error() -> None:
    from pilotfish.proxy.compile import compile_bootstrap

    from ..conftest import bootstrap
    doc = bootstrap([], [cluster("a", 1)])
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    del hcm["route_config"]
    hcm["rds"] = {"route_config_name": "r", "config_source": {"ads": {}}}
    with pytest.raises(ProxyConfigError, match="ads_config"):
        compile_bootstrap(parse_bootstrap(doc).message)
