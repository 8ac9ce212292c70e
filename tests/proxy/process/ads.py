"""Resources and a proxy for the ADS tests: builders over pilotfish.xds.testing's FakeAds."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2  # noqa: F401 - registers the message types
from envoy.config.endpoint.v3 import endpoint_pb2  # noqa: F401
from envoy.config.listener.v3 import listener_pb2  # noqa: F401
from envoy.config.route.v3 import route_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2,
)

from pilotfish.proxy.process.server import ProxyServer
from pilotfish.xds.testing import FakeAds, parse
from pilotfish.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE

from ..conftest import HCM, ROUTER, cluster, running_proxy, sa


def listener(name: str, route_name: str, **extra: Any) -> Any:
    return parse(LISTENER, {
        "name": name, "address": sa(0), **extra,
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {"@type": HCM, "stat_prefix": name, "http_filters": [ROUTER],
                             "rds": {"route_config_name": route_name,
                                     "config_source": {"ads": {}, "resource_api_version": "V3"}}},
        }]}],
    })


def route(name: str, cluster_name: str, **route_extra: Any) -> Any:
    return parse(ROUTE, {"name": name, "virtual_hosts": [{
        "name": "all", "domains": ["*"],
        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster_name, **route_extra}}]}]})


def eds_cluster(name: str, **extra: Any) -> Any:
    return parse(CLUSTER, {"name": name, "type": "EDS", "connect_timeout": "1s",
                           "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}},
                           **extra})


def endpoints(name: str, *ports: int) -> Any:
    return parse(ENDPOINT, {"cluster_name": name, "endpoints": [{
        "locality": {"region": "r1", "zone": "z1"},
        "lb_endpoints": [{"endpoint": {"address": sa(p)}} for p in ports]}]})


def ads_bootstrap(ads_port: int, **dynamic: Any) -> dict[str, Any]:
    return {
        "node": {"id": "sidecar~127.0.0.1~app.default~default.svc.cluster.local", "cluster": "app.default",
                 "locality": {"region": "r1", "zone": "z1"}, "metadata": {"NAMESPACE": "default"}},
        "admin": {"address": sa(0)},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            **dynamic,
        },
        "static_resources": {"clusters": [cluster("xds-grpc", ads_port)]},
    }


# ---- the proxy under test ---------------------------------------------------------------------
@contextlib.asynccontextmanager
async def ads_proxy(ads: FakeAds, **dynamic: Any) -> AsyncIterator[ProxyServer]:
    async with running_proxy(ads_bootstrap(ads.port, **dynamic)) as proxy:
        yield proxy


def serve_basic(ads: FakeAds, backend_port: int) -> None:
    ads.set(CLUSTER, eds_cluster("web"), push=False)
    ads.set(ENDPOINT, endpoints("web", backend_port), push=False)
    ads.set(LISTENER, listener("in", "r1"), push=False)
    ads.set(ROUTE, route("r1", "web"), push=False)


def hcm(**fields: Any) -> Any:
    """The HttpConnectionManager of ``listener``, with ``fields`` changed."""
    out = http_connection_manager_pb2.HttpConnectionManager()
    listener("x", "r1").filter_chains[0].filters[0].typed_config.Unpack(out)
    for k, v in fields.items():
        setattr(out, k, v)
    return out


def bad_listener(name: str, route_name: str = "r1") -> Any:
    return listener(name, route_name, listener_filters=[{"name": "x"}])  # an unsupported field


def uncompilable_listener(name: str) -> Any:
    """Passes the field check at decode time, fails compiling (HTTP/2 downstream)."""
    lst = listener(name, "r1")
    lst.filter_chains[0].filters[0].typed_config.Pack(hcm(codec_type=2))
    return lst


def bad_route(name: str, cluster_name: str = "web") -> Any:
    rc = route(name, cluster_name)
    match = rc.virtual_hosts[0].routes[0].match
    match.ClearField("prefix")
    match.safe_regex.regex = "("
    return rc
