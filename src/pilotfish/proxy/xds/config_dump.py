"""The dynamic half of /config_dump, in Envoy's ConfigDump shape (versions and last_updated)."""

from __future__ import annotations

from typing import Any

from .type_state import CLUSTER, LISTENER


def add_dynamic(runtime: Any, dump: Any) -> None:
    """Add the accepted xDS resources to a ConfigDump holding the static ones."""
    if runtime.dynamic is None:
        return
    from envoy.admin.v3 import config_dump_shared_pb2 as shared

    parts = {shared.ClustersConfigDump: shared.ClustersConfigDump(),
             shared.ListenersConfigDump: shared.ListenersConfigDump(),
             shared.RoutesConfigDump: shared.RoutesConfigDump()}
    found = {}
    for item in dump.configs:
        for cls, msg in parts.items():
            if item.Is(cls.DESCRIPTOR):
                item.Unpack(msg)
                found[cls] = item
    endpoints = _fill(runtime, *parts.values())
    for cls, msg in parts.items():
        if cls in found:
            found[cls].Pack(msg)
        else:
            dump.configs.add().Pack(msg)
    dump.configs.add().Pack(endpoints)


def _fill(runtime: Any, clusters: Any, listeners: Any, routes: Any) -> Any:
    """Fill the dynamic fields of the three dumps; return the EndpointsConfigDump."""
    from envoy.admin.v3 import config_dump_shared_pb2

    dyn = runtime.dynamic

    res = dyn.resources
    clusters.version_info = res.versions.get(CLUSTER, "")
    for name, e in sorted(res.clusters.items()):
        warming = name in dyn.warming_clusters
        dc = (clusters.dynamic_warming_clusters if warming else clusters.dynamic_active_clusters).add()
        dc.version_info = e.version
        dc.cluster.Pack(e.message)
        dc.last_updated.FromNanoseconds(int(e.last_updated * 1e9))
    listeners.version_info = res.versions.get(LISTENER, "")
    for name, e in sorted(res.listeners.items()):
        dl = listeners.dynamic_listeners.add()
        dl.name = name
        state = dl.warming_state if name in dyn.warming_listeners else dl.active_state
        state.version_info = e.version
        state.listener.Pack(e.message)
        state.last_updated.FromNanoseconds(int(e.last_updated * 1e9))
    for _, e in sorted(res.routes.items()):
        dr = routes.dynamic_route_configs.add()
        dr.version_info = e.version
        dr.route_config.Pack(e.message)
        dr.last_updated.FromNanoseconds(int(e.last_updated * 1e9))
    endpoints = config_dump_shared_pb2.EndpointsConfigDump()
    for _, e in sorted(res.endpoints.items()):
        de = endpoints.dynamic_endpoint_configs.add()
        de.version_info = e.version
        de.endpoint_config.Pack(e.message)
        de.last_updated.FromNanoseconds(int(e.last_updated * 1e9))
    return endpoints
