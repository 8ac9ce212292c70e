"""istiod's debug views (Istio's /debug/configz, /debug/registryz, /debug/syncz and
/debug/config_dump): what is in force, what the registry holds, where each proxy stands, and
what istiod would send a proxy now."""

from __future__ import annotations

from typing import Any

from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2 as shared

from ..pilot.generate import generate
from ..pilot.push_context import PushContext
from ..xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE
from .control_plane import ControlPlane

#: Istio's short names for the xDS types (syncz fields, metrics labels).
SHORT = {CLUSTER: "cluster", LISTENER: "listener", ROUTE: "route", ENDPOINT: "endpoint"}


def configz(push: PushContext) -> list[dict[str, Any]]:
    return [as_object(r) for r in push.resources]


def as_object(r: Any) -> dict[str, Any]:
    """A resource as the API shows it: as written, with the namespace it is in."""
    raw = dict(r.raw)
    meta = dict(raw.get("metadata") or {})
    meta.setdefault("namespace", r.namespace)
    raw["metadata"] = meta
    return raw


def registryz(push: PushContext) -> list[dict[str, Any]]:
    """Services with their ports and endpoints, in the shape of Istio's registryz."""
    registry = push.registry
    out = []
    for s in registry.services:
        out.append({
            "hostname": s.hostname,
            "namespace": s.namespace,
            "name": s.name,
            "source": s.source,
            "addresses": list(s.addresses),
            "ports": [{"name": p.name, "port": p.number, "protocol": str(p.protocol)} for p in s.ports],
            "resolution": str(s.resolution),
            "meshExternal": s.mesh_external,
            "exportTo": sorted(s.export_to),
            "endpoints": [{
                "address": e.address, "ports": dict(e.ports), "labels": dict(e.labels),
                "serviceAccount": e.service_account, "locality": e.locality.label, "weight": e.weight,
                "healthy": e.healthy, "workload": e.workload_name,
            } for e in registry.endpoints_of(s)],
        })
    return out


def syncz(istiod: ControlPlane) -> list[dict[str, Any]]:
    """Per connected proxy and type: the version sent and the version it acknowledged (Istio's
    SyncStatus), with the last rejection when there is one."""
    out = []
    for conn in istiod.ads.connections():
        entry: dict[str, Any] = {"proxy": _proxy_name(conn.node_id), "node_id": conn.node_id,
                                 "connected_at": conn.connected_at}
        proxy = istiod.known_proxy(conn.node_id)
        if proxy is not None:
            entry["proxy_type"] = str(proxy.type)
            entry["istio_version"] = proxy.istio_version
        for type_url, short in SHORT.items():
            t = conn.types.get(type_url)
            if t is None:
                continue
            entry[f"{short}_sent"] = t.sent_nonce
            entry[f"{short}_acked"] = t.acked_nonce
            entry[f"{short}_sent_version"] = t.sent_version
            entry[f"{short}_acked_version"] = t.acked_version
            if t.nack_error:
                entry[f"{short}_rejected"] = {"version": t.nack_version, "error": t.nack_error}
        out.append(entry)
    return out


def _proxy_name(node_id: str) -> str:
    parts = node_id.split("~")
    return parts[2] if len(parts) == 4 else node_id


def config_dump(istiod: ControlPlane, node: Any) -> config_dump_pb2.ConfigDump:
    """What istiod would send ``node`` now, as an Envoy admin config dump."""
    push = istiod.push_context
    proxy = istiod.proxy_for(node)
    version = push.version
    clusters = generate(push, proxy, CLUSTER)
    listeners = generate(push, proxy, LISTENER)
    route_names = _route_names(listeners.values())
    routes = generate(push, proxy, ROUTE, route_names)
    eds_names = {c.name for c in clusters.values() if c.HasField("eds_cluster_config") or c.type == c.EDS}
    endpoints = generate(push, proxy, ENDPOINT, eds_names)

    dump = config_dump_pb2.ConfigDump()
    cd = shared.ClustersConfigDump(version_info=version)
    for c in clusters.values():
        item = cd.dynamic_active_clusters.add(version_info=version)
        item.cluster.Pack(c)
    ld = shared.ListenersConfigDump(version_info=version)
    for name, l in listeners.items():
        item = ld.dynamic_listeners.add(name=name)
        item.active_state.version_info = version
        item.active_state.listener.Pack(l)
    rd = shared.RoutesConfigDump()
    for r in routes.values():
        item = rd.dynamic_route_configs.add(version_info=version)
        item.route_config.Pack(r)
    ed = shared.EndpointsConfigDump()
    for e in endpoints.values():
        item = ed.dynamic_endpoint_configs.add(version_info=version)
        item.endpoint_config.Pack(e)
    for section in (cd, ld, rd, ed):
        dump.configs.add().Pack(section)
    return dump


def _route_names(listeners: Any) -> set[str]:
    """RDS names the listeners refer to (HCMs with ``rds``), as a client would subscribe."""
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

    names = set()
    for l in listeners:
        chains = list(l.filter_chains) + ([l.default_filter_chain] if l.HasField("default_filter_chain") else [])
        filters = [f for chain in chains for f in chain.filters]
        if l.HasField("api_listener"):
            hcm = hcm_pb2.HttpConnectionManager()
            if l.api_listener.api_listener.Unpack(hcm) and hcm.HasField("rds"):
                names.add(hcm.rds.route_config_name)
        for f in filters:
            hcm = hcm_pb2.HttpConnectionManager()
            if f.HasField("typed_config") and f.typed_config.Unpack(hcm) and hcm.HasField("rds"):
                names.add(hcm.rds.route_config_name)
    return names
