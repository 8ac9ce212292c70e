"""The proxy's bootstrap, as pilot-agent renders Istio's envoy_bootstrap.json template.

The node carries Istio's id and metadata (what istiod reads to know the workload: NAMESPACE,
LABELS, WORKLOAD_NAME, SERVICE_ACCOUNT, INTERCEPTION_MODE, …) and its locality from the
topology labels; ADS goes to istiod through the static ``xds-grpc`` cluster; the static
listeners ``IP_15090`` (the proxy's Prometheus stats, from its admin) and ``IP_15021`` (readiness,
answered by the agent) are Istio's. Local additions: the listeners bind the instance's own
address instead of 0.0.0.0, and HTTP_PROXY_PORT / APP_PORTS say where the outbound HTTP proxy
and the app listen on 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

from .spec import SIDECAR, AgentSpec

ISTIO_VERSION = "1.32.0"
ROUTER_FILTER = {"name": "envoy.filters.http.router",
                 "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
# Istio's stats tags (envoy_bootstrap.json), the ones our proxy's stats carry.
STATS_TAGS = [
    {"tag_name": "cluster_name", "regex": "^cluster(\\.(.+);)"},
    {"tag_name": "http_conn_manager_prefix",
     "regex": "^http\\.(((?:[_.[:digit:]\\w]*|[_\\[\\]aAbBcCdDeEfF[:digit:]\\w\\:]*));\\.)"},
    {"tag_name": "tcp_prefix", "regex": "^tcp\\.((.*?)\\.)\\w+?$"},
    {"tag_name": "response_code", "regex": "_rq(_(\\d{3}))$"},
    {"tag_name": "response_code_class", "regex": "_rq(_(\\dxx))$"},
    {"tag_name": "http_conn_manager_listener_prefix",
     "regex": "^listener(?=\\.).*?\\.http\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)"},
    {"tag_name": "listener_address",
     "regex": "^listener\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)"},
]
LOCALITY_LABELS = ("topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone")


def _address(ip: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": ip, "port_value": port}}


def _static_cluster(name: str, ip: str, port: int, timeout: str = "0.250s") -> dict[str, Any]:
    return {"name": name, "alt_stat_name": f"{name};", "type": "STATIC", "connect_timeout": timeout,
            "lb_policy": "ROUND_ROBIN",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": _address(ip, port)}}]}]}}


def _static_listener(ip: str, port: int, stat_prefix: str, prefix: str, cluster: str) -> dict[str, Any]:
    hcm = {"@type": HCM_TYPE, "codec_type": "AUTO", "stat_prefix": stat_prefix,
           "route_config": {"virtual_hosts": [{"name": "backend", "domains": ["*"], "routes": [
               {"match": {"prefix": prefix}, "route": {"cluster": cluster}}]}]},
           "http_filters": [ROUTER_FILTER]}
    return {"name": f"{ip}_{port}", "address": _address(ip, port),
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}]}


def node_metadata(spec: AgentSpec) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "NAME": spec.name, "POD_NAME": spec.name, "NAMESPACE": spec.namespace, "LABELS": dict(spec.labels),
        "ANNOTATIONS": dict(spec.annotations), "WORKLOAD_NAME": spec.workload_name or spec.name,
        "SERVICE_ACCOUNT": spec.service_account, "INTERCEPTION_MODE": "NONE", "INSTANCE_IPS": spec.ip,
        "ISTIO_VERSION": ISTIO_VERSION, "CLUSTER_ID": spec.cluster_id, "MESH_ID": spec.mesh_id,
        "ENVOY_PROMETHEUS_PORT": spec.proxy_metrics_port, "ENVOY_STATUS_PORT": spec.health_port,
        "PROXY_CONFIG": {"discoveryAddress": spec.xds_address, "proxyAdminPort": spec.admin_port,
                         "statusPort": spec.metrics_port},
    }
    if spec.workload_name:
        meta["OWNER"] = f"kubernetes://apis/apps/v1/namespaces/{spec.namespace}/deployments/{spec.workload_name}"
    if spec.role == SIDECAR:
        meta["HTTP_PROXY_PORT"] = str(spec.http_proxy_port)
        if spec.app is not None and spec.app.ports:
            meta["APP_PORTS"] = {str(spec.inbound_ports.get(k, k)): v for k, v in spec.app.ports.items()}
    return meta


def bootstrap(spec: AgentSpec) -> dict[str, Any]:
    """The Envoy v3 bootstrap the agent starts the proxy with."""
    xds_host, _, xds_port = spec.xds_address.rpartition(":")
    locality = dict(zip(("region", "zone", "sub_zone"), (spec.labels.get(k, "") for k in LOCALITY_LABELS)))
    return {
        "node": {"id": spec.node_id, "cluster": f"{spec.workload_name or spec.name}.{spec.namespace}",
                 "locality": {k: v for k, v in locality.items() if v}, "metadata": node_metadata(spec)},
        "stats_config": {"use_all_default_tags": False, "stats_tags": STATS_TAGS},
        "admin": {"address": _address(spec.ip, spec.admin_port)},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {
            "clusters": [
                _static_cluster("prometheus_stats", spec.ip, spec.admin_port),
                _static_cluster("agent", spec.ip, spec.metrics_port),
                _static_cluster("xds-grpc", xds_host or "127.0.0.1", int(xds_port), timeout="1s"),
            ],
            "listeners": [
                _static_listener(spec.ip, spec.proxy_metrics_port, "stats", "/stats/prometheus", "prometheus_stats"),
                _static_listener(spec.ip, spec.health_port, "agent", "/healthz/ready", "agent"),
            ],
        },
    }
