"""Structure-aware config fuzzing: Hypothesis draws Envoy messages from their descriptors
(fuzz/proto_strategies.py) and each goes the bootstrap path (``parse_bootstrap`` then
``compile_bootstrap``, via fuzz/bootstrap_yaml.py), or the xDS path (``decode`` of a response,
then ``compile_snapshot`` with the resources). Every example compiles or raises
ProxyConfigError naming a path; any other exception fails the test.

Bounded and derandomized in ``make test`` (the same examples every run); a longer campaign
draws new examples: ``FUZZ_EXAMPLES=5000 pytest tests/fuzz/test_config_structured.py``.
"""

from __future__ import annotations

import os
import random
from typing import Any

from bootstrap_yaml import compile_document
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import any_pb2, json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proto_strategies import messages

from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.compile.dynamic import compile_snapshot
from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.common.stats import StatsStore
from pilotfish.proxy.compile.subset import CheckResult, check_message
from pilotfish.xds.errors import ResourceRejected
from pilotfish.xds.resources import Resources, decode
from pilotfish.xds.type_urls import CLUSTER, KIND, LISTENER, ROUTE

# In `make test`: a few examples, the same every run. A campaign (FUZZ_EXAMPLES set) draws anew.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0")) or 30
FUZZ = settings(max_examples=EXAMPLES, derandomize="FUZZ_EXAMPLES" not in os.environ, deadline=None,
                database=None, suppress_health_check=list(HealthCheck))

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


def _doc(msg: Any) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def _listener(route_config: dict[str, Any]) -> dict[str, Any]:
    return {"name": "l0", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {"@type": HCM, "stat_prefix": "f", "route_config": route_config,
                                 "http_filters": [ROUTER]}}]}]}


def _named(kind: str) -> Any:
    """Half the drawn resources get what the compiler needs before anything else (a name, a
    socket address), so the rest of their fields are reached more often."""

    def fix(pair: tuple[Any, bool]) -> Any:
        msg, fix_it = pair
        if fix_it:
            if not msg.name:
                msg.name = "c0" if kind == "cluster" else "r0"
            if kind == "listener":
                msg.address.socket_address.address = "127.0.0.1"
        return msg

    desc = {"listener": listener_pb2.Listener, "cluster": cluster_pb2.Cluster,
            "route": route_pb2.RouteConfiguration}[kind].DESCRIPTOR
    return st.tuples(messages(desc), st.booleans()).map(fix)


_CLUSTERS = [{"name": n, "type": "STATIC", "connect_timeout": "1s",
              "load_assignment": {"cluster_name": n, "endpoints": []}} for n in ("c0", "c1")]


@FUZZ
@given(messages(bootstrap_pb2.Bootstrap.DESCRIPTOR))
def test_bootstrap_compiles_or_names_a_path(msg: Any) -> None:
    compile_document(_doc(msg))


@FUZZ
@given(_named("listener"))
def test_listener_compiles_or_names_a_path(msg: Any) -> None:
    compile_document({"static_resources": {"listeners": [_doc(msg)], "clusters": _CLUSTERS}})


@FUZZ
@given(_named("cluster"))
def test_cluster_compiles_or_names_a_path(msg: Any) -> None:
    compile_document({"static_resources": {"clusters": [_doc(msg)]}})


@FUZZ
@given(_named("route"))
def test_route_configuration_compiles_or_names_a_path(msg: Any) -> None:
    compile_document({"static_resources": {"listeners": [_listener(_doc(msg))], "clusters": _CLUSTERS}})


# ---- the xDS path: resources as an ADS response carries them ---------------------------------
_ADS_BOOTSTRAP = {
    "node": {"id": "n", "cluster": "c"},
    "dynamic_resources": {"ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                                         "grpc_services": [{"envoy_grpc": {"cluster_name": "xds"}}]},
                          "lds_config": {"ads": {}, "resource_api_version": "V3"},
                          "cds_config": {"ads": {}, "resource_api_version": "V3"}},
    "static_resources": {"clusters": [{
        "name": "xds", "type": "STATIC", "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}}},
        "load_assignment": {"cluster_name": "xds", "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}}}}]}]}}]},
}


def _check(msg: Any, path: str) -> list[str]:
    """The proxy's supported-subset check; its ProxyConfigError names the field."""
    result = CheckResult()
    check_message(msg, path, result)
    return result.warnings


def _compile_xds(type_url: str, msg: Any) -> None:
    loaded = parse_bootstrap(_ADS_BOOTSTRAP)
    item = any_pb2.Any()
    item.Pack(msg)
    try:
        resources = Resources()
        if type_url == ROUTE:
            resources = resources.with_response(ROUTE, "1", decode(ROUTE, [item], lambda _n: True, _check, []), 0.0)
        else:
            resources = resources.with_response(type_url, "1", decode(type_url, [item], lambda _n: True, _check, []), 0.0)
        compile_snapshot(loaded.message, resources, stats=StatsStore(loaded.message.node), sinks={},
                         rng=random.Random(1), warnings=[])
    except ProxyConfigError as exc:
        assert exc.field_path or str(exc).startswith("invalid"), f"error without a path: {exc}"
    except ResourceRejected as exc:  # decoding refused it: the message starts with its path
        assert str(exc).startswith(("resources[", f"{KIND[type_url]}[")), f"error without a path: {exc}"


@FUZZ
@given(_named("listener"))
def test_xds_listener_compiles_or_names_a_path(msg: Any) -> None:
    _compile_xds(LISTENER, msg)


@FUZZ
@given(_named("cluster"))
def test_xds_cluster_compiles_or_names_a_path(msg: Any) -> None:
    _compile_xds(CLUSTER, msg)


@FUZZ
@given(_named("route"))
def test_xds_route_configuration_compiles_or_names_a_path(msg: Any) -> None:
    _compile_xds(ROUTE, msg)


def test_the_strategies_reach_the_compiler() -> None:
    """A fair share of drawn route configurations compile (else the fuzzer would only ever
    exercise the subset check that stops at the first unsupported field)."""
    outcomes: list[bool] = []

    @FUZZ
    @given(_named("route"))
    def probe(msg: Any) -> None:
        doc = {"static_resources": {"listeners": [_listener(_doc(msg))], "clusters": _CLUSTERS}}
        outcomes.append(compile_document(doc) is None)

    probe()
    assert sum(outcomes) >= len(outcomes) // 5, f"only {sum(outcomes)} of {len(outcomes)} compiled"
